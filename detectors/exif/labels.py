"""Pretext targets from EXIF tags: which tag each of the 14 heads predicts, the class
vocabularies of the categorical tags and the pairwise ranking targets.

The head order is the authors' (``backbone_train.py``: categorical heads at positions
1, 5, 6, 9, 10, 11, 13 with 7, 6, 4, 6, 4, 2, 5 classes, the pretrained ``fc2`` ...
``fc14`` have exactly these sizes). Their code does not name the seven ranking tags; we
use FocalLength, FNumber, ExposureTime, ISOSpeedRatings, FocalLengthIn35mmFilm,
ExposureBiasValue and MaxApertureValue, in that order, at positions 0, 2, 3, 4, 7, 8, 12.
Classes of a categorical tag are its most frequent values in the training photos plus a
last class "other". A missing tag masks its term (the authors filtered such photos out
beforehand); a tie of a ranking tag is labelled "first >= second" as in their code, or
masked with ``mask_ties=True``.
"""
from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import torch

__all__ = ["CATEGORICAL", "RANKING", "HEAD_TAGS", "OTHER", "Vocabulary", "build_vocabulary", "encode_photo",
           "pair_targets"]

#: head position -> (tag, number of classes)
CATEGORICAL: dict[int, tuple[str, int]] = {
    1: ("Make", 7), 5: ("Model", 6), 6: ("Flash", 4), 9: ("MeteringMode", 6), 10: ("ExposureMode", 4),
    11: ("WhiteBalance", 2), 13: ("SceneCaptureType", 5),
}
#: head position -> ordinal tag compared between the two photos of a pair
RANKING: dict[int, str] = {
    0: "FocalLength", 2: "FNumber", 3: "ExposureTime", 4: "ISOSpeedRatings", 7: "FocalLengthIn35mmFilm",
    8: "ExposureBiasValue", 12: "MaxApertureValue",
}
HEAD_TAGS: tuple[str, ...] = tuple(CATEGORICAL[i][0] if i in CATEGORICAL else RANKING[i] for i in range(14))
OTHER = "other"


def _first(value: Any) -> Any:
    return value[0] if isinstance(value, (list, tuple)) and value else value


def _category(value: Any) -> str | None:
    value = _first(value)
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value).strip()


def _number(value: Any) -> float | None:
    value = _first(value)
    try:
        out = float(value)
    except (TypeError, ValueError):
        return None
    return out if math.isfinite(out) else None


@dataclass(frozen=True)
class Vocabulary:
    """tag -> the values that have their own class (class i = values[i]; last = other)."""

    classes: Mapping[str, tuple[str, ...]]

    def encode(self, tag: str, value: Any) -> int:
        """Class index of ``value`` for ``tag``, or -1 when the tag is missing."""
        cat = _category(value)
        if cat is None:
            return -1
        known = self.classes[tag]
        n_classes = dict(CATEGORICAL.values())[tag]
        return known.index(cat) if cat in known else n_classes - 1

    def to_json(self) -> dict[str, list[str]]:
        return {k: list(v) for k, v in self.classes.items()}

    @classmethod
    def from_json(cls, data: Mapping[str, Sequence[str]]) -> "Vocabulary":
        return cls({k: tuple(v) for k, v in data.items()})


def build_vocabulary(exifs: Sequence[Mapping[str, Any]]) -> Vocabulary:
    """The k-1 most frequent values of each categorical tag (ties: alphabetical)."""
    classes = {}
    for tag, k in CATEGORICAL.values():
        counts = Counter(c for c in (_category(e.get(tag)) for e in exifs) if c is not None)
        ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
        classes[tag] = tuple(v for v, _ in ranked[:k - 1])
    return Vocabulary(classes)


def encode_photo(exif: Mapping[str, Any], vocab: Vocabulary) -> tuple[torch.Tensor, torch.Tensor]:
    """(14,) class indices (-1 = missing; only categorical positions used) and (14,) ranking
    values (NaN = missing; only ranking positions used)."""
    cats = torch.full((14,), -1, dtype=torch.long)
    vals = torch.full((14,), float("nan"), dtype=torch.float64)
    for i, (tag, _) in CATEGORICAL.items():
        cats[i] = vocab.encode(tag, exif.get(tag))
    for i, tag in RANKING.items():
        v = _number(exif.get(tag))
        vals[i] = float("nan") if v is None else v
    return cats, vals


def pair_targets(cats1: torch.Tensor, vals1: torch.Tensor, vals2: torch.Tensor,
                 mask_ties: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """Targets and masks of the 14 heads for pairs (batched: (B, 14) inputs).

    Categorical positions: the first photo's class. Ranking positions: 1 if the first
    photo's value is >= the second's (the authors' rule), else 0.
    """
    ranking = torch.tensor([i in RANKING for i in range(14)])
    rank_target = (vals1 >= vals2).float()
    rank_mask = ~(torch.isnan(vals1) | torch.isnan(vals2))
    if mask_ties:
        rank_mask &= vals1 != vals2
    target = torch.where(ranking, rank_target, cats1.clamp(min=0).float())
    mask = torch.where(ranking, rank_mask, cats1 >= 0)
    return target, mask
