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

from harness.api import ExifbenchError
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
    needs: dict[str, str] = field(default_factory=dict)  # param -> key of an earlier job's checkpoint
    name: str = ""                    # the job's key when one trainer runs twice (default: the trainer)
    alias: str = ""                   # the detector's name in the results (default: the detector)
    control: str = ""                 # not empty: a control row, and what it controls for
    perturbations: tuple[str, ...] = ()  # not empty: scored on these entries of the grid only

    @property
    def key(self) -> str:
        return self.name or self.trainer


#: the EXIF detectors' CPU preset (the backbone's ``cpu-demo``: width 8, 32-px tiles)
EXIF_SMALL = {"width": 8, "patch_size": 32, "tiling": "center"}
#: the pretext backbone of the demo (detectors.exif.pretext.PRESETS["cpu-demo"])
PRETEXT = {"preset": "cpu-demo"}
#: exif-oc for 40 photos: a diagonal covariance (a full one has 702 parameters in 36
#: dimensions) and a threshold held out by 10-fold cross-fitting (the in-sample one flags
#: every test image)
ONE_CLASS = {"covariance": "auto", "threshold_rule": "heldout", "folds": 10}
EXIF_BC = {"epochs": 3, "batch_size": 16, "n_crops": 16, "lr": 1e-3}
#: simulated photographs for the pretext task: ``photos`` from the training scenes, and
#: ``heldout`` more of the same camera models (another seed) from the held-out scenes, on
#: which the backbone is evaluated (detectors.exif.evaluate)
SIMULATE = {"cameras": 5, "photos": 150, "heldout": 60, "heldout_scenes": 5, "seed": 0, "size": (512, 384)}
RANDOM_BACKBONE = "random backbone"
#: the EXIF controls answer one question, whether the pretext helps on the clean test images
#: (the paired ΔAUC the demo prints): they are scored there only, which saves a third of the sweep
CONTROL_GRID = ("none",)
#: the pretext heads the demo reports on held-out photos
PRETEXT_REPORTED = ("ISOSpeedRatings", "ExposureTime", "FocalLength", "Make", "Model")


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
        DemoJob("exif-backbone", dict(PRETEXT), "pretext"),
        DemoJob("exif-oc", {**EXIF_SMALL, **ONE_CLASS}, "reals", detector="exif-oc", needs={"backbone": "exif-backbone"}),
        DemoJob("exif-bc", {**EXIF_SMALL, **EXIF_BC}, "labelled", detector="exif-bc", needs={"backbone": "exif-backbone"}),
        # controls of the EXIF idea: the same detectors on an untrained backbone (same
        # architecture and initialisation seed, 0 pretext steps), and exif-bc without distillation
        DemoJob("exif-backbone", {**PRETEXT, "steps": 0}, "pretext", name="exif-backbone-random"),
        DemoJob("exif-oc", {**EXIF_SMALL, **ONE_CLASS}, "reals", detector="exif-oc", name="exif-oc-random",
                needs={"backbone": "exif-backbone-random"}, alias="exif-oc (random backbone)", control=RANDOM_BACKBONE,
                perturbations=CONTROL_GRID),
        DemoJob("exif-bc", {**EXIF_SMALL, **EXIF_BC}, "labelled", detector="exif-bc", name="exif-bc-random",
                needs={"backbone": "exif-backbone-random"}, alias="exif-bc (random backbone)", control=RANDOM_BACKBONE,
                perturbations=CONTROL_GRID),
        DemoJob("exif-bc", {**EXIF_SMALL, **EXIF_BC, "alpha": 0.0}, "labelled", detector="exif-bc",
                name="exif-bc-no-distillation", needs={"backbone": "exif-backbone"}, alias="exif-bc (alpha 0)",
                control="no distillation (alpha = 0)", perturbations=CONTROL_GRID),
    ]
    from harness.plugins import trainers

    return [j for j in jobs if j.trainer in trainers()]


