"""Metrics of a sweep (DESIGN section 5), from scikit-learn's metric functions.

One row per (detector, dataset, generator, perturbation). "Generated" is the positive
class. The fakes of a generator are compared with the reals of the same subset when the
layout groups reals by subset (CNNDetection style), else with all reals of the dataset.
Accuracies use the detector's own threshold (``score > threshold`` means generated),
fixed without test data; ``oracle_acc_test_tuned`` is the best accuracy over all
thresholds, chosen on the test data itself, and is reported only under that name.
Cells whose score failed are excluded and counted in ``n_failed``.

With a :class:`~harness.stats.Bootstrap`, every row gets ``<metric>_lo``/``<metric>_hi``
(a stratified, seeded bootstrap: :mod:`harness.stats`) and DeLong's AUC interval
(``auc_delong_lo``/``auc_delong_hi``) as a check. ``ap_chance`` is AP's chance level (the
share of fakes). ``ap_real_positive`` is AP with the real class positive and the negated
score (the convention of the SDAIE authors' one-class tables, so their numbers can be set
beside ours); it is given for every detector, with its interval. A TPR at 1% (5%) FPR is NaN below 100 (20) reals: with fewer, "1% of the
reals" is no image at all. A dataset without generated images gives one row per detector
and perturbation under generator ``real``: its real accuracy is 1 - false-positive rate.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Collection, Iterable, Iterator, Mapping, Sequence

import numpy as np
import pandas as pd

from harness.stats import (BOOTSTRAP_METRICS, Bootstrap, bootstrap_p_value, delong, delong_paired, holm,
                           percentile_interval, replicate_calibration, replicate_metrics)

__all__ = ["METRIC_COLUMNS", "HIGHER_IS_BETTER", "MIN_REALS", "COMPARISON_COLUMNS", "Evaluation", "binary_metrics", "evaluate",
           "compute_metrics", "write_tables", "reliability", "CALIBRATION_METRICS", "EXTRA_INTERVAL_METRICS", "compare_detectors", "generator_means", "MEAN_GROUPS", "mean_over_generators", "strata"]

METRIC_COLUMNS = ["ap", "auc", "acc", "real_acc", "fake_acc", "bal_acc", "tpr_at_1fpr", "tpr_at_5fpr", "eer",
                  "oracle_acc_test_tuned", "brier", "ece", "ap_real_positive"]
#: calibration metrics: only for detectors whose score is a probability (``DetectorSpec.score_is_probability``)
CALIBRATION_METRICS = ("brier", "ece")
KEYS = ["detector", "dataset", "generator", "perturbation"]
#: the direction of every metric (results.json says it, as evaluation harnesses' results do)
HIGHER_IS_BETTER = {**{m: True for m in METRIC_COLUMNS}, "eer": False, "brier": False, "ece": False}
#: metrics with bootstrap intervals computed here rather than in :func:`harness.stats.replicate_metrics`
EXTRA_INTERVAL_METRICS = ("ap_real_positive",)
#: reals a TPR at a false-positive rate needs (1% of 100 reals is one image); fewer give NaN
MIN_REALS = {"tpr_at_1fpr": 100, "tpr_at_5fpr": 20}


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
        out["ap_real_positive"] = average_precision_score(1 - labels, -scores)
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
    """(key, reals, fakes) of every metrics row. A dataset with reals and no generated image
    gives one row per (detector, perturbation) under generator ``real`` (its false-positive
    rate); fakes without reals give rows too (their detection rate)."""
    for (det, ds, pert), part in scores.groupby(["detector", "dataset", "perturbation"], sort=True):
        fakes = part[part["label"] == 1]
        reals = part[part["label"] == 0]
        if fakes.empty:
            yield (det, ds, "real", pert), reals, fakes
        for gen, fk in fakes.groupby("generator", sort=True):
            subsets = set(fk["subset"]) if "subset" in fk else set()
            rl = reals[reals["subset"].isin(subsets)] if subsets and reals["subset"].isin(subsets).any() else reals
            yield (det, ds, gen, pert), rl, fk


def _ok(frame: pd.DataFrame) -> pd.DataFrame:
    return frame[frame["error"].isna() & frame["score"].notna()]


@dataclass
class Evaluation:
    """``metrics``: the table of ``metrics.csv``; ``replicates``: per row key, the bootstrap
    replicates of each metric of :data:`harness.stats.BOOTSTRAP_METRICS` (empty without a
    bootstrap), from which means over generators and paired comparisons get intervals."""

    metrics: pd.DataFrame
    replicates: dict[tuple, dict[str, np.ndarray]] = field(default_factory=dict)
    bootstrap: Bootstrap | None = None


class _Strata:
    """Bootstrap weights by stratum (the reals of a subset, the fakes of a generator), over
    every sample of the stratum in the sweep, so all rows draw the same weights for the
    same image. Rows carry their stratum's name in the column ``_stratum`` (:func:`strata`)."""

    def __init__(self, scores: pd.DataFrame, bootstrap: Bootstrap):
        self.bootstrap = bootstrap
        self._members = {name: pd.Index(sorted(set(ids)))
                         for name, ids in scores.groupby("_stratum")["sample_id"]}
        self._weights: dict[str, np.ndarray] = {}

    def weights(self, rows: pd.DataFrame) -> np.ndarray:
        """(B, len(rows)) weights of these rows, stratum by stratum."""
        out = np.zeros((self.bootstrap.n_boot, len(rows)))
        names, ids = rows["_stratum"].to_numpy(), rows["sample_id"].to_numpy()
        for name in np.unique(names):
            cols = np.flatnonzero(names == name)
            if name not in self._weights:
                self._weights[name] = self.bootstrap.weights(name, len(self._members[name]))
            out[:, cols] = self._weights[name][:, self._members[name].get_indexer(ids[cols])]
        return out


