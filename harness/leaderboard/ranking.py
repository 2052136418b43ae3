"""Ranks in groups: a detector not significantly different from the one ranked just above
shares its rank (printed ``=k``).

The tests are the paired comparisons of ``comparisons.csv`` (:func:`harness.metrics.compare_detectors`):
the row of generator ``mean`` when the ranking is by a mean over several generators (a
paired bootstrap of the mean), the generator's own row when there is one (DeLong for AUC,
a paired bootstrap for AP). Only AUC and AP have tests; any other metric ranks plainly,
and the note under the table says so. The p-values of the n-1 adjacent pairs are
Holm-adjusted together (:func:`harness.stats.holm`).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import pandas as pd

from harness.stats import holm

__all__ = ["Ranks", "rank_groups", "TESTED_METRICS"]

#: metrics whose differences comparisons.csv tests
TESTED_METRICS = ("auc", "ap")
_METHODS = {"delong": "paired DeLong test", "bootstrap": "paired bootstrap"}


@dataclass(frozen=True)
class Ranks:
    """Per detector, in ranked order: its rank (the position of its group's first member),
    whether it shares that rank with the detector above, and the label (``2`` or ``=2``);
    ``note``: the rule, printed under the table."""

    positions: list[int]
    shared: list[bool]
    note: str

    @property
    def labels(self) -> list[str]:
        return [f"={p}" if s else str(p) for p, s in zip(self.positions, self.shared)]


def rank_groups(detectors: Sequence[str], metric: str, comparisons: pd.DataFrame | None, *, dataset: str,
                perturbation: str, generators: Sequence[str], alpha: float) -> Ranks:
    """Ranks of ``detectors`` (already in ranked order) by the mean of ``metric`` over ``generators``."""
    n = len(detectors)
    if n < 2:
        return Ranks(list(range(1, n + 1)), [False] * n, "")
    if metric not in TESTED_METRICS:
        return _plain(n, f"Ranked plainly: no significance test of {metric} is available (comparisons.csv "
                         f"tests {' and '.join(TESTED_METRICS)} only), so adjacent ranks may not differ significantly.")
    rows = _pair_rows(detectors, comparisons, dataset, perturbation, generators)
    p = np.array([_num(r, f"p_{metric}") for r in rows])
    if np.isnan(p).all():
        return _plain(n, f"Ranked plainly: the run has no paired test of {metric} for these detectors "
                         "(a run without bootstrap replicates has none for means over generators).")
    shared = [False] + [bool(q >= alpha) for q in holm(p)]  # NaN (untested) >= alpha is False
    positions = [1]
    for i in range(1, n):
        positions.append(positions[-1] if shared[i] else i + 1)
    return Ranks(positions, shared, _rule(rows, metric, generators, alpha, untested=int(np.isnan(p).sum())))


def _plain(n: int, note: str) -> Ranks:
    return Ranks(list(range(1, n + 1)), [False] * n, note)


def _pair_rows(detectors: Sequence[str], comparisons: pd.DataFrame | None, dataset: str, perturbation: str,
               generators: Sequence[str]) -> list[dict]:
    """The comparison row of each adjacent pair (``{}`` where comparisons.csv has none)."""
    if comparisons is None or comparisons.empty:
        return [{} for _ in detectors[1:]]
    generator = "mean" if len(generators) > 1 else generators[0] if generators else ""
    part = comparisons[(comparisons["dataset"] == dataset) & (comparisons["perturbation"] == perturbation)
                       & (comparisons["generator"] == generator)]
    by_pair = {frozenset((r["detector_a"], r["detector_b"])): r for r in part.to_dict("records")}
    return [by_pair.get(frozenset(pair), {}) for pair in zip(detectors, detectors[1:])]


def _rule(rows: list[dict], metric: str, generators: Sequence[str], alpha: float, untested: int) -> str:
    methods = sorted({_method(r, metric) for r in rows if r}) or ["paired bootstrap"]
    of = "the mean over generators" if len(generators) > 1 else f"generator {generators[0]}"
    rule = (f"=k: not significantly different from the detector above ({' / '.join(methods)} of {of}, "
            f"Holm-adjusted over the {_pairs(len(rows))}, α = {alpha:g}).")
    if untested:
        rule += f" {untested} adjacent pair(s) had no test and are ranked plainly."
    return rule


def _method(row: dict, metric: str) -> str:
    """AUC's p-value is DeLong's for one generator, a bootstrap's for a mean; AP's always a bootstrap's."""
    return _METHODS.get(str(row.get("p_auc_method")), "paired bootstrap") if metric == "auc" else "paired bootstrap"


def _num(row: dict, key: str) -> float:
    value = row.get(key, math.nan)
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def _pairs(n: int) -> str:
    return "1 adjacent pair" if n == 1 else f"{n} adjacent pairs"
