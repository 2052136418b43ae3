"""Uncertainty of detection metrics: stratified bootstrap, DeLong, paired comparisons.

A bootstrap replicate is a set of multinomial weights over the images of a row: reals and
fakes are resampled separately (a stratified bootstrap, so every replicate keeps the row's
numbers of reals and fakes), and the weights of a stratum depend only on the seed and the
stratum's name (dataset, real subset or generator), not on the detector or the
perturbation. So the reals shared by several generator rows get the same weights in each
of them, two detectors scored on the same images are resampled identically (a paired
bootstrap is the difference of their replicates), and a mean over generators is the mean
of the rows' replicates.

Every metric of a replicate is computed from weighted cumulative counts at the distinct
scores, in one vectorised pass for all replicates; with unit weights it gives exactly
scikit-learn's ``roc_auc_score``, ``average_precision_score`` and the accuracies of
:mod:`harness.metrics` (tested). Intervals are percentile intervals of the replicates.

DeLong's method (DeLong, DeLong and Clarke-Pearson 1988, in the midrank form of Sun and Xu
2014) gives the AUC's standard error in closed form: a check of the bootstrap, and the test
of paired AUC differences.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Sequence

import numpy as np

__all__ = ["BOOTSTRAP_METRICS", "Bootstrap", "replicate_metrics", "percentile_interval", "delong", "delong_paired",
           "bootstrap_p_value", "holm", "replicate_calibration"]

#: the metrics that get bootstrap intervals (``<metric>_lo``, ``<metric>_hi``)
BOOTSTRAP_METRICS = ("ap", "auc", "acc", "real_acc", "fake_acc", "bal_acc", "tpr_at_1fpr", "tpr_at_5fpr")

_CHUNK_CELLS = 8_000_000  # replicates x images per vectorised pass (64 MB of float64)


@dataclass(frozen=True)
class Bootstrap:
    """Seeded multinomial weights per stratum: ``n_boot`` replicates, interval level ``ci``."""

    n_boot: int = 1000
    ci: float = 0.95
    seed: int = 0

    def weights(self, stratum: str, n: int) -> np.ndarray:
        """(n_boot, n) resampling counts of a stratum of ``n`` images (each row sums to n)."""
        digest = hashlib.sha256(f"{self.seed}|{stratum}|{n}".encode()).digest()
        rng = np.random.default_rng(int.from_bytes(digest[:8], "little"))
        if n == 0:
            return np.zeros((self.n_boot, 0))
        return rng.multinomial(n, np.full(n, 1.0 / n), size=self.n_boot).astype(np.float64)


def replicate_metrics(real: np.ndarray, fake: np.ndarray, w_real: np.ndarray, w_fake: np.ndarray,
                      threshold: float) -> dict[str, np.ndarray]:
    """Each metric of :data:`BOOTSTRAP_METRICS` for every replicate (row) of the weights.

    ``real``/``fake`` are the scores (higher = generated); ``w_real`` (B, n_real) and
    ``w_fake`` (B, n_fake) the weights. A metric a replicate cannot have (no real, or no
    fake, with positive weight) is NaN.
    """
    real, fake = np.asarray(real, np.float64), np.asarray(fake, np.float64)
    w_real, w_fake = np.atleast_2d(w_real), np.atleast_2d(w_fake)
    n = len(real) + len(fake)
    step = max(1, _CHUNK_CELLS // max(n, 1))
    parts = [_replicates(real, fake, w_real[i:i + step], w_fake[i:i + step], threshold)
             for i in range(0, w_real.shape[0], step)]
    return {k: np.concatenate([p[k] for p in parts]) for k in BOOTSTRAP_METRICS}


def _replicates(real, fake, w_real, w_fake, threshold) -> dict[str, np.ndarray]:
    with np.errstate(invalid="ignore", divide="ignore"):
        n_neg, n_pos = w_real.sum(axis=1), w_fake.sum(axis=1)
        real_acc = (w_real * (real <= threshold)).sum(axis=1) / n_neg
        fake_acc = (w_fake * (fake > threshold)).sum(axis=1) / n_pos
        out = {"real_acc": real_acc, "fake_acc": fake_acc, "bal_acc": (real_acc + fake_acc) / 2,
               "acc": (real_acc * n_neg + fake_acc * n_pos) / (n_neg + n_pos)}
        scores = np.concatenate([real, fake])
        positive = np.concatenate([np.zeros(len(real)), np.ones(len(fake))])
        order = np.argsort(-scores, kind="stable")
        ranked = scores[order]
        ends = np.r_[np.flatnonzero(np.diff(ranked) != 0), len(ranked) - 1]  # last index of each tie group
        weights = np.concatenate([w_real, w_fake], axis=1)[:, order]
        tp = np.cumsum(weights * positive[order], axis=1)[:, ends]
        fp = np.cumsum(weights * (1 - positive[order]), axis=1)[:, ends]
        tpr, fpr = tp / n_pos[:, None], fp / n_neg[:, None]
        zero = np.zeros((len(tpr), 1))
        tpr0, fpr0 = np.hstack([zero, tpr]), np.hstack([zero, fpr])
        out["auc"] = (np.diff(fpr0, axis=1) * (tpr0[:, 1:] + tpr0[:, :-1]) / 2).sum(axis=1)
        precision = np.where(tp + fp > 0, tp / (tp + fp), 0.0)
        out["ap"] = (np.diff(tpr0, axis=1) * precision).sum(axis=1)
        for name, rate in (("tpr_at_1fpr", 0.01), ("tpr_at_5fpr", 0.05)):
            out[name] = np.where(fpr0 <= rate + 1e-12, tpr0, 0.0).max(axis=1)
        defined = (n_neg > 0) & (n_pos > 0)
        for name in ("auc", "ap", "tpr_at_1fpr", "tpr_at_5fpr", "bal_acc"):
            out[name] = np.where(defined, out[name], np.nan)
    return out


def percentile_interval(replicates: np.ndarray, ci: float) -> tuple[float, float]:
    """The central ``ci`` interval of the replicates (NaN replicates ignored)."""
    values = np.asarray(replicates, np.float64)
    values = values[~np.isnan(values)]
    if not len(values):
        return float("nan"), float("nan")
    lo, hi = np.quantile(values, [(1 - ci) / 2, 1 - (1 - ci) / 2])
    return float(lo), float(hi)


def bootstrap_p_value(differences: np.ndarray) -> float:
    """Two-sided p-value of "no difference" from paired bootstrap differences: twice the
    smaller share of replicates on either side of zero (at least 1/B)."""
    d = np.asarray(differences, np.float64)
    d = d[~np.isnan(d)]
    if not len(d):
        return float("nan")
    share = min(np.mean(d <= 0), np.mean(d >= 0))
    return float(min(1.0, max(2 * share, 1.0 / len(d))))


# --- DeLong ------------------------------------------------------------------------------

def _midranks(x: np.ndarray) -> np.ndarray:
    from scipy.stats import rankdata

    return rankdata(x, method="average", axis=-1)


def _structural_components(real: np.ndarray, fake: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """AUCs and DeLong's placement values of k score vectors: real (k, m), fake (k, n)."""
    m, n = real.shape[1], fake.shape[1]
    both = np.concatenate([fake, real], axis=1)
    t_z, t_x, t_y = _midranks(both), _midranks(fake), _midranks(real)
    auc = t_z[:, :n].sum(axis=1) / (m * n) - (n + 1.0) / (2.0 * m)
    v01 = (t_z[:, :n] - t_x) / m          # per fake: share of reals below it
    v10 = 1.0 - (t_z[:, n:] - t_y) / n    # per real: share of fakes above it
    return auc, v01, v10


