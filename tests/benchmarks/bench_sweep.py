"""Sweep throughput, side by side in one run, and resume time.

Work: N generated photos (512 x 384 JPEG, half "real", half "generated") x 3 detectors x
6 perturbations. Three ways to do the same work with the same models:

(a) the exifbench sweep (``run_sweep`` in this process, Ray already started; and the
    ``exifbench sweep`` command in a fresh process, Ray start and leaderboard included);
(b) a nested loop in the style of the published evaluation scripts: for each detector, for
    each perturbation, for each image: read and decode the file, perturb, preprocess, score
    one image at a time;
(c) a hand-written single-process loop that decodes each image once, applies each
    perturbation once and scores every detector in batches (the practical limit of one
    process).

Then resume: the same sweep again into a new ``--out`` (everything cached) must take at
most 10 % of the first run's time and give identical rows. Every run of (a) starts with an
empty score cache and no warm actors. Prints each time, the ratios, and the engine's
busy-time statistics of (a) (``run.json``: model load, preparation and scoring busy
seconds, wall seconds, overlap), which say where the sweep's time goes.

Several sizes run in one invocation (``--n 200 2000``): every size's rounds alternate (a)
and (c) in one process, so the machine's load from other work weighs on both alike. (b)
and the CLI runs, slow at large sizes, run only up to ``--full-max`` photos.

    python tests/benchmarks/bench_sweep.py [--n 200 2000] [--repeat 2] [--full-max 200] [--work DIR]
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

DETECTORS = {  # small presets: CPU-sized models on 64 x 64 centre crops
    "spectrum": {"n_bins": 64},
    "cnnspot": {"crop": 64},
    "npr": {"crop": 64},
}
GRID = ["none", "jpeg(quality=[90,70,50])", "blur(sigma=1)", "resize(scale=0.5)"]
BATCH = 32


def make_photos(root: Path, n: int, seed: int = 0) -> Path:
    """``root/gen/{0_real,1_fake}/*.jpg``: smooth synthetic scenes up-scaled to 512 x 384;
    reals get sensor-like noise, fakes the nearest-neighbour up-sampling of the kit."""
    from harness.testing import synthetic_pair_images

    if root.exists():
        return root
    rng = np.random.default_rng(seed)
    images, labels = synthetic_pair_images(n // 2, size=128, seed=seed)
    for i, (img, label) in enumerate(zip(images, labels)):
        big = np.asarray(img.resize((512, 384), Image.BICUBIC), dtype=np.float64)
        if label == 0:
            big = big + rng.normal(0, 4, big.shape)
        folder = root / "gen" / ("1_fake" if label else "0_real")
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.clip(big, 0, 255).astype(np.uint8)).save(folder / f"{i:04d}.jpg", quality=90)
    return root


def train_checkpoints(work: Path) -> dict[str, dict]:
    """Each detector at its ``test_params`` trained on the kit's tiny set (cached in ``work``)."""
    from harness.plugins import detectors
    from harness.testing import synthetic_training_set
    from harness.train.jobs import fit_locally

    train = synthetic_training_set(work / "train", n=16, seed=1)
    out = {}
    for name, extra in DETECTORS.items():
        ckpt = work / f"ckpt-{name}"
        if not (ckpt / "manifest.json").exists():
            fit_locally(name, dict(detectors()[name].test_params), train.samples, ckpt)
        out[name] = {**dict(detectors()[name].test_params), **extra, "checkpoint": str(ckpt)}
    return out


def write_config(work: Path, data: Path, params: dict[str, dict]) -> Path:
    import json

    tables = "".join(f'[[detectors]]\nname = "{name}"\n' + "".join(f"{k} = {json.dumps(v)}\n" for k, v in p.items()
                                                                   if v is not None)
                     for name, p in params.items())
    path = work / "sweep.toml"
    path.write_text(f"[run]\nseed = 0\nbatch_size = {BATCH}\n[[datasets]]\nname = \"photos\"\n"
                    f"layout = \"binary-folders\"\nroot = \"{data}\"\n{tables}"
                    f"[perturbations]\ngrid = {json.dumps(GRID)}\n")
    return path


def load_models(params: dict[str, dict]) -> dict:
    from harness.plugins import detectors

    models = {}
    for name, p in params.items():
        models[name] = detectors()[name].create(**p)
        models[name].load("cpu")
    return models


def nested_loop(samples, chains, params) -> dict:
    """(b): per detector, per perturbation, per image; decode every time; batch 1."""
    from harness.data.decode import load_image
    from harness.chains import apply_chain, derive_seed

    out = {}
    for name, model in load_models(params).items():
        for chain in chains:
            for s in samples:
                image = apply_chain(chain, load_image(s.path), derive_seed(0, s.sample_id, chain.spec))
                out[(name, s.sample_id, chain.spec)] = float(model.score_batch([model.preprocess(image)])[0])
    return out


def decode_once_loop(samples, chains, params) -> dict:
    """(c): decode once, perturb once, every detector on batches of the same items as (a)."""
    from harness.data.decode import load_image
    from harness.chains import apply_chain, derive_seed

    models = load_models(params)
    out = {}
    per_chunk = max(1, BATCH // len(chains))
    for start in range(0, len(samples), per_chunk):
        keys: list = []
        items: dict[str, list] = {name: [] for name in models}
        for s in samples[start:start + per_chunk]:
            image = load_image(s.path)
            for chain in chains:
                perturbed = apply_chain(chain, image, derive_seed(0, s.sample_id, chain.spec))
                keys.append((s.sample_id, chain.spec))
                for name, model in models.items():
                    items[name].append(model.preprocess(perturbed))
        for name, model in models.items():
            for key, score in zip(keys, model.score_batch(items[name])):
                out[(name, *key)] = float(score)
    return out


def sweep_in_process(config_path: Path, out: Path) -> tuple[float, pd.DataFrame]:
    from harness.config import load_sweep
    from harness.engine.score_cache import ScoreCache
    from harness.engine.sweep import run_sweep

    start = time.perf_counter()
    run_sweep(load_sweep(config_path), out, quiet=True, cache=ScoreCache(out.parent / f"{out.name}.sqlite"),
              leaderboard=False)
    return time.perf_counter() - start, pd.read_parquet(out / "scores.parquet")


def sweep_cli(config_path: Path, out: Path, cache: Path) -> float:
    env = {**os.environ, "EXIFBENCH_CACHE": str(cache)}
    env.pop("RAY_ADDRESS", None)
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "harness.cli", "sweep", str(config_path), "--out", str(out), "--quiet"],
                   env=env, check=True, capture_output=True)
    return time.perf_counter() - start


def as_scores(frame: pd.DataFrame) -> dict:
    return {(d, s, p): v for d, s, p, v in zip(frame["detector"], frame["sample_id"], frame["perturbation"],
                                                frame["score"])}


def same_scores(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(abs(a[k] - b[k]) <= 1e-5 for k in a)


def rows(run_dir: Path) -> pd.DataFrame:
    cols = ["detector", "sample_id", "perturbation", "score", "error"]
    return pd.read_parquet(run_dir / "scores.parquet")[cols].sort_values(cols[:3]).reset_index(drop=True)


def clear_round(work: Path, r: int) -> None:
    """Every run of (a) starts from an empty score cache (a reused --work keeps old ones)."""
    for path in work.glob(f"a{r}.sqlite*"):
        path.unlink()
    for name in (f"cli-cache{r}", f"a{r}", f"a{r}-again", f"cli{r}", f"cli{r}-again"):
        shutil.rmtree(work / name, ignore_errors=True)


def engine_stats(run_dir: Path) -> dict:
    import json

    return json.loads((run_dir / "run.json").read_text())["engine"]


def one_round(r: int, work: Path, config_path: Path, samples, chains, params, full: bool = True) -> dict[str, float]:
    import torch

    clear_round(work, r)

    torch.set_num_threads(os.cpu_count() or 1)
    t = {}
    t["a"], frame = sweep_in_process(config_path, work / f"a{r}")
    swept = as_scores(frame)
    e = engine_stats(work / f"a{r}")
    print(f"round {r}: (a) engine: load {e['load_s']:.1f}s, prepare busy {e['prepare_s']:.1f}s, score busy "
          f"{e['score_s']:.1f}s, compute wall {e['wall_s']:.1f}s, overlap {e['overlap']:.2f}, {e['chunks']} chunks; "
          f"outside the compute phase {t['a'] - e['wall_s']:.1f}s")
    start = time.perf_counter()
    batched = decode_once_loop(samples, chains, params)
    t["c"] = time.perf_counter() - start
    print(f"round {r}: same scores (a)=(c): {same_scores(swept, batched)}")
    if not full:
        return t
    start = time.perf_counter()
    looped = nested_loop(samples, chains, params)
    t["b"] = time.perf_counter() - start
    print(f"round {r}: same scores (a)=(b): {same_scores(swept, looped)}")
    t["a_cli"] = sweep_cli(config_path, work / f"cli{r}", work / f"cli-cache{r}")
    t["resume_cli"] = sweep_cli(config_path, work / f"cli{r}-again", work / f"cli-cache{r}")
    start = time.perf_counter()
    from harness.config import load_sweep
    from harness.engine.score_cache import ScoreCache
    from harness.engine.sweep import run_sweep

    run_sweep(load_sweep(config_path), work / f"a{r}-again", quiet=True,
              cache=ScoreCache(work / f"a{r}.sqlite"), leaderboard=False)
    t["resume"] = time.perf_counter() - start
    identical = rows(work / f"a{r}").equals(rows(work / f"a{r}-again")) and \
        rows(work / f"cli{r}").equals(rows(work / f"cli{r}-again"))
    print(f"round {r}: resumed rows identical: {identical}")
    return t


def report(r: int, t: dict[str, float], n_cells: int) -> None:
    if "b" not in t:
        print(f"round {r}: (a) sweep {t['a']:.1f}s ({n_cells / t['a']:.0f} cells/s) | (c) decode-once loop "
              f"{t['c']:.1f}s ({n_cells / t['c']:.0f} cells/s) | (a) vs (c) {t['c'] / t['a']:.3f}x")
        return
    print(f"round {r}: (a) sweep {t['a']:.1f}s ({n_cells / t['a']:.0f} cells/s) | (a) CLI {t['a_cli']:.1f}s | "
          f"(b) nested loop {t['b']:.1f}s | (c) decode-once loop {t['c']:.1f}s")
    print(f"round {r}: speed-up (a) vs (b) {t['b'] / t['a']:.2f}x [goal >= 2]; (a) vs (c) {t['c'] / t['a']:.2f}x "
          f"[goal >= 0.8]; CLI vs (b) {t['b'] / t['a_cli']:.2f}x, CLI vs (c) {t['c'] / t['a_cli']:.2f}x")
    print(f"round {r}: resume {t['resume']:.2f}s = {100 * t['resume'] / t['a']:.1f}% of the first run [goal <= 10%]; "
          f"CLI resume {t['resume_cli']:.1f}s = {100 * t['resume_cli'] / t['a_cli']:.1f}% of the CLI run")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, nargs="+", default=[200], help="photos (half real, half generated), one "
                   "or more sizes")
    p.add_argument("--repeat", type=int, default=2)
    p.add_argument("--full-max", type=int, default=200, help="run (b), the CLI and resume only up to this size")
    p.add_argument("--work", type=Path, default=None, help="working folder (default: a temporary one)")
    args = p.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="bench_sweep_"))
    work.mkdir(parents=True, exist_ok=True)
    os.environ["EXIFBENCH_CACHE"] = str(work / "cache")
    from harness.config import load_sweep
    from harness.engine.plan import make_plan
    from harness.runtime import ensure_ray

    params = train_checkpoints(work)
    start = time.perf_counter()
    ensure_ray()
    print(f"Ray start (once, not counted in (a)): {time.perf_counter() - start:.1f}s")
    table = []
    for n in args.n:
        data = make_photos(work / f"photos{n}", n)
        sub = work / f"n{n}"
        sub.mkdir(exist_ok=True)
        config_path = write_config(sub, data, params)
        plan = make_plan(load_sweep(config_path))
        print(f"{len(plan.samples)} photos 512x384 x {len(plan.detectors)} detectors x {len(plan.chains)} "
              f"perturbations = {len(plan.cells)} cells; {os.cpu_count()} CPUs; load average "
              f"{os.getloadavg()[0]:.1f}", flush=True)
        for r in range(args.repeat):
            t = one_round(r, sub, config_path, list(plan.samples), list(plan.chains), params, n <= args.full_max)
            report(r, t, len(plan.cells))
            table.append((n, r, t["a"], t["c"], os.getloadavg()[0]))
            print(f"load average now {os.getloadavg()[0]:.1f}", flush=True)
    print("\n| photos | round | (a) sweep s | (c) decode-once s | (a) vs (c) | load avg after |")
    print("|---:|---:|---:|---:|---:|---:|")
    for n, r, a, c, load in table:
        print(f"| {n} | {r} | {a:.1f} | {c:.1f} | {c / a:.3f}x | {load:.1f} |")


if __name__ == "__main__":
    main()
