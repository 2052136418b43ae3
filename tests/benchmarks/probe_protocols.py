"""The shortcut probe on every test row of the demo's zoo, per protocol.

    .venv/bin/python tests/benchmarks/probe_protocols.py [--protocols matched harmonised]

For each protocol: builds the zoo (cached after the first time), then for each generator
of the test split, the probe's cross-validated AUC (stratified 5-fold logistic regression
on the processing-history features, out-of-fold scores) against that generator's reals
(the matched reals of its subset, or all reals), with a 95% stratified bootstrap interval
(1000 replicates): what ``exifbench data check`` reports. A row whose interval covers 0.5
is not separable by processing history alone. Also the probe as the demo trains it (on
the train split: DCGAN faces and their reals) scored on each test row, with its interval.
With ``--features``, each row's features one by one as well: the univariate AUC of each
(above 0.5: higher on the generated images) and its mean on each class, which says what
still separates a row.
"""
from __future__ import annotations

import argparse
import time

import numpy as np

from harness.data.layouts import read_manifest
from harness.data.shortcut import FEATURES, probe_rows, separates, _features_or_none
from harness.data.zoo import build_zoo
from harness.stats import Bootstrap, percentile_interval, replicate_metrics


def _rows(manifest, split: str) -> dict[str, tuple[list[str], list[str]]]:
    samples = read_manifest(manifest, dataset="zoo", split=split)
    reals = [s for s in samples if s.label == 0]
    rows = {}
    for gen in sorted({s.generator for s in samples if s.label == 1}):
        mine = [s.path for s in reals if s.subset == gen] or [s.path for s in reals if not s.subset]
        rows[gen] = (mine, [s.path for s in samples if s.label == 1 and s.generator == gen])
    return rows


def _trained(train_rows, test_rows, boot: Bootstrap) -> dict[str, str]:
    """The probe trained on the train split's DCGAN row, scored on each test row."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    real, fake = train_rows["dcgan"]
    x = np.stack([_features_or_none(p) for p in (*real, *fake)])
    y = np.r_[np.zeros(len(real)), np.ones(len(fake))]
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=5000)).fit(x, y)
    out = {}
    for gen, (r, f) in test_rows.items():
        sr = model.predict_proba(np.stack([_features_or_none(p) for p in r]))[:, 1]
        sf = model.predict_proba(np.stack([_features_or_none(p) for p in f]))[:, 1]
        auc = replicate_metrics(sr, sf, np.ones((1, len(sr))), np.ones((1, len(sf))), 0.5)["auc"][0]
        reps = replicate_metrics(sr, sf, boot.weights(f"{gen}|real", len(sr)), boot.weights(f"{gen}|fake", len(sf)),
                                 0.5)["auc"]
        lo, hi = percentile_interval(reps, boot.ci)
        out[gen] = f"{auc:.2f} [{lo:.2f}, {hi:.2f}]"
    return out


def _feature_table(rows: dict[str, tuple[list[str], list[str]]], protocol: str) -> list[str]:
    """One line per row and feature: univariate AUC, mean on the reals, mean on the generated."""
    from sklearn.metrics import roc_auc_score

    lines = []
    for gen, (real, fake) in sorted(rows.items()):
        xr, xf = np.stack([_features_or_none(p) for p in real]), np.stack([_features_or_none(p) for p in fake])
        y, x = np.r_[np.zeros(len(xr)), np.ones(len(xf))], np.vstack([xr, xf])
        for j, name in enumerate(FEATURES):
            auc = roc_auc_score(y, x[:, j]) if np.ptp(x[:, j]) > 0 else 0.5
            lines.append(f"| {protocol} | {gen} | {name} | {auc:.2f} | {xr[:, j].mean():.3f} | {xf[:, j].mean():.3f} |")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--protocols", nargs="+", default=["harmonised", "matched"])
    parser.add_argument("--features", action="store_true", help="also each feature's univariate AUC and class means")
    args = parser.parse_args()
    boot = Bootstrap()
    features: list[str] = []
    print("| protocol | generator | n real | n generated | probe AUC, cross-validated [95% CI] | separates? "
          "| probe trained on train dcgan: AUC [95% CI] |")
    print("|---|---|---|---|---|---|---|")
    for protocol in args.protocols:
        start = time.monotonic()
        zoo = build_zoo(protocol, log=lambda _: None)
        test_rows = _rows(zoo.manifest, "test")
        trained = _trained(_rows(zoo.manifest, "train"), test_rows, boot)
        for row in probe_rows(test_rows, max_per_class=0, bootstrap=boot):
            res = row.result
            print(f"| {protocol} | {row.generator} | {res.n_real} | {res.n_fake} | {res.auc:.2f} [{res.lo:.2f}, "
                  f"{res.hi:.2f}] | {'yes' if separates(res) else 'no'} | {trained[row.generator]} |")
        print(f"<!-- {protocol}: {time.monotonic() - start:.0f}s -->")
        if args.features:
            features += _feature_table(test_rows, protocol)
    if features:
        print("\n| protocol | generator | feature | univariate AUC | mean, real | mean, generated |")
        print("|---|---|---|---|---|---|")
        print("\n".join(features))


if __name__ == "__main__":
    main()