def delong(real: Sequence[float], fake: Sequence[float], ci: float = 0.95) -> tuple[float, float, float, float]:
    """AUC, its DeLong standard error and the normal ``ci`` interval (clipped to [0, 1])."""
    real, fake = np.asarray(real, np.float64)[None], np.asarray(fake, np.float64)[None]
    if real.shape[1] < 2 or fake.shape[1] < 2:
        return float("nan"), float("nan"), float("nan"), float("nan")
    auc, v01, v10 = _structural_components(real, fake)
    se = float(np.sqrt(np.var(v01, ddof=1) / fake.shape[1] + np.var(v10, ddof=1) / real.shape[1]))
    from scipy.stats import norm  # here: reading metrics needs no scipy.stats (seconds to import)

    z = norm.ppf(1 - (1 - ci) / 2)
    a = float(auc[0])
    return a, se, max(0.0, a - z * se), min(1.0, a + z * se)


def delong_paired(real: np.ndarray, fake: np.ndarray) -> tuple[float, float, float]:
    """Paired DeLong test of two detectors on the same images.

    ``real`` (2, m) and ``fake`` (2, n) hold both detectors' scores of the same reals and
    fakes; returns (AUC_a - AUC_b, its standard error, two-sided p-value).
    """
    real, fake = np.asarray(real, np.float64), np.asarray(fake, np.float64)
    if real.shape[1] < 2 or fake.shape[1] < 2:
        return float("nan"), float("nan"), float("nan")
    auc, v01, v10 = _structural_components(real, fake)
    cov = np.cov(v01) / fake.shape[1] + np.cov(v10) / real.shape[1]
    delta = float(auc[0] - auc[1])
    var = float(cov[0, 0] + cov[1, 1] - 2 * cov[0, 1])
    if var <= 1e-15:
        return delta, 0.0, (1.0 if abs(delta) < 1e-12 else 0.0)
    from scipy.stats import norm

    se = float(np.sqrt(var))
    return delta, se, float(2 * norm.sf(abs(delta) / se))


