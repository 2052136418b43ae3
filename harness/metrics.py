"""Metrics of a sweep (DESIGN section 5), from scikit-learn's metric functions.

One row per (detector, dataset, generator, perturbation). "Generated" is the positive
class. The fakes of a generator are compared with the reals of the same subset when the
layout groups reals by subset (CNNDetection style), else with all reals of the dataset.
Accuracies use the detector's own threshold (``score > threshold`` means generated),
fixed without test data; ``oracle_acc_test_tuned`` is the best accuracy over all
thresholds, chosen on the test data itself, and is reported only under that name.
Cells whose score failed are excluded and counted in ``n_failed``.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["METRIC_COLUMNS", "binary_metrics", "compute_metrics", "mean_over_generators"]

METRIC_COLUMNS = ["ap", "auc", "acc", "real_acc", "fake_acc", "bal_acc", "tpr_at_1fpr", "tpr_at_5fpr", "eer",
                  "oracle_acc_test_tuned"]
KEYS = ["detector", "dataset", "generator", "perturbation"]


def tpr_at_fpr(fpr: np.ndarray, tpr: np.ndarray, target: float) -> float:
    """The highest TPR reachable with FPR at most ``target`` (no interpolation)."""
    ok = fpr <= target + 1e-12
    return float(tpr[ok].max()) if ok.any() else 0.0


def equal_error_rate(fpr: np.ndarray, tpr: np.ndarray) -> float:
    """EER: where FPR equals FNR, linearly interpolated between ROC points."""
    fnr = 1.0 - tpr
    diff = fpr - fnr
    i = int(np.argmax(diff >= 0))
    if i == 0:
        return float(fpr[0])
    x0, x1 = diff[i - 1], diff[i]
    w = x0 / (x0 - x1) if x1 != x0 else 0.0
    return float(fpr[i - 1] + w * (fpr[i] - fpr[i - 1]))


def binary_metrics(labels: np.ndarray, scores: np.ndarray, threshold: float) -> dict[str, float]:
    # imported here: reading metrics and rendering leaderboards need no scikit-learn (seconds)
    from sklearn.metrics import accuracy_score, average_precision_score, roc_auc_score, roc_curve

    labels = np.asarray(labels, dtype=int)
    scores = np.asarray(scores, dtype=np.float64)
    pred = (scores > threshold).astype(int)
    real, fake = labels == 0, labels == 1
    out = dict.fromkeys(METRIC_COLUMNS, float("nan"))
    out["real_acc"] = accuracy_score(labels[real], pred[real]) if real.any() else float("nan")
    out["fake_acc"] = accuracy_score(labels[fake], pred[fake]) if fake.any() else float("nan")
    if len(labels):
        out["acc"] = accuracy_score(labels, pred)
    if real.any() and fake.any():
        out["bal_acc"] = (out["real_acc"] + out["fake_acc"]) / 2
        out["ap"] = average_precision_score(labels, scores)
        out["auc"] = roc_auc_score(labels, scores)
        fpr, tpr, _ = roc_curve(labels, scores)
        out["tpr_at_1fpr"] = tpr_at_fpr(fpr, tpr, 0.01)
        out["tpr_at_5fpr"] = tpr_at_fpr(fpr, tpr, 0.05)
        out["eer"] = equal_error_rate(fpr, tpr)
        # best accuracy over thresholds: n_correct = TP + TN = tpr*P + (1-fpr)*N
        n_pos, n_neg = fake.sum(), real.sum()
        out["oracle_acc_test_tuned"] = float(np.max(tpr * n_pos + (1 - fpr) * n_neg) / (n_pos + n_neg))
    return {k: float(v) for k, v in out.items()}


def _groups(scores: pd.DataFrame):
    for (det, ds, pert), part in scores.groupby(["detector", "dataset", "perturbation"], sort=True):
        fakes = part[part["label"] == 1]
        reals = part[part["label"] == 0]
        for gen, fk in fakes.groupby("generator", sort=True):
            subsets = set(fk["subset"]) if "subset" in fk else set()
            rl = reals[reals["subset"].isin(subsets)] if subsets and reals["subset"].isin(subsets).any() else reals
            yield (det, ds, gen, pert), pd.concat([rl, fk])


def compute_metrics(scores: pd.DataFrame) -> pd.DataFrame:
    """The metrics table from a scores table (columns as in ``scores.parquet``)."""
    rows = []
    for key, part in _groups(scores):
        ok = part[part["error"].isna() & part["score"].notna()]
        threshold = float(part["threshold"].iloc[0]) if "threshold" in part else 0.5
        row = dict(zip(KEYS, key))
        row.update(n_real=int((ok["label"] == 0).sum()), n_fake=int((ok["label"] == 1).sum()),
                   n_failed=int(len(part) - len(ok)), threshold=threshold)
        row.update(binary_metrics(ok["label"].to_numpy(), ok["score"].to_numpy(), threshold))
        rows.append(row)
    cols = KEYS + ["n_real", "n_fake", "n_failed", "threshold"] + METRIC_COLUMNS
    return pd.DataFrame(rows, columns=cols)


def mean_over_generators(metrics: pd.DataFrame, columns: list[str] | None = None) -> pd.DataFrame:
    """Means over generators per (detector, dataset, perturbation), with the generators listed."""
    columns = columns or METRIC_COLUMNS
    grouped = metrics.groupby(["detector", "dataset", "perturbation"], sort=False)
    out = grouped[columns].mean()
    out["generators"] = grouped["generator"].apply(lambda g: ",".join(sorted(g)))
    out["n_generators"] = grouped["generator"].nunique()
    return out.reset_index()