def strata(scores: pd.DataFrame) -> pd.Series:
    """The bootstrap stratum of every score row: ``dataset|real|subset`` or ``dataset|fake|generator|subset``."""
    subset = scores["subset"].astype(str) if "subset" in scores else pd.Series("", index=scores.index)
    real = scores["dataset"] + "|real|" + subset
    fake = scores["dataset"] + "|fake|" + scores["generator"] + "|" + subset
    return real.where(scores["label"] == 0, fake)


def evaluate(scores: pd.DataFrame, bootstrap: Bootstrap | None = None, probabilities: Collection[str] = ()) -> Evaluation:
    """Every metrics row of a scores table, with bootstrap intervals when ``bootstrap`` is
    given; the Brier score and ECE for the detectors named in ``probabilities`` (those whose
    score is a probability), NaN for the others."""
    resample = bootstrap is not None and bootstrap.n_boot > 0
    if resample:
        scores = scores.assign(_stratum=strata(scores))
    weights = _Strata(scores, bootstrap) if resample else None
    rows, replicates = [], {}
    for key, rl, fk in _groups(scores):
        part = pd.concat([rl, fk])
        ok_real, ok_fake = _ok(rl), _ok(fk)
        threshold = float(part["threshold"].iloc[0]) if "threshold" in part else 0.5
        row = dict(zip(KEYS, key))
        n_real, n_fake = len(ok_real), len(ok_fake)
        row.update(n_real=n_real, n_fake=n_fake, n_failed=int(len(part) - n_real - n_fake), threshold=threshold,
                   ap_chance=n_fake / (n_real + n_fake) if n_real and n_fake else float("nan"))
        labels = np.r_[np.zeros(n_real, int), np.ones(n_fake, int)]
        row.update(binary_metrics(labels, np.r_[ok_real["score"].to_numpy(), ok_fake["score"].to_numpy()], threshold))
        real_s, fake_s = ok_real["score"].to_numpy(), ok_fake["score"].to_numpy()
        calibrated = key[0] in probabilities and n_real + n_fake > 0
        if calibrated:
            point = replicate_calibration(real_s, fake_s, np.ones((1, n_real)), np.ones((1, n_fake)))
            row.update({m: float(point[m][0]) for m in CALIBRATION_METRICS})
        if weights is not None and n_real + n_fake == 0:  # every cell failed: no interval
            row.update({f"{m}_{end}": float("nan") for m in (*BOOTSTRAP_METRICS, *EXTRA_INTERVAL_METRICS,
                                                            *CALIBRATION_METRICS, "auc_delong") for end in ("lo", "hi")})
        elif weights is not None:
            wr, wf = weights.weights(ok_real), weights.weights(ok_fake)
            reps = replicate_metrics(real_s, fake_s, wr, wf, threshold)
            # the real class as the positive one: the reals' negated scores in the "fake" slot
            reps["ap_real_positive"] = replicate_metrics(-fake_s, -real_s, wf, wr, -threshold)["ap"]
            if calibrated:
                reps.update(replicate_calibration(real_s, fake_s, wr, wf))
            replicates[key] = reps
            for name in (*BOOTSTRAP_METRICS, *EXTRA_INTERVAL_METRICS, *CALIBRATION_METRICS):
                values = reps.get(name, np.array([np.nan]))
                row[f"{name}_lo"], row[f"{name}_hi"] = percentile_interval(values, bootstrap.ci)
            _, _, row["auc_delong_lo"], row["auc_delong_hi"] = delong(ok_real["score"], ok_fake["score"], bootstrap.ci)
        _blank_underpowered(row)
        rows.append(row)
    cols = KEYS + ["n_real", "n_fake", "n_failed", "threshold", "ap_chance"] + METRIC_COLUMNS
    if weights is not None:
        cols += [f"{m}_{end}" for m in (*BOOTSTRAP_METRICS, *EXTRA_INTERVAL_METRICS, *CALIBRATION_METRICS)
                 for end in ("lo", "hi")]
        cols += ["auc_delong_lo", "auc_delong_hi"]
    return Evaluation(pd.DataFrame(rows, columns=cols), replicates, bootstrap)


