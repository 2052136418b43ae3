"""The train x test matrices of a protocol and their in-distribution / cross-generator summary.

Every cell is a metrics row of :func:`harness.metrics.evaluate` for one trained model (a
detector trained on one training set) on one test generator: its value, its stratified
bootstrap interval, its counts. Threshold metrics (``acc``, ``bal_acc``, ...) use the
detector's own threshold (``threshold`` column), never one tuned on the test images.

A cell is *in-distribution* when the model's training set holds fakes of the test
generator (the diagonal of ``train-on-each``; for ``leave-one-out`` the generators it kept),
*cross-generator* otherwise. The summary gives, per detector, perturbation and metric, the
mean over the in-distribution cells, the mean over the cross-generator cells and their
difference (``gap``), each with an interval. The bootstrap weights of an image are the same
in every cell (:mod:`harness.stats`), so a mean's replicates are the means of the cells'
replicates and the gap's interval is paired. The intervals are over the test images; they
do not include the variation between training runs (one seed per model).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from harness.metrics import evaluate
from harness.stats import Bootstrap, percentile_interval

__all__ = ["Model", "MATRIX_COLUMNS", "SUMMARY_COLUMNS", "matrix_table", "summary_table"]

MATRIX_COLUMNS = ["detector", "train", "test_dataset", "test_generator", "perturbation", "in_distribution", "metric",
                  "value", "lo", "hi", "n_real", "n_fake", "n_failed", "threshold"]
SUMMARY_COLUMNS = ["detector", "perturbation", "metric", "in_distribution", "in_distribution_lo",
                   "in_distribution_hi", "n_in_distribution", "cross_generator", "cross_generator_lo",
                   "cross_generator_hi", "n_cross_generator", "gap", "gap_lo", "gap_hi", "in_distribution_cells",
                   "cross_generator_cells"]


@dataclass(frozen=True)
class Model:
    """A trained model as it appears in the scores (``alias``): its detector (display name),
    training set and the generators whose fakes it was trained on."""

    alias: str
    detector: str
    train: str
    generators: tuple[str, ...]


def matrix_table(scores: pd.DataFrame, models: Sequence[Model], metrics: Sequence[str],
                 bootstrap: Bootstrap) -> tuple[pd.DataFrame, dict]:
    """The matrices in long form (one row per model, test generator, perturbation and
    metric; :data:`MATRIX_COLUMNS`) and the bootstrap replicates per cell."""
    evaluation = evaluate(scores, bootstrap)
    by_alias = {m.alias: m for m in models}
    rows, replicates = [], {}
    for r in evaluation.metrics.to_dict("records"):
        model = by_alias.get(r["detector"])
        if model is None or r["generator"] == "real":
            continue
        cell = (model.detector, model.train, r["dataset"], r["generator"], r["perturbation"])
        reps = evaluation.replicates.get((r["detector"], r["dataset"], r["generator"], r["perturbation"]), {})
        for m in metrics:
            rows.append({"detector": model.detector, "train": model.train, "test_dataset": r["dataset"],
                         "test_generator": r["generator"], "perturbation": r["perturbation"],
                         "in_distribution": r["generator"] in model.generators, "metric": m, "value": r[m],
                         "lo": r.get(f"{m}_lo", np.nan), "hi": r.get(f"{m}_hi", np.nan), "n_real": r["n_real"],
                         "n_fake": r["n_fake"], "n_failed": r["n_failed"], "threshold": r["threshold"]})
            if m in reps:
                replicates[(*cell, m)] = reps[m]
    return pd.DataFrame(rows, columns=MATRIX_COLUMNS), replicates


def _mean(cells: pd.DataFrame, replicates: Mapping, ci: float) -> tuple[float, float, float, np.ndarray | None]:
    """Mean of the cells' values, its interval, and its replicates (None without a bootstrap);
    NaN when a cell is NaN (an under-powered metric)."""
    if cells.empty or cells["value"].isna().any():
        return np.nan, np.nan, np.nan, None
    keys = [tuple(k) for k in cells[["detector", "train", "test_dataset", "test_generator", "perturbation",
                                     "metric"]].itertuples(index=False)]
    if not all(k in replicates for k in keys):
        return float(cells["value"].mean()), np.nan, np.nan, None
    reps = np.mean([replicates[k] for k in keys], axis=0)
    lo, hi = percentile_interval(reps, ci)
    return float(cells["value"].mean()), lo, hi, reps


def _names(cells: pd.DataFrame) -> str:
    return ", ".join(f"{t}>{g}" for t, g in zip(cells["train"], cells["test_generator"]))


def summary_table(matrix: pd.DataFrame, replicates: Mapping, ci: float) -> pd.DataFrame:
    """Per detector, perturbation and metric: in-distribution mean, cross-generator mean and
    their gap, with intervals (:data:`SUMMARY_COLUMNS`)."""
    rows = []
    for (det, pert, metric), part in matrix.groupby(["detector", "perturbation", "metric"], sort=False):
        inside, across = part[part["in_distribution"]], part[~part["in_distribution"]]
        i_val, i_lo, i_hi, i_reps = _mean(inside, replicates, ci)
        c_val, c_lo, c_hi, c_reps = _mean(across, replicates, ci)
        g_lo, g_hi = percentile_interval(i_reps - c_reps, ci) if i_reps is not None and c_reps is not None \
            else (np.nan, np.nan)
        rows.append({"detector": det, "perturbation": pert, "metric": metric, "in_distribution": i_val,
                     "in_distribution_lo": i_lo, "in_distribution_hi": i_hi, "n_in_distribution": len(inside),
                     "cross_generator": c_val, "cross_generator_lo": c_lo, "cross_generator_hi": c_hi,
                     "n_cross_generator": len(across), "gap": i_val - c_val, "gap_lo": g_lo, "gap_hi": g_hi,
                     "in_distribution_cells": _names(inside), "cross_generator_cells": _names(across)})
    return pd.DataFrame(rows, columns=SUMMARY_COLUMNS)
