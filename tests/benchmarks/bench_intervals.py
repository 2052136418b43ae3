"""What intervals cost: the metrics of a sweep with and without the bootstrap, side by side.

By default the scores table has the demo's shape (5 detectors x 7 perturbations x 32 reals
and 22 + 47 + 46 fakes of three generators: 5,145 cells); ``--scores RUN/scores.parquet``
takes a real run's instead. Each variant runs ``--repeats`` times, interleaved, and the
fastest is kept (a shared machine's load varies).

    .venv/bin/python tests/benchmarks/bench_intervals.py [--scores PATH] [--bootstrap 1000] [--repeats 3]
"""
from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd

from harness.metrics import compare_detectors, evaluate
from harness.stats import Bootstrap


def demo_shaped(seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    images = [("real", f"r{i}", 0) for i in range(32)]
    images += [(g, f"{g}{i}", 1) for g, n in (("commercial-api", 22), ("dcgan", 47), ("open-diffusion", 46))
               for i in range(n)]
    rows = []
    for d, signal in enumerate(np.linspace(0.2, 1.5, 5)):
        for pert in ["none", "jpeg(quality=95)", "jpeg(quality=75)", "jpeg(quality=50)", "blur(sigma=1.0)",
                     "blur(sigma=2.0)", "resize(scale=0.5)"]:
            for gen, sid, label in images:
                rows.append((f"det{d}", "zoo", gen, "", pert, sid, label, rng.normal(signal * label), None, 0.5))
    return pd.DataFrame(rows, columns=["detector", "dataset", "generator", "subset", "perturbation", "sample_id",
                                       "label", "score", "error", "threshold"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scores", default=None)
    parser.add_argument("--bootstrap", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    frame = pd.read_parquet(args.scores) if args.scores else demo_shaped()
    boot = Bootstrap(args.bootstrap, 0.95, 0)
    variants = {"metrics, no intervals": lambda: evaluate(frame, None),
                f"metrics + {args.bootstrap} bootstrap replicates": lambda: evaluate(frame, boot),
                "paired comparisons (comparisons.csv)": lambda: compare_detectors(frame, boot)}
    compare_detectors(frame.head(400), Bootstrap(10, 0.95, 0))  # warm up: imports, first calls
    best = {name: float("inf") for name in variants}
    for _ in range(args.repeats):
        for name, run in variants.items():
            start = time.perf_counter()
            run()
            best[name] = min(best[name], time.perf_counter() - start)
    rows = evaluate(frame, None).metrics
    print(f"{len(frame)} cells, {len(rows)} metric rows, {frame['detector'].nunique()} detectors; "
          f"fastest of {args.repeats}:")
    base = best["metrics, no intervals"]
    for name, seconds in best.items():
        print(f"  {name:<45} {seconds:7.2f} s  ({seconds / base:.2f}x the metrics without intervals)")


if __name__ == "__main__":
    main()