def write_tables(scores: pd.DataFrame | Iterable[pd.DataFrame], folder: Path, bootstrap: Bootstrap,
                 seen: Mapping[str, Collection[str]] | None = None, probabilities: Collection[str] = ()) -> list[Path]:
    """The tables of a run into ``folder``: ``metrics.csv`` (with ``seen``: the generators
    each detector's checkpoints were trained on), ``means.csv``, ``comparisons.csv`` and
    ``reliability.csv`` (the detectors in ``probabilities``). ``bootstrap.n_boot = 0``: no
    intervals. Returns the paths, in that order.

    ``scores`` is a scores table, or its slices, one per (dataset, perturbation) (:func:`slices`):
    every table is computed slice by slice, so only one slice's rows are held at a time, and
    the slices' tables are put in the order one table gives; the Holm adjustment of the
    comparisons runs over all of them at the end. Each row depends on its own (detector,
    dataset, perturbation) and the images of its dataset only, so the tables are those of
    the whole table (a test compares).
    """
    seen = seen or {}
    parts: dict[str, list[pd.DataFrame]] = {"metrics": [], "means": [], "comparisons": [], "reliability": []}
    for part in ([scores] if isinstance(scores, pd.DataFrame) else scores):
        evaluation = evaluate(part, bootstrap, probabilities)
        parts["metrics"].append(evaluation.metrics)
        parts["means"].append(generator_means(evaluation, seen))
        parts["comparisons"].append(compare_detectors(part, bootstrap, adjust=False))
        parts["reliability"].append(reliability(part, probabilities))
    keys = ["detector", "dataset", "perturbation"]
    table = _joined(parts["metrics"], keys)
    table.insert(4, "seen", [g in seen.get(d, ()) for d, g in zip(table["detector"], table["generator"])])
    comparisons = _joined(parts["comparisons"], None)
    if len(parts["comparisons"]) > 1 and len(comparisons):  # one table's order: per generator, then the means
        mean = comparisons["generator"].eq("mean")
        comparisons = comparisons.assign(_mean=mean, _gen=comparisons["generator"].where(~mean, "")).sort_values(
            ["_mean", "dataset", "_gen", "perturbation", "detector_a", "detector_b"], kind="stable",
            ignore_index=True).drop(columns=["_mean", "_gen"])
    comparisons["p_auc_holm"], comparisons["p_ap_holm"] = holm(comparisons["p_auc"]), holm(comparisons["p_ap"])
    paths = [folder / name for name in ("metrics.csv", "means.csv", "comparisons.csv", "reliability.csv")]
    table.to_csv(paths[0], index=False)
    _joined(parts["means"], keys).to_csv(paths[1], index=False)
    comparisons.to_csv(paths[2], index=False)
    _joined(parts["reliability"], [*keys, "bin_lo"]).to_csv(paths[3], index=False)
    return paths


