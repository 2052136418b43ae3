"""``exifbench demo``: the embedded default, end to end on the offline zoo.

Steps: build the zoo (fetched into the cache on first use); train each demo detector on
the training split of one generator (``dcgan``) and its reals; sweep every
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

from harness.cache_folder import cache_dir
from harness.config import DatasetConfig, DetectorConfig, RunConfig, SweepConfig
from harness.data.layouts import read_manifest, read_real_only
from harness.data.zoo import DEFAULT_PROTOCOL, ZooBuild, build_zoo
from harness.plugins import detectors

__all__ = ["DEMO_GRID", "DemoJob", "demo_jobs", "run_demo"]

DEMO_GRID = ("none", "jpeg(quality=[95,75,50])", "blur(sigma=[1,2])", "resize(scale=0.5)")
TRAIN_GENERATOR = "dcgan"


@dataclass(frozen=True)
class DemoJob:
    """One training job of the demo and how its checkpoint enters the sweep."""

    trainer: str                      # registered trainer name
    params: dict[str, Any]            # trainer parameters
    data: str                         # "labelled" (train split of TRAIN_GENERATOR + its reals), "reals"
                                      # (the train split's reals) or "pretext" (real EXIF + simulated photos)
    detector: str | None = None       # the detector the checkpoint serves, None for a backbone
    checkpoint_param: str = "checkpoint"
    detector_params: dict[str, Any] = field(default_factory=dict)
    needs: dict[str, str] = field(default_factory=dict)  # param -> name of an earlier job's checkpoint


#: the EXIF detectors' CPU preset (the backbone's ``cpu-small``: width 8, 32-px tiles)
EXIF_SMALL = {"width": 8, "patch_size": 32, "tiling": "center"}
#: simulated photographs for the pretext task (issue: simulated cameras)
SIMULATE = {"cameras": 8, "photos": 120, "seed": 0, "size": (512, 384)}


def demo_jobs() -> list[DemoJob]:
    """The demo's training jobs, in order; a job whose plugin is not installed is left out.

    CPU presets, not the papers' configurations: they exist so the demo runs on two cores
    in minutes. Every detector trains on the same data: the DCGAN generator's training split
    and the training reals (the one-class detector on those reals only).
    """
    jobs = [
        DemoJob("spectrum", {"n_bins": 128}, "labelled", detector="spectrum"),
        DemoJob("probe", {}, "labelled", detector="probe"),  # the shortcut probe: a control row
        DemoJob("cnnspot", {"preset": "cpu-small", "epochs": 8}, "labelled", detector="cnnspot"),
        DemoJob("npr", {"preset": "cpu-small"}, "labelled", detector="npr"),
        DemoJob("exif-backbone", {"preset": "cpu-small"}, "pretext"),
        DemoJob("exif-oc", dict(EXIF_SMALL), "reals", detector="exif-oc", needs={"backbone": "exif-backbone"}),
        DemoJob("exif-bc", {**EXIF_SMALL, "epochs": 3, "batch_size": 16, "n_crops": 16, "lr": 1e-3}, "labelled",
                detector="exif-bc", needs={"backbone": "exif-backbone"}),
    ]
    from harness.plugins import trainers

    return [j for j in jobs if j.trainer in trainers()]


def _fingerprint(job: DemoJob, data_ids: list[str], needs: dict[str, str]) -> str:
    text = json.dumps([job.trainer, job.params, sorted(data_ids), needs], sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def _simulated(zoo: ZooBuild, address: str | None, log: Callable[[str], None]) -> Path:
    """Simulated EXIF photographs made from the zoo's no-EXIF training scenes (cached)."""
    from harness.data.camera import simulate
    from harness.data.layouts import image_files

    scenes = image_files(zoo.scenes_train)
    key = hashlib.sha256(json.dumps([SIMULATE, sorted(p.name for p in scenes)], default=str).encode()).hexdigest()
    out = cache_dir("demo", f"simulated-{key[:12]}")
    if not (out / "manifest.csv").is_file():
        start = time.monotonic()
        simulate(SIMULATE["cameras"], SIMULATE["photos"], out, scenes=scenes, seed=SIMULATE["seed"],
                 size=SIMULATE["size"], address=address, progress=False)
        log(f"  simulated {SIMULATE['photos']} photographs from {SIMULATE['cameras']} camera models "
            f"({time.monotonic() - start:.1f}s) -> {out}")
    return out


def _training_data(zoo: ZooBuild, address: str | None, log: Callable[[str], None]) -> dict[str, list]:
    labelled = read_manifest(zoo.manifest, dataset="zoo", split="train", generators=[TRAIN_GENERATOR])
    # the matched protocol writes the reals once per generator (subset); train on those of TRAIN_GENERATOR
    labelled = [s for s in labelled if s.label == 1 or s.subset in ("", TRAIN_GENERATOR)]
    data = {"labelled": labelled, "reals": [s for s in labelled if s.label == 0]}
    if any(j.data == "pretext" for j in demo_jobs()):
        simulated = read_real_only(_simulated(zoo, address, log) / "images", dataset="simulated")
        data["pretext"] = read_real_only(zoo.real_exif_train, dataset="zoo-real-exif") + simulated
    return data


def _train_all(zoo: ZooBuild, address: str | None, log: Callable[[str], None]) -> dict[str, str]:
    from harness.train.jobs import run_training

    data = _training_data(zoo, address, log)
    checkpoints: dict[str, str] = {}
    for job in demo_jobs():
        samples = data[job.data]
        params = {**job.params, **{k: checkpoints[v] for k, v in job.needs.items()}}
        out = cache_dir("demo", "checkpoints") / f"{job.trainer}-{_fingerprint(job, [s.sample_id for s in samples], params)}"
        start = time.monotonic()
        existed = (out / "manifest.json").is_file()
        run_training(job.trainer, params, samples, out, seed=0, address=address)
        how = "from the cache" if existed else f"trained in {time.monotonic() - start:.1f}s"
        log(f"  {job.trainer} on {len(samples)} images ({how}) -> {out}")
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


def run_demo(out: str | Path, protocol: str = DEFAULT_PROTOCOL, address: str | None = None, quiet: bool = False,
             log: Callable[[str], None] = print) -> Path:
    from harness.engine.sweep import run_sweep

    start = time.monotonic()
    zoo = build_zoo(protocol, log=log)
    log(f"zoo ({protocol} protocol): " + ", ".join(f"{k} {v}" for k, v in zoo.counts.items()))
    skipped = [n for n, s in detectors().items() if not any(j.detector == n for j in demo_jobs())]
    if skipped:
        log(f"not in the demo (no demo job: weights that cannot be fetched here, or a third-party plugin): "
            f"{', '.join(skipped)}")
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