def _fingerprint(job: DemoJob, data_ids: list[str], needs: dict[str, str]) -> str:
    """The job's checkpoint key: trainer, parameters, data, inputs, and the trainer's code
    (so a checkpoint trained by an earlier version of a detector is not reused)."""
    from harness.train.store import trainer_code

    text = json.dumps([job.trainer, job.params, sorted(data_ids), needs, trainer_code(job.trainer)], sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def scene_split(scenes: list[Path], heldout: int) -> tuple[list[Path], list[Path]]:
    """(training scenes, held-out scenes), both in the order of the sha256 of their file
    names: the first ``heldout`` are held out (stable on any machine)."""
    ranked = sorted(scenes, key=lambda p: hashlib.sha256(p.name.encode()).hexdigest())
    return ranked[heldout:], ranked[:heldout]


def simulated_key(scenes: list[Path], heldout: bool) -> str:
    """The cache key of the demo's simulated photos: what they are made of and by which
    version of the simulator (photos of an earlier simulator are not reused)."""
    from harness.data.camera.simulate import SIMULATOR_VERSION

    text = json.dumps([SIMULATE, heldout, [p.name for p in scenes], SIMULATOR_VERSION], default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def _simulated(zoo: ZooBuild, address: str | None, log: Callable[[str], None], heldout: bool = False) -> Path:
    """Simulated EXIF photographs made from the zoo's no-EXIF training scenes (cached): from
    the training scenes, or (``heldout``) from the held-out scenes with another seed, by the
    same camera models."""
    from harness.data.camera import load_cameras, simulate
    from harness.data.camera.simulate import choose_cameras
    from harness.data.layouts import image_files

    train, held = scene_split(image_files(zoo.scenes_train), SIMULATE["heldout_scenes"])
    scenes = held if heldout else train
    out = cache_dir("demo", f"simulated-{'heldout-' if heldout else ''}{simulated_key(scenes, heldout)}")
    if not (out / "manifest.csv").is_file():
        start = time.monotonic()
        cameras = choose_cameras(load_cameras(), SIMULATE["cameras"], SIMULATE["seed"])
        photos = SIMULATE["heldout"] if heldout else SIMULATE["photos"]
        simulate(cameras, photos, out, scenes=scenes, seed=SIMULATE["seed"] + int(heldout),
                 size=SIMULATE["size"], address=address, progress=False)
        log(f"  simulated {photos} photographs from {len(cameras)} camera models and {len(scenes)} "
            f"{'held-out' if heldout else 'training'} scenes ({time.monotonic() - start:.1f}s) -> {out}")
    return out


def _pretext_report(zoo: ZooBuild, checkpoints: dict[str, str], address: str | None,
                    log: Callable[[str], None]) -> None:
    """The pretext backbones' heads on held-out simulated photos (cached per checkpoint)."""
    backbones = [k for k in ("exif-backbone", "exif-backbone-random") if k in checkpoints]
    if not backbones:
        return
    from harness.data.layouts import image_files
    from harness.plugins import trainers
    import pandas as pd

    photos = image_files(_simulated(zoo, address, log, heldout=True) / "images")
    key = hashlib.sha256(json.dumps(sorted(p.name for p in photos) + [str(SIMULATE)]).encode()).hexdigest()[:12]
    log(f"EXIF pretext on {len(photos)} held-out simulated photos (unseen scenes, the training camera models), "
        "95% bootstrap intervals over photos:")
    for name in backbones:
        cached = cache_dir("demo", "pretext-eval") / f"{Path(checkpoints[name]).name}-{key}.csv"
        if not cached.is_file():  # the trainer's own evaluation (exif-backbone: detectors.exif.evaluate)
            trainers()["exif-backbone"].create(**PRETEXT).evaluate(checkpoints[name], photos).table.to_csv(
                cached, index=False)
        table = pd.read_csv(cached).set_index("tag").loc[list(PRETEXT_REPORTED)]
        log(f"  {name}:")
        for tag, r in table.iterrows():
            what = (f"ranking accuracy (chance 0.5, {int(r['n_pairs'])} pairs)" if r["kind"] == "ranking"
                    else f"accuracy (chance {r['chance']:.3f})")
            log(f"    {tag:16s} {what:40s} {r['acc']:.3f} [{r['acc_lo']:.3f}, {r['acc_hi']:.3f}]")
    if len(backbones) == 2:  # what the pretext added to an untrained network of the same seed
        trained, control = (Path(checkpoints[b]).name for b in backbones)
        cached = cache_dir("demo", "pretext-eval") / f"{trained}-minus-{control}-{key}.csv"
        if not cached.is_file():
            trainers()["exif-backbone"].create(**PRETEXT).compare(
                checkpoints[backbones[0]], checkpoints[backbones[1]], photos).to_csv(cached, index=False)
        table = pd.read_csv(cached).set_index("tag").loc[list(PRETEXT_REPORTED)]
        log(f"  {backbones[0]} - {backbones[1]} (paired: the same photos and resamples):")
        for tag, r in table.iterrows():
            log(f"    {tag:16s} Δaccuracy {r['delta']:+.3f} [{r['delta_lo']:+.3f}, {r['delta_hi']:+.3f}]")


def _control_deltas(out: Path, log: Callable[[str], None]) -> None:
    """The paired AUC differences of each EXIF detector and its controls (comparisons.csv)."""
    import pandas as pd

    path = out / "comparisons.csv"
    controls = [j for j in demo_jobs() if j.control and j.detector]
    if not path.is_file() or not controls:
        return
    table = pd.read_csv(path)
    log("EXIF controls: paired ΔAUC (detector - control) on the same test images, 95% bootstrap interval:")
    for job in controls:
        a, b = job.detector, job.alias
        rows = table[((table["detector_a"] == a) & (table["detector_b"] == b))
                     | ((table["detector_a"] == b) & (table["detector_b"] == a))]
        rows = rows[rows["perturbation"] == "none"]
        for _, r in rows.iterrows():
            sign = 1 if r["detector_a"] == a else -1
            lo, hi = sorted((sign * r["delta_auc_lo"], sign * r["delta_auc_hi"]))
            log(f"  {a} - {b:28s} {r['generator']:14s} ΔAUC {sign * r['delta_auc']:+.3f} [{lo:+.3f}, {hi:+.3f}] "
                f"({int(r['n_real'])} reals, {int(r['n_fake'])} fakes)")


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
    """Train the demo's jobs as one graph of Ray tasks: a job starts as soon as the jobs whose
    checkpoints it reads have finished (so on two cores the one-thread pretext overlaps the
    baselines and the random-backbone controls). Checkpoint folders are keyed by job, data
    and inputs, so they are known before anything trains."""
    from harness.train.jobs import TrainingJob, run_training_jobs

    data = _training_data(zoo, address, log)
    checkpoints: dict[str, str] = {}
    order = {}
    jobs, after = [], []
    for job in demo_jobs():  # in dependency order
        missing = [v for v in job.needs.values() if v not in checkpoints]
        if missing:
            raise ExifbenchError(f"demo job {job.key} needs checkpoints {missing} that no earlier job makes")
        samples = data[job.data]
        params = {**job.params, **{k: checkpoints[v] for k, v in job.needs.items()}}
        # the inputs by their folders' names (their keys), not paths: the same in any cache folder
        inputs = {k: Path(checkpoints[v]).name for k, v in job.needs.items()}
        key = _fingerprint(job, [s.sample_id for s in samples], inputs)
        out = cache_dir("demo", "checkpoints") / f"{job.trainer}-{key}"
        checkpoints[job.key] = str(out)
        order[job.key] = len(jobs)
        jobs.append(TrainingJob(job.trainer, params, tuple(samples), out, seed=0))
        after.append(tuple(order[v] for v in job.needs.values()))
    start = time.monotonic()
    outcomes = run_training_jobs(jobs, address=address, after=after)
    for key, outcome in zip(order, outcomes):
        how = f"trained in {outcome.seconds:.1f}s" if outcome.trained else "from the cache"
        log(f"  {key} on {len(outcome.job.samples)} images ({how}) -> {outcome.job.out}")
    if any(o.trained for o in outcomes):
        log(f"  ({len(jobs)} jobs, each started once its inputs existed: {time.monotonic() - start:.1f}s)")
    return checkpoints


def _sweep_config(zoo: ZooBuild, checkpoints: dict[str, str]) -> SweepConfig:
    dets = []
    for job in demo_jobs():
        if job.detector:
            params = {**job.params, **job.detector_params, job.checkpoint_param: checkpoints[job.key],
                      **{k: checkpoints[v] for k, v in job.needs.items()}}
            dets.append(DetectorConfig(job.detector, params, job.alias, job.control, job.perturbations))
    ds = DatasetConfig("zoo", "manifest", str(zoo.manifest), {"split": "test"})
    raw = {"run": {"seed": 0}, "datasets": [{"name": "zoo", "layout": "manifest", "root": str(zoo.manifest),
                                             "split": "test"}],
           "detectors": [{"name": d.name, **({"alias": d.alias} if d.alias else {}),
                          **({"control": d.control} if d.control else {}),
                          **({"perturbations": list(d.perturbations)} if d.perturbations else {}), **d.param_dict}
                         for d in dets], "perturbations": {"grid": list(DEMO_GRID)}}
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
    _pretext_report(zoo, checkpoints, address, log)
    config = _sweep_config(zoo, checkpoints)
    result = run_sweep(config, out, address=address, quiet=quiet)
    _write_config(config, Path(out) / "sweep.toml")
    md = Path(out) / "leaderboard.md"
    log(md.read_text())
    log(result.summary())
    _control_deltas(Path(out), log)
    log(f"demo finished in {time.monotonic() - start:.0f}s; leaderboard: {md} (also .csv, .html, *.png)")
    return Path(out)


def _write_config(config: SweepConfig, path: Path) -> None:
    """The demo's sweep as a config file, so `exifbench sweep` can rerun it as is."""
    import tomli_w

    path.write_text(tomli_w.dumps(dict(config.raw)))