def holm(p_values: Sequence[float]) -> np.ndarray:
    """Holm's step-down adjustment (family-wise error rate); NaN p-values stay NaN."""
    from statsmodels.stats.multitest import multipletests

    p = np.asarray(p_values, np.float64)
    out = np.full(len(p), np.nan)
    ok = ~np.isnan(p)
    if ok.any():
        out[ok] = multipletests(p[ok], method="holm")[1]
    return out


def replicate_calibration(real: np.ndarray, fake: np.ndarray, w_real: np.ndarray, w_fake: np.ndarray,
                          bins: int = 10) -> dict[str, np.ndarray]:
    """Brier score and expected calibration error of probability scores, per replicate.

    ECE: equal-width bins of the predicted probability on [0, 1]; the weighted mean over bins
    of |fraction generated - mean probability| (Guo et al., ICML 2017). Scores outside [0, 1]
    are clipped into the end bins for the ECE and count as they are for the Brier score.
    """
    scores = np.concatenate([np.asarray(real, np.float64), np.asarray(fake, np.float64)])
    labels = np.concatenate([np.zeros(len(real)), np.ones(len(fake))])
    weights = np.concatenate([np.atleast_2d(w_real), np.atleast_2d(w_fake)], axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        total = weights.sum(axis=1)
        brier = weights @ (scores - labels) ** 2 / total
        which = np.minimum((np.clip(scores, 0, 1) * bins).astype(int), bins - 1)
        member = np.eye(bins)[which]                      # (n, bins)
        count = weights @ member                          # (B, bins)
        gap = np.abs(weights @ (member * labels[:, None]) - weights @ (member * scores[:, None]))
        ece = gap.sum(axis=1) / total                     # sum over bins of count * |mean y - mean p| / N
    return {"brier": brier, "ece": np.where(count.sum(axis=1) > 0, ece, np.nan)}
