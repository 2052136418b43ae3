"""``exifbench demo``: the embedded default, end to end on the offline zoo.

Steps: build the zoo (fetched into the cache on first use); train each demo detector on
the training split of one generator family (``dcgan``) and its reals; sweep every
registered detector that can run here across the test split's generators and the demo
grid; render and print the leaderboard. Trained checkpoints live in the cache, keyed by
their data and configuration, so a second run retrains and rescores nothing.
"""
from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from harness.cache import cache_dir
from harness.config import DatasetConfig, DetectorConfig, RunConfig, SweepConfig
from harness.data.layouts import read_manifest, read_real_only
from harness.data.zoo import ZooBuild, build_zoo
from harness.plugins import detectors

__all__ = ["DEMO_GRID", "DemoJob", "demo_jobs", "run_demo"]

DEMO_GRID = ("none", "jpeg(quality=[95,75,50])", "blur(sigma=[1,2])", "resize(scale=0.5)")
TRAIN_FAMILY = "dcgan"


@dataclass(frozen=True)
class DemoJob:
    """One training job of the demo and how its checkpoint enters the sweep."""

    trainer: str                      # registered trainer name
    params: dict[str, Any]            # trainer parameters
    data: str                         # "labelled" (train split of TRAIN_FAMILY + reals) or "real-exif"
    detector: str | None = None       # the detector the checkpoint serves, None for a backbone
    checkpoint_param: str = "checkpoint"
    detector_params: dict[str, Any] = field(default_factory=dict)
    needs: dict[str, str] = field(default_factory=dict)  # param -> name of an earlier job's checkpoint


def demo_jobs() -> list[DemoJob]:
    """The demo's training jobs, in order; a job whose plugin is not installed is left out."""
    jobs = [DemoJob("spectrum", {"n_bins": 128}, "labelled", detector="spectrum")]
    return [j for j in jobs if j.detector is None or j.detector in detectors()]


def _fingerprint(job: DemoJob, data_ids: list[str], needs: dict[str, str]) -> str:
    text = json.dumps([job.trainer, job.params, sorted(data_ids), needs], sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def _train_all(zoo: ZooBuild, address: str | None, log: Callable[[str], None]) -> dict[str, str]:
    from harness.train.jobs import run_training

    labelled = read_manifest(zoo.manifest, dataset="zoo", split="train", generators=[TRAIN_FAMILY])
    real_exif = read_real_only(zoo.real_exif_train, dataset="zoo-real-exif")
    checkpoints: dict[str, str] = {}
    for job in demo_jobs():
        samples = labelled if job.data == "labelled" else real_exif
        params = {**job.params, **{k: checkpoints[v] for k, v in job.needs.items()}}
        out = cache_dir("demo", "checkpoints") / f"{job.trainer}-{_fingerprint(job, [s.sample_id for s in samples], params)}"
        start = time.monotonic()
        run_training(job.trainer, params, samples, out, seed=0, address=address)
        log(f"  trained {job.trainer} on {len(samples)} images ({time.monotonic() - start:.1f}s) -> {out}")
        checkpoints[job.trainer] = str(out)
    return checkpoints


def _sweep_config(zoo: ZooBuild, checkpoints: dict[str, str]) -> SweepConfig:
    dets = []
    for job in demo_jobs():
        if job.detector:
            params = {**job.params, **job.detector_params, job.checkpoint_param: checkpoints[job.trainer],
                      **{k: checkpoints[v] for k, v in job.needs.items()}}
            dets.append(DetectorConfig(job.detector, params))
    ds = DatasetConfig("zoo", "manifest", str(zoo.manifest), {"split": "test"})
    raw = {"run": {"seed": 0}, "datasets": [{"name": "zoo", "layout": "manifest", "root": str(zoo.manifest),
                                             "split": "test"}],
           "detectors": [{"name": d.name, **d.param_dict} for d in dets], "perturbations": {"grid": list(DEMO_GRID)}}
    return SweepConfig(RunConfig(seed=0, batch_size=32), (ds,), tuple(dets), DEMO_GRID, "", "demo", raw)


def run_demo(out: str | Path, protocol: str = "harmonised", address: str | None = None, quiet: bool = False,
             log: Callable[[str], None] = print) -> Path:
    from harness.engine.sweep import run_sweep

    start = time.monotonic()
    zoo = build_zoo(protocol, log=log)
    log(f"zoo ({protocol} protocol): " + ", ".join(f"{k} {v}" for k, v in zoo.counts.items()))
    skipped = [n for n, s in detectors().items() if not any(j.detector == n for j in demo_jobs())]
    if skipped:
        log(f"not in the demo (need weights that cannot be fetched here): {', '.join(skipped)}")
    checkpoints = _train_all(zoo, address, log)
    config = _sweep_config(zoo, checkpoints)
    result = run_sweep(config, out, address=address, quiet=quiet)
    _write_config(config, Path(out) / "sweep.toml")
    md = Path(out) / "leaderboard.md"
    log(md.read_text())
    log(result.summary())
    log(f"demo finished in {time.monotonic() - start:.0f}s; leaderboard: {md} (also .csv, .html, *.png)")
    return Path(out)


def _write_config(config: SweepConfig, path: Path) -> None:
    """The demo's sweep as a config file, so `exifbench sweep` can rerun it as is."""
    import tomli_w

    path.write_text(tomli_w.dumps(dict(config.raw)))
