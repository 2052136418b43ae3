"""GenImage scale, by simulation: planning, cache look-ups, throughput and memory against
the number of images.

Work per size N: N synthetic 32 x 32 PNGs (written once into ``--work``, half "real", half
"generated") x 2 fast detectors (``spectrum`` and ``npr`` at its CPU preset on 32-px
crops) x 3 perturbations = 6 N cells. Each size runs in a fresh process with a fresh Ray
and an empty score cache, and reports:

- reading the dataset (hash + header of every file) and planning every cell's key;
- the cache look-up time per cell, on an empty cache and on a full one;
- the cold sweep: wall time, cells per second (end to end and in the compute phase),
  the engine's busy times;
- peak memory (RSS; PSS counts shared pages once) of the driver and of the driver plus every
  Ray process, sampled every 0.2 s from /proc;
- the size of ``scores.sqlite``;
- a fully cached re-run (same config, new ``--out``): its wall time and the driver's peak.

``--compute-share F --share-above N``: for sizes above N, the cold sweep computes only a
share F of the samples (every ``1/F``-th): the cache is first filled with a placeholder row
for each cell of the others (the fill is timed apart), so every other step (reading,
planning, look-ups, handing out the missing cells, writing ``scores.parquet``, the metrics,
the cached re-run) runs at the full size while the compute, whose rate per cell does not
depend on the size, fits the machine's time. The metrics of such a run are meaningless;
its timings are what is measured.

``--plan-only N``: no files and no Ray: N synthetic samples (ids are hashes of their
index), every cell's key planned, the cache filled with a row per cell, then the
look-up of every cell and the streaming write of ``scores.parquet`` timed, with the
driver's peak memory: the costs that grow with the plan, at sizes whose sweep would not
fit the machine's time.

Prints one JSON line per size and a table side by side, with the projection of the
per-cell costs to 10^8 cells.

    python tests/benchmarks/bench_scale.py [--sizes 10000 100000] [--plan-only 1000000] [--work DIR]
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_memory import PeakSampler, rss_pss_kib  # noqa: E402

GRID = '["none", "jpeg(quality=80)", "resize(scale=0.5)"]'
PROJECT_CELLS = 10 ** 8


def make_images(root: Path, n: int) -> Path:
    """``n`` 32 x 32 PNGs, binary-folders layout, 1,000 per folder (written once)."""
    done = root / ".complete"
    if done.exists():
        return root
    from concurrent.futures import ProcessPoolExecutor

    blocks = [(root, lo, min(n, lo + 20_000)) for lo in range(0, n, 20_000)]
    with ProcessPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        list(pool.map(_write_block, blocks))
    done.write_text(str(n))
    return root


def _write_block(block: tuple[Path, int, int]) -> None:
    import numpy as np
    from PIL import Image

    root, lo, hi = block
    rng = np.random.default_rng(lo)
    for i in range(lo, hi):
        folder = root / "gen" / ("1_fake" if i % 2 else "0_real") / f"{i // 2000:04d}"
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(folder / f"{i:07d}.png")


def checkpoints(work: Path) -> dict[str, Path]:
    from harness.plugins import detectors
    from harness.testing import synthetic_training_set
    from harness.train.jobs import fit_locally

    train = synthetic_training_set(work / "train", n=8)
    out = {}
    for name, params in (("spectrum", {"n_bins": 16}), ("npr", {**dict(detectors()["npr"].test_params),
                                                                 "train_crop": 32})):
        ckpt = work / f"ckpt-{name}"
        if not (ckpt / "manifest.json").exists():
            fit_locally(name, params, train.samples, ckpt)
        out[name] = ckpt
    return out


def config_text(data: Path, ckpts: dict[str, Path], bootstrap: int) -> str:
    return (f'[run]\nseed = 0\nbatch_size = 96\n[[datasets]]\nname = "sim"\nlayout = "binary-folders"\n'
            f'root = "{data}"\n[[detectors]]\nname = "spectrum"\ncheckpoint = "{ckpts["spectrum"]}"\nn_bins = 16\n'
            f'[[detectors]]\nname = "npr"\ncheckpoint = "{ckpts["npr"]}"\ncrop = 32\n'
            f"[perturbations]\ngrid = {GRID}\n[metrics]\nbootstrap = {bootstrap}\n")


def write_config(path: Path, text: str):
    from harness.config import load_sweep

    path.write_text(text)
    return load_sweep(path)


def _driver_peak_mib() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _lookup_s(plan, cache, r: dict | None = None, name: str = "") -> float:
    """Wall seconds of looking up every cell; with ``r``, its CPU microseconds per cell too
    (on a shared machine the wall time also counts waiting for a core)."""
    from harness.engine.sweep import missing_mask

    start, cpu = time.perf_counter(), time.process_time()
    missing_mask(plan, cache, False)
    if r is not None:
        r[f"{name}_cpu_us_per_cell"] = 1e6 * (time.process_time() - cpu) / len(plan.cells)
    return time.perf_counter() - start



def _sampled_sweep(config, out: Path, cache):
    """One sweep with the memory of the driver and all Ray processes sampled: (result, seconds, sampler)."""
    from harness.engine.sweep import run_sweep

    sampler = PeakSampler()
    sampler.start()
    start = time.perf_counter()
    result = run_sweep(config, out, quiet=True, cache=cache, leaderboard=False)
    seconds = time.perf_counter() - start
    sampler.stop()
    return result, seconds, sampler

def child_sweep(n: int, work: Path, bootstrap: int, share: float = 1.0) -> dict:
    from harness.engine.plan import make_plan, read_dataset
    from harness.engine.score_cache import ScoreCache

    data = make_images(work / f"images{n}", n)
    config = write_config(work / f"sweep{n}.toml", config_text(data, checkpoints(work), bootstrap))
    db = work / f"scores{n}.sqlite"
    for p in work.glob(f"scores{n}.sqlite*"):
        p.unlink()
    cache = ScoreCache(db)
    r = {"n_images": n}
    start = time.perf_counter()
    samples = [s for ds in config.datasets for s in read_dataset(ds)]
    r["read_dataset_s"] = time.perf_counter() - start
    start = time.perf_counter()
    plan = make_plan(config, samples)
    for i in range(len(plan.samples)):
        plan.cells.keys_of(i)
    r["plan_keys_s"] = time.perf_counter() - start
    r["cells"] = len(plan.cells)
    r["lookup_empty_us_per_cell"] = 1e6 * _lookup_s(plan, cache) / len(plan.cells)
    if share < 1.0:
        every = max(1, round(1 / share))
        r["mode"] = f"computes 1 sample in {every}; the others' cells pre-filled with placeholder scores"
        start = time.perf_counter()
        block = []
        for i in range(len(plan.samples)):
            if i % every:
                block.extend((k, 0.5, None) for k in plan.cells.keys_of(i))
            if len(block) >= 100_000:
                cache.put_many(block)
                block = []
        cache.put_many(block)
        r["fill_cache_s"] = time.perf_counter() - start
    del plan, samples

    from harness.runtime import ensure_ray

    for attempt in range(3):  # on a loaded machine Ray's start can time out: try again
        try:
            start = time.perf_counter()
            ensure_ray()
            break
        except Exception:  # noqa: BLE001
            if attempt == 2:
                raise
    r["ray_start_s"] = time.perf_counter() - start  # not part of sweep_s
    result, r["sweep_s"], sampler = _sampled_sweep(config, work / f"run{n}", cache)
    engine = json.loads((work / f"run{n}" / "run.json").read_text())["engine"]
    r.update(computed=result.computed, failed=result.failed, engine=engine,
             cells_per_s=result.computed / r["sweep_s"],
             # the compute phase once the models have loaded (loading is a constant, not a rate)
             compute_cells_per_s=result.computed / (engine["wall_s"] - engine["load_s"])
             if engine["wall_s"] > engine["load_s"] else None,
             peak_all_rss_mib=sampler.peak_rss / 1024, peak_all_pss_mib=sampler.peak_pss / 1024,
             peak_driver_rss_mib=sampler.peak_driver / 1024, processes=sampler.processes)
    r["sqlite_mib"] = sum(p.stat().st_size for p in work.glob(f"scores{n}.sqlite*")) / 2 ** 20
    r["sqlite_bytes_per_cell"] = r["sqlite_mib"] * 2 ** 20 / r["cells"]
    r["lookup_full_us_per_cell"] = 1e6 * _lookup_s(make_plan(config), cache) / r["cells"]

    import ray

    ray.shutdown()  # the re-run needs no Ray: its driver alone is measured
    before = rss_pss_kib(os.getpid())[0] / 1024
    again, r["cached_rerun_s"], sampler = _sampled_sweep(config, work / f"run{n}-again", cache)
    r["cached_rerun_computed"] = again.computed
    r["cached_rerun_driver_rss_before_mib"] = before
    r["cached_rerun_driver_peak_rss_mib"] = sampler.peak_driver / 1024
    return r


def child_plan_only(n: int, work: Path, fill_max: int = 10 ** 9) -> dict:
    """Plan, fill the cache, look up and write scores for ``n`` synthetic samples."""
    import hashlib

    from harness.api import Sample
    from harness.engine.plan import make_plan
    from harness.engine.score_cache import ScoreCache
    from harness.engine.sweep import write_scores

    config = write_config(work / f"plan{n}.toml", config_text(work, checkpoints(work), 0))
    start = time.perf_counter()
    samples = [Sample(hashlib.sha256(str(i).encode()).hexdigest(), f"/sim/{i:08d}.png", i % 2, "sim",
                      "gen" if i % 2 else "real", "gen" if i % 2 else "real", width=32, height=32, format="png")
               for i in range(n)]
    r = {"n_images": n, "mode": "plan-only (synthetic samples, no files, no Ray)",
         "make_samples_s": time.perf_counter() - start}
    start, cpu = time.perf_counter(), time.process_time()
    plan = make_plan(config, samples)
    for i in range(len(plan.samples)):
        plan.cells.keys_of(i)
    r["plan_keys_s"] = time.perf_counter() - start
    r["cells"] = len(plan.cells)
    r["plan_keys_cpu_us_per_cell"] = 1e6 * (time.process_time() - cpu) / r["cells"]
    db = work / f"plan{n}.sqlite"
    for p in work.glob(f"plan{n}.sqlite*"):
        p.unlink()
    cache = ScoreCache(db)
    r["lookup_empty_us_per_cell"] = 1e6 * _lookup_s(plan, cache, r, "lookup_empty") / len(plan.cells)
    r["driver_peak_planned_mib"] = _driver_peak_mib()
    if n > fill_max:
        r["note"] = f"cache not filled above {fill_max} images (--fill-max)"
        return r
    start = time.perf_counter()
    block = []
    for i in range(len(plan.samples)):
        block.extend((k, 0.5, None) for k in plan.cells.keys_of(i))
        if len(block) >= 100_000:
            cache.put_many(block)
            block = []
    cache.put_many(block)
    for d in plan.detectors:
        cache.put_threshold(d.key, 0.5)
    r["fill_cache_s"] = time.perf_counter() - start
    r["sqlite_mib"] = sum(p.stat().st_size for p in work.glob(f"plan{n}.sqlite*")) / 2 ** 20
    r["sqlite_bytes_per_cell"] = r["sqlite_mib"] * 2 ** 20 / r["cells"]
    before = _driver_peak_mib()
    sampler = PeakSampler()
    sampler.start()
    r["lookup_full_us_per_cell"] = 1e6 * _lookup_s(plan, cache, r, "lookup_full") / r["cells"]
    start, cpu = time.perf_counter(), time.process_time()
    (work / f"plan{n}-out").mkdir(exist_ok=True)
    write_scores(plan, cache, "sim", work / f"plan{n}-out" / "scores.parquet")
    r["write_scores_us_per_cell"] = 1e6 * (time.perf_counter() - start) / r["cells"]
    r["write_scores_cpu_us_per_cell"] = 1e6 * (time.process_time() - cpu) / r["cells"]
    sampler.stop()
    r["driver_peak_before_lookup_mib"] = before
    r["driver_peak_lookup_and_write_mib"] = sampler.peak_driver / 1024
    r["parquet_mib"] = (work / f"plan{n}-out" / "scores.parquet").stat().st_size / 2 ** 20
    return r


def projection(r: dict) -> str:
    """The per-cell costs of ``r`` times 10^8 cells (wall; CPU where measured)."""
    per_cell = r["plan_keys_s"] / r["cells"]
    parts = [f"plan keys {per_cell * PROJECT_CELLS / 60:.1f} min"]
    for name in ("plan_keys", "lookup_empty", "lookup_full", "write_scores"):
        if f"{name}_cpu_us_per_cell" in r:
            parts.append(f"{name} CPU {r[f'{name}_cpu_us_per_cell'] * PROJECT_CELLS / 1e6 / 60:.1f} min")
    if "lookup_full_us_per_cell" in r:
        parts += [f"cached look-up {r['lookup_full_us_per_cell'] * PROJECT_CELLS / 1e6 / 60:.1f} min",
                  f"scores.sqlite {r['sqlite_bytes_per_cell'] * PROJECT_CELLS / 2 ** 30:.1f} GiB"]
    if "write_scores_us_per_cell" in r:
        parts.append(f"scores.parquet write {r['write_scores_us_per_cell'] * PROJECT_CELLS / 1e6 / 60:.1f} min")
    if r.get("compute_cells_per_s"):
        parts.append(f"compute at this rate {PROJECT_CELLS / r['compute_cells_per_s'] / 3600:.0f} h on this machine")
    return "; ".join(parts)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", type=int, nargs="*", default=[10000, 100000], help="images, full sweeps")
    p.add_argument("--plan-only", type=int, nargs="*", default=[], help="images, planning and look-ups only")
    p.add_argument("--bootstrap", type=int, default=0, help="bootstrap replicates of the metrics step")
    p.add_argument("--fill-max", type=int, default=10 ** 9, help="plan-only: above this many images, plan and "
                   "look up in the empty cache only (no filled cache, no scores.parquet)")
    p.add_argument("--compute-share", type=float, default=0.01, help="sweeps above --share-above images: the "
                   "share of samples computed (the rest pre-filled)")
    p.add_argument("--share-above", type=int, default=10 ** 9, help="sizes above this compute --compute-share")
    p.add_argument("--work", type=Path, default=None)
    p.add_argument("--child", nargs=2, default=None, help=argparse.SUPPRESS)
    args = p.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="bench_scale_"))
    work.mkdir(parents=True, exist_ok=True)
    os.environ["EXIFBENCH_CACHE"] = str(work / "cache")
    if args.child:
        mode, n = args.child[0], int(args.child[1])
        share = args.compute_share if n > args.share_above else 1.0
        r = child_sweep(n, work, args.bootstrap, share) if mode == "sweep" else child_plan_only(n, work, args.fill_max)
        print(json.dumps(r, default=lambda x: round(x, 3) if isinstance(x, float) else str(x)))
        return
    print(f"{os.cpu_count()} CPUs; load average {os.getloadavg()[0]:.1f}", flush=True)
    checkpoints(work)
    results = []
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    for mode, sizes in (("sweep", args.sizes), ("plan", args.plan_only)):
        for n in sizes:
            if mode == "sweep":
                start = time.perf_counter()
                make_images(work / f"images{n}", n)
                print(f"{n} images written in {time.perf_counter() - start:.0f}s (once; not measured)", flush=True)
            out = subprocess.run([sys.executable, __file__, "--child", mode, str(n), "--work", str(work),
                                  "--bootstrap", str(args.bootstrap), "--fill-max", str(args.fill_max),
                                  "--compute-share", str(args.compute_share), "--share-above", str(args.share_above)],
                                 env=env,
                                 capture_output=True, text=True)
            if out.returncode:
                print(out.stderr[-3000:], flush=True)
                raise SystemExit(f"{mode} {n} failed")
            r = json.loads(out.stdout.strip().splitlines()[-1])
            r["load_avg_after"] = round(os.getloadavg()[0], 1)
            results.append(r)
            print(json.dumps(r), flush=True)
            print(f"projection to 10^8 cells from {n} images: {projection(r)}", flush=True)
    rows = [("cells", "cells", "{:,}"), ("read dataset, s", "read_dataset_s", "{:.1f}"),
            ("plan keys, us/cell", None, None), ("look-up (empty cache), us/cell", "lookup_empty_us_per_cell", "{:.2f}"),
            ("look-up (full cache), us/cell", "lookup_full_us_per_cell", "{:.2f}"),
            ("cache pre-fill (placeholders), s", "fill_cache_s", "{:.1f}"),
            ("cold sweep, s", "sweep_s", "{:.1f}"), ("cells computed", "computed", "{:,}"),
            ("cells/s end to end", "cells_per_s", "{:.0f}"),
            ("cells/s compute phase", "compute_cells_per_s", "{:.0f}"),
            ("peak RSS driver, MiB", "peak_driver_rss_mib", "{:.0f}"),
            ("peak RSS driver + Ray, MiB", "peak_all_rss_mib", "{:.0f}"),
            ("peak PSS driver + Ray, MiB", "peak_all_pss_mib", "{:.0f}"),
            ("scores.sqlite, MiB", "sqlite_mib", "{:.1f}"), ("scores.sqlite, bytes/cell", "sqlite_bytes_per_cell", "{:.0f}"),
            ("cached re-run, s", "cached_rerun_s", "{:.1f}"),
            ("cached re-run, driver peak RSS MiB", "cached_rerun_driver_peak_rss_mib", "{:.0f}"),
            ("write scores.parquet, us/cell", "write_scores_us_per_cell", "{:.2f}"),
            ("driver peak, look-up + write, MiB", "driver_peak_lookup_and_write_mib", "{:.0f}"),
            ("plan keys, CPU us/cell", "plan_keys_cpu_us_per_cell", "{:.2f}"),
            ("look-up (empty), CPU us/cell", "lookup_empty_cpu_us_per_cell", "{:.2f}"),
            ("look-up (full), CPU us/cell", "lookup_full_cpu_us_per_cell", "{:.2f}"),
            ("write scores.parquet, CPU us/cell", "write_scores_cpu_us_per_cell", "{:.2f}"),
            ("driver peak after planning, MiB", "driver_peak_planned_mib", "{:.0f}"),
            ("load average after", "load_avg_after", "{:.1f}")]
    print("\n| | " + " | ".join(f"{r['n_images']:,} images" + ("" if "mode" not in r else " (plan only)"
                                                                 if r["mode"].startswith("plan") else " (share computed)")
                                for r in results) + " |")
    print("|---|" + "---:|" * len(results))
    for label, key, fmt in rows:
        if key is None:
            cells = [f"{1e6 * r['plan_keys_s'] / r['cells']:.2f}" for r in results]
        else:
            cells = [fmt.format(r[key]) if r.get(key) is not None else "-" for r in results]
        print(f"| {label} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
