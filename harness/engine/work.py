"""The work itself, free of Ray: decode once, perturb once, preprocess per detector, score.

These functions run inside Ray workers and actors (see :mod:`harness.engine.execute`) and
equally in a plain loop, which is how the tests pin their behaviour.
"""
from __future__ import annotations

import json
import traceback
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np

from harness.api import DecodeError
from harness.chains import Chain, apply_chain, derive_seed

__all__ = ["SampleWork", "prepare", "score_items", "detector_instance", "short_error", "fit_within", "tiles_within"]


@dataclass(frozen=True)
class SampleWork:
    """What to compute for one sample: per chain, the (detector index, cell key) pairs."""

    path: str
    sample_id: str
    jobs: tuple[tuple[Chain, tuple[tuple[int, str], ...]], ...]
    width: int = 0           # as the dataset's reader probed them (0: unknown)
    height: int = 0


_DETECTORS: dict[str, Any] = {}


def detector_instance(name: str, params: Mapping[str, Any]) -> Any:
    """A detector built from its parameters (no weights), cached per worker process."""
    key = f"{name}|{json.dumps(dict(params), sort_keys=True, default=str)}"
    if key not in _DETECTORS:
        from harness.plugins import detectors

        _DETECTORS[key] = detectors()[name].create(**dict(params))
    return _DETECTORS[key]


def short_error(stage: str, exc: BaseException) -> str:
    reason = exc.reason if isinstance(exc, DecodeError) else f"{type(exc).__name__}: {exc}"
    return f"{stage}: {reason}"[:200]


def fit_within(image: Any, limit: int) -> Any:
    """The centre of ``image``, of the same aspect ratio, with at most ``limit`` pixels."""
    w, h = image.size
    if w * h <= limit:
        return image
    scale = (limit / (w * h)) ** 0.5
    cw, ch = max(1, int(w * scale)), max(1, int(h * scale))
    left, top = (w - cw) // 2, (h - ch) // 2
    return image.crop((left, top, left + cw, top + ch))


def tiles_within(image: Any, limit: int) -> list[Any]:
    """Equal tiles (a grid, row-major) covering ``image``, each of at most ``limit`` pixels."""
    import math

    w, h = image.size
    side = max(1, math.isqrt(limit))
    cols, rows = math.ceil(w / side), math.ceil(h / side)
    while math.ceil(w / cols) * math.ceil(h / rows) > limit:  # rounding up may overshoot
        cols, rows = cols + 1, rows + 1
    tw, th = math.ceil(w / cols), math.ceil(h / rows)
    return [image.crop((x, y, min(w, x + tw), min(h, y + th))) for y in range(0, h, th) for x in range(0, w, tw)]


def _oversize_error(size: tuple[int, int], limit: int) -> str:
    return (f"oversize: {size[0]}x{size[1]} px is beyond this detector's limit of {limit} px at the sweep's "
            "[run] memory_mib (policy oversize = \"error\"; \"centre-crop\" or \"tile\" score it)")


def prepare(work: Sequence[SampleWork], seed: int, detector_defs: Sequence[tuple[str, Mapping[str, Any]]],
            apply_orientation: bool = False, limits: Sequence[int | None] = (), oversize: str = "error",
            decode_timeout: float | None = None) -> tuple:
    """Decode each sample once, apply each chain once, preprocess for each detector.

    ``limits``: per detector, the largest image (pixels) it takes (None: any); a source
    image beyond it gets the ``oversize`` policy for that detector: an error row
    (``"error"``), its centre at the limit (``"centre-crop"``), or tiles within the limit,
    each prepared, under the same key (``"tile"``: :func:`score_items` scores their mean).
    ``decode_timeout``: seconds a file may take to read and decode (an error row beyond).

    Returns one ``(keys, items)`` pair per detector, then the list of ``(key, error)``
    for cells that failed before reaching a model.
    """
    from harness.data.decode import load_image

    per_det: list[tuple[list[str], list[Any]]] = [([], []) for _ in detector_defs]
    errors: list[tuple[str, str]] = []
    for w in work:
        try:
            image = load_image(w.path, apply_orientation=apply_orientation, timeout=decode_timeout)
        except Exception as exc:  # noqa: BLE001 - any failure becomes a row, never a crash
            errors.extend((key, short_error("decode", exc)) for _, jobs in w.jobs for _, key in jobs)
            continue
        pixels = image.size[0] * image.size[1]
        over = [limit is not None and pixels > limit for limit in limits]
        for chain, jobs in w.jobs:
            try:
                perturbed = apply_chain(chain, image, derive_seed(seed, w.sample_id, chain.spec))
            except Exception as exc:  # noqa: BLE001
                errors.extend((key, short_error(f"perturb {chain.spec}", exc)) for _, key in jobs)
                continue
            for d, key in jobs:
                inputs = [perturbed]
                if d < len(over) and over[d]:
                    if oversize == "error":
                        errors.append((key, _oversize_error(image.size, limits[d])))
                        continue
                    inputs = [fit_within(perturbed, limits[d])] if oversize == "centre-crop" else \
                        tiles_within(perturbed, limits[d])
                try:
                    items = [detector_instance(*detector_defs[d]).preprocess(x) for x in inputs]
                except Exception as exc:  # noqa: BLE001
                    errors.append((key, short_error("preprocess", exc)))
                    continue
                per_det[d][0].extend([key] * len(items))
                per_det[d][1].extend(items)
    return (*per_det, errors)


def score_items(detector: Any, keys: Sequence[str], items: Sequence[Any]) -> list[tuple[str, float | None, str | None]]:
    """Score a batch; if the batch fails, score one by one so one bad item fails alone.
    Items under one key (the tiles of an image) give one row: the mean of their scores, or
    the first error among them."""
    if len(set(keys)) < len(keys):
        merged: dict[str, list] = {}
        for k, score, error in _score_items(detector, keys, items):
            merged.setdefault(k, []).append((score, error))
        return [(k, None, next(e for _, e in got if e)) if any(e for _, e in got)
                else (k, float(np.mean([s for s, _ in got])), None) for k, got in merged.items()]
    return _score_items(detector, keys, items)


def _score_items(detector: Any, keys: Sequence[str], items: Sequence[Any]) -> list[tuple[str, float | None, str | None]]:
    if not keys:
        return []
    try:
        scores = np.asarray(detector.score_batch(list(items)), dtype=np.float64).reshape(-1)
        if scores.shape[0] != len(keys):
            raise ValueError(f"score_batch returned {scores.shape[0]} scores for {len(keys)} items")
        return [(k, float(s), None) if np.isfinite(s) else (k, None, "score: not finite") for k, s in zip(keys, scores)]
    except Exception:  # noqa: BLE001
        if len(keys) == 1:
            return [(keys[0], None, "score: " + traceback.format_exc(limit=1).strip().splitlines()[-1][:180])]
    out = []
    for k, item in zip(keys, items):
        out.extend(_score_items(detector, [k], [item]))
    return out
