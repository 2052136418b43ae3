"""Labels given as numbers or names (WebDataset ``.cls``/``.json``, 🤗 columns) -> 0 or 1.

0 is a real photograph, 1 a generated image. Numbers 0 and 1 (and booleans) are taken as they are; the
names below, the class folder names of the published layouts, are understood in any case;
any other value needs a ``label_map`` (name -> 0 or 1) and is otherwise refused, never
guessed: a class index ``0`` that means "fake" in some dataset would invert every metric.
"""
from __future__ import annotations

from typing import Any, Mapping

from harness.api import ConfigError

__all__ = ["KNOWN_LABELS", "label_of"]

KNOWN_LABELS: Mapping[str, int] = {
    "0": 0, "real": 0, "0_real": 0, "nature": 0, "natural": 0, "authentic": 0, "human": 0,
    "1": 1, "fake": 1, "1_fake": 1, "ai": 1, "generated": 1, "synthetic": 1, "ai-generated": 1, "ai_generated": 1,
}


def label_of(value: Any, label_map: Mapping[str, int] | None = None, where: str = "") -> int:
    """0 or 1 for a raw label; ``label_map`` (keys compared as strings) wins over the known names."""
    if label_map:
        label = label_map.get(str(value))
        if label is None:
            raise ConfigError(f"{where}: label {value!r} is not in label_map {dict(label_map)}")
    elif isinstance(value, (bool, int)) and int(value) in (0, 1):
        label = int(value)
    else:
        label = KNOWN_LABELS.get(str(value).strip().lower())
        if label is None:
            raise ConfigError(f"{where}: label {value!r} is neither 0/1 nor a known name "
                              f"({sorted(k for k in KNOWN_LABELS if not k.isdigit())}); give label_map, "
                              f"e.g. label_map = {{ {str(value)!r} = 1 }}")
    if label not in (0, 1):
        raise ConfigError(f"{where}: label_map gives {label!r} for {value!r}; labels are 0 (real) or 1 (generated)")
    return int(label)