def _joined(tables: list[pd.DataFrame], order: list[str] | None) -> pd.DataFrame:
    """The slices' tables as one, stably sorted by ``order`` (the order a single table has)."""
    tables = [t for t in tables if len(t)] or tables[:1]
    out = pd.concat(tables, ignore_index=True) if len(tables) > 1 else tables[0]
    if order and len(tables) > 1 and len(out):
        out = out.sort_values(order, kind="stable", ignore_index=True)
    return out


def slices(scores: pd.DataFrame) -> Iterator[pd.DataFrame]:
    """A scores table's (dataset, perturbation) slices, as :func:`write_tables` takes them."""
    for _, part in scores.groupby(["dataset", "perturbation"], sort=True):
        yield part


def _blank_underpowered(row: dict) -> None:
    """A TPR at x% FPR needs enough reals for x% of them to be at least one image."""
    for name, needed in MIN_REALS.items():
        if row["n_real"] < needed:
            for col in (name, f"{name}_lo", f"{name}_hi"):
                if col in row:
                    row[col] = float("nan")


def compute_metrics(scores: pd.DataFrame, bootstrap: Bootstrap | None = None,
                    probabilities: Collection[str] = ()) -> pd.DataFrame:
    """The metrics table from a scores table (columns as in ``scores.parquet``)."""
    return evaluate(scores, bootstrap, probabilities).metrics


def reliability(scores: pd.DataFrame, probabilities: Collection[str], bins: int = 10) -> pd.DataFrame:
    """Reliability diagram data of the probability detectors: per (detector, dataset,
    perturbation) and equal-width bin of the score, the images, their mean score and the
    fraction of them that are generated (all generators and reals of the dataset pooled)."""
    ok = _ok(scores[scores["detector"].isin(list(probabilities))])
    if ok.empty:
        return pd.DataFrame(columns=["detector", "dataset", "perturbation", "bin_lo", "bin_hi", "n", "mean_score",
                                     "fraction_generated"])
    which = np.minimum((np.clip(ok["score"].to_numpy(), 0, 1) * bins).astype(int), bins - 1)
    table = (ok.assign(bin=which).groupby(["detector", "dataset", "perturbation", "bin"], sort=True)
             .agg(n=("score", "size"), mean_score=("score", "mean"), fraction_generated=("label", "mean"))
             .reset_index())
    table.insert(3, "bin_lo", table.pop("bin") / bins)
    table.insert(4, "bin_hi", table["bin_lo"] + 1 / bins)
    return table


def mean_over_generators(metrics: pd.DataFrame, columns: list[str] | None = None) -> pd.DataFrame:
    """Means over generators per (detector, dataset, perturbation), with the generators listed."""
    columns = columns or METRIC_COLUMNS
    grouped = metrics.groupby(["detector", "dataset", "perturbation"], sort=False)
    out = grouped[columns].mean()
    out["generators"] = grouped["generator"].apply(lambda g: ",".join(sorted(g)))
    out["n_generators"] = grouped["generator"].nunique()
    return out.reset_index()


