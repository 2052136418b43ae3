"""The demo's EXIF controls without the sweep: paired ΔAUC of each EXIF detector and its controls.

Trains, in this process, what the demo's jobs train for ``exif-oc``, ``exif-bc`` and their
control rows (``harness.demo.demo_jobs``: the random backbone is ``exif-backbone`` with 0
steps, same seed), given the two backbones, scores the zoo's test split without
perturbation and prints :func:`harness.metrics.compare_detectors` for each detector against
its controls (the same paired bootstrap as the demo's ``comparisons.csv``). The full demo
prints the same rows for its unperturbed cells; this script exists to get them where the
demo's whole sweep is too slow (a machine shared with other work).

    .venv/bin/python tests/benchmarks/exif_controls_check.py --backbone DIR --random-backbone DIR
    .venv/bin/python tests/benchmarks/exif_controls_check.py --backbone DIR --random-backbone DIR --detectors exif-oc
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backbone", type=Path, required=True, help="the trained exif-backbone folder")
    parser.add_argument("--random-backbone", type=Path, required=True, help="the 0-step exif-backbone folder")
    parser.add_argument("--protocol", default=None)
    parser.add_argument("--work", type=Path, default=None)
    parser.add_argument("--detectors", nargs="+", default=["exif-oc", "exif-bc"], choices=["exif-oc", "exif-bc"])
    args = parser.parse_args()

    import numpy as np
    import pandas as pd

    from harness.data.decode import load_image
    from harness.data.layouts import read_manifest
    from harness.data.zoo import DEFAULT_PROTOCOL, build_zoo
    from harness.demo import TRAIN_GENERATOR, demo_jobs
    from harness.detector import TrainingSet
    from harness.metrics import compare_detectors
    from harness.plugins import detectors
    from harness.stats import Bootstrap

    work = args.work or Path(tempfile.mkdtemp(prefix="exif-controls-"))
    zoo = build_zoo(args.protocol or DEFAULT_PROTOCOL, log=lambda m: None)
    labelled = read_manifest(zoo.manifest, dataset="zoo", split="train", generators=[TRAIN_GENERATOR])
    labelled = [s for s in labelled if s.label == 1 or s.subset in ("", TRAIN_GENERATOR)]
    data = {"labelled": labelled, "reals": [s for s in labelled if s.label == 0]}
    test = read_manifest(zoo.manifest, dataset="zoo", split="test")
    test_images = [load_image(s.path) for s in test]
    backbones = {"exif-backbone": str(args.backbone), "exif-backbone-random": str(args.random_backbone)}
    rows = []
    for job in demo_jobs():
        if job.detector not in args.detectors:
            continue
        name = job.alias or job.detector
        params = {**job.params, **{k: backbones[v] for k, v in job.needs.items()}}
        start = time.perf_counter()
        samples = data[job.data]
        folder = detectors()[job.detector].create(**params).fit(
            TrainingSet(samples, lambda s: load_image(s.path)), work / job.key, seed=0)
        det = detectors()[job.detector].create(**params, checkpoint=str(folder))
        det.load("cpu")
        scores = np.concatenate([det.score(test_images[i:i + 16]) for i in range(0, len(test_images), 16)])
        print(f"{name}: trained and scored in {time.perf_counter() - start:.0f}s")
        rows += [{"detector": name, "dataset": "zoo", "generator": s.generator, "subset": s.subset,
                  "sample_id": s.sample_id, "label": s.label, "perturbation": "none", "score": float(v),
                  "error": None, "threshold": float(det.threshold)} for s, v in zip(test, scores)]
    table = compare_detectors(pd.DataFrame(rows), Bootstrap(1000, 0.95, 0))
    controls = [j for j in demo_jobs() if j.control and j.detector in args.detectors]
    print("paired ΔAUC (detector - control), zoo test split, no perturbation, 95% bootstrap interval:")
    for job in controls:
        a, b = job.detector, job.alias
        part = table[((table["detector_a"] == a) & (table["detector_b"] == b))
                     | ((table["detector_a"] == b) & (table["detector_b"] == a))]
        for _, r in part.iterrows():
            sign = 1 if r["detector_a"] == a else -1
            lo, hi = sorted((sign * r["delta_auc_lo"], sign * r["delta_auc_hi"]))
            print(f"  {a} - {b:28s} {r['generator']:14s} ΔAUC {sign * r['delta_auc']:+.3f} [{lo:+.3f}, {hi:+.3f}] "
                  + (f"(AUC {r['auc_a' if sign > 0 else 'auc_b']:.3f} vs {r['auc_b' if sign > 0 else 'auc_a']:.3f}; "
                     if r["generator"] != "mean" else "(") + f"{int(r['n_real'])} reals, {int(r['n_fake'])} fakes)")


if __name__ == "__main__":
    main()