COMPARISON_COLUMNS = ["dataset", "generator", "perturbation", "detector_a", "detector_b", "generators", "n_real",
                      "n_fake", "auc_a", "auc_b", "delta_auc", "delta_auc_lo", "delta_auc_hi", "p_auc", "p_auc_method",
                      "ap_a", "ap_b", "delta_ap", "delta_ap_lo", "delta_ap_hi", "p_ap", "p_auc_holm", "p_ap_holm"]


def compare_detectors(scores: pd.DataFrame, bootstrap: Bootstrap, adjust: bool = True) -> pd.DataFrame:
    """Paired comparisons of every two detectors scored on the same images (``comparisons.csv``).

    Per (dataset, generator, perturbation) and pair: the AUC and AP difference (a - b) on
    the images both scored without error, its paired-bootstrap interval (both detectors
    resampled with the same weights), DeLong's paired p-value for AUC and the bootstrap
    p-value for AP. Rows with generator ``mean`` compare the means over the generators both
    have (listed in ``generators``), with bootstrap p-values. ``p_auc_holm``/``p_ap_holm``
    are Holm-adjusted over all rows of the table (family-wise error rate; ``adjust=False``
    leaves them to the caller, which adjusts over several tables at once).
    """
    from itertools import combinations

    ok = _ok(scores).assign(_stratum=lambda f: strata(f))
    weights = _Strata(ok, bootstrap) if bootstrap.n_boot > 0 else None
    rows_by_key: dict[tuple, dict[str, tuple[pd.DataFrame, pd.DataFrame]]] = {}
    for (det, ds, gen, pert), rl, fk in _groups(ok):
        if gen != "real" and len(rl) and len(fk):
            rows_by_key.setdefault((ds, gen, pert), {})[det] = (rl, fk)
    out, means = [], {}
    for (ds, gen, pert), by_detector in sorted(rows_by_key.items()):
        for a, b in combinations(sorted(by_detector), 2):
            row, deltas = _compare_pair(by_detector[a], by_detector[b], weights, bootstrap.ci)
            out.append({"dataset": ds, "generator": gen, "perturbation": pert, "detector_a": a, "detector_b": b,
                        "generators": gen, **row})
            if deltas is not None:
                means.setdefault((ds, pert, a, b), {})[gen] = deltas
    for (ds, pert, a, b), per_gen in sorted(means.items()):
        if len(per_gen) > 1:
            out.append(_mean_row(ds, pert, a, b, per_gen, bootstrap.ci))
    table = pd.DataFrame(out, columns=COMPARISON_COLUMNS)
    if adjust:
        table["p_auc_holm"], table["p_ap_holm"] = holm(table["p_auc"]), holm(table["p_ap"])
    return table


def _paired_frames(x: tuple[pd.DataFrame, pd.DataFrame], y: tuple[pd.DataFrame, pd.DataFrame]):
    """The reals and fakes both detectors scored: x's rows of them, with y's score as ``score_b``."""
    out = []
    for fx, fy in zip(x, y):
        fx, fy = fx.drop_duplicates("sample_id"), fy.drop_duplicates("sample_id")
        in_y = pd.Index(fy["sample_id"]).get_indexer(fx["sample_id"])
        keep = in_y >= 0
        out.append(fx[keep].assign(score_b=fy["score"].to_numpy()[in_y[keep]]))
    return out


def _compare_pair(x, y, weights: _Strata | None, ci: float) -> tuple[dict, dict | None]:
    reals, fakes = _paired_frames(x, y)
    ra, fa, rb, fb = (s.to_numpy() for s in (reals["score"], fakes["score"], reals["score_b"], fakes["score_b"]))
    delta, _, p_auc = delong_paired(np.vstack([ra, rb]), np.vstack([fa, fb]))
    # the first row of weights is all ones: the point estimates (equal to scikit-learn's, tested)
    wr, wf = np.ones((1, len(ra))), np.ones((1, len(fa)))
    if weights is not None:
        wr, wf = np.vstack([wr, weights.weights(reals)]), np.vstack([wf, weights.weights(fakes)])
    rep_a, rep_b = replicate_metrics(ra, fa, wr, wf, 0.0), replicate_metrics(rb, fb, wr, wf, 0.0)
    row = {"n_real": len(reals), "n_fake": len(fakes), "auc_a": rep_a["auc"][0], "auc_b": rep_b["auc"][0],
           "delta_auc": delta, "p_auc": p_auc, "p_auc_method": "delong", "ap_a": rep_a["ap"][0],
           "ap_b": rep_b["ap"][0], "delta_ap": rep_a["ap"][0] - rep_b["ap"][0]}
    if weights is None:
        return row, None
    deltas = {m: rep_a[m][1:] - rep_b[m][1:] for m in ("auc", "ap")}
    for m in ("auc", "ap"):
        row[f"delta_{m}_lo"], row[f"delta_{m}_hi"] = percentile_interval(deltas[m], ci)
    row["p_ap"] = bootstrap_p_value(deltas["ap"])
    return row, {**deltas, "point": (row["delta_auc"], row["delta_ap"]), "n": (len(reals), len(fakes))}


def _mean_row(ds: str, pert: str, a: str, b: str, per_gen: dict[str, dict], ci: float) -> dict:
    row = {"dataset": ds, "generator": "mean", "perturbation": pert, "detector_a": a, "detector_b": b,
           "generators": ",".join(sorted(per_gen)), "n_real": max(d["n"][0] for d in per_gen.values()),
           "n_fake": sum(d["n"][1] for d in per_gen.values()), "p_auc_method": "bootstrap"}
    for i, m in enumerate(("auc", "ap")):
        reps = np.mean([d[m] for d in per_gen.values()], axis=0)
        row[f"delta_{m}"] = float(np.mean([d["point"][i] for d in per_gen.values()]))
        row[f"delta_{m}_lo"], row[f"delta_{m}_hi"] = percentile_interval(reps, ci)
        row[f"p_{m}"] = bootstrap_p_value(reps)
    return row


MEAN_GROUPS = ("all", "unseen", "seen")


def generator_means(evaluation: Evaluation, seen: Mapping[str, Sequence[str]] | None = None) -> pd.DataFrame:
    """Means over generators per (detector, dataset, perturbation) and generator group
    (``all``, ``unseen``, ``seen``: by the generators each detector was trained on), with the
    generators each mean averages and, with a bootstrap, its interval (the mean of the rows'
    replicates). Real-only rows (generator ``real``) are not generators and are left out."""
    seen = {k: set(v) for k, v in (seen or {}).items()}
    table = evaluation.metrics[evaluation.metrics["generator"] != "real"]
    boot = evaluation.bootstrap if evaluation.replicates else None
    rows = []
    for (det, ds, pert), part in table.groupby(["detector", "dataset", "perturbation"], sort=False):
        trained = seen.get(det, set())
        for group in MEAN_GROUPS:
            gens = [g for g in part["generator"] if group == "all" or (g in trained) == (group == "seen")]
            if not gens:
                continue
            rows_of = part[part["generator"].isin(gens)]
            row = {"detector": det, "dataset": ds, "perturbation": pert, "group": group,
                   "generators": ",".join(sorted(gens)), "n_generators": len(gens)}
            row.update({m: float(rows_of[m].mean()) for m in METRIC_COLUMNS})
            if boot is not None:
                for m in (*BOOTSTRAP_METRICS, *EXTRA_INTERVAL_METRICS, *CALIBRATION_METRICS):
                    per_gen = [evaluation.replicates.get((det, ds, g, pert), {}).get(m) for g in gens]
                    if any(r is None for r in per_gen):
                        row[f"{m}_lo"] = row[f"{m}_hi"] = float("nan")
                        continue
                    reps = np.mean(per_gen, axis=0)
                    row[f"{m}_lo"], row[f"{m}_hi"] = percentile_interval(reps, boot.ci)
                    if rows_of[m].isna().any():  # a mean over a blank (under-powered) row is blank
                        row[m], row[f"{m}_lo"], row[f"{m}_hi"] = float("nan"), float("nan"), float("nan")
            rows.append(row)
    return pd.DataFrame(rows)
