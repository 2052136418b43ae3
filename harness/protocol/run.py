"""``exifbench protocol``: train every detector on every training set, score every test
generator, write the matrices.

Steps: read the training and test data (and refuse test images that are training images);
draw the training sets (:mod:`harness.protocol.design`); train one model per detector and
training set, all at once as Ray tasks (:func:`harness.train.jobs.run_training_jobs`), each
into its content-addressed folder in the cache (:mod:`harness.train.store`), so a job
already trained is not run again; score the test data with every model through the sweep
engine (its score cache: cells already scored are not scored again), into ``OUT/sweep``;
compute the matrices and the summary (:mod:`harness.protocol.matrix`) and write them
(:mod:`harness.protocol.render`; cached as a derived artefact, so unchanged scores are not
evaluated again) with ``protocol.json``, the record of the run.
"""
from __future__ import annotations

import dataclasses
import inspect
import json
import logging
import shutil
import time
from importlib.metadata import version
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from harness.config import DetectorConfig, SweepConfig
from harness.derived_cache import derived_files, derived_key
from harness.engine.plan import ENGINE_KEYS, read_dataset
from harness.engine.score_cache import ScoreCache
from harness.engine.sweep import run_sweep
from harness.files import atomic_write_text
from harness.protocol.config import ProtocolConfig
from harness.protocol.design import TrainingSet, check_disjoint, fake_generators, training_sets
from harness.protocol.matrix import Model, matrix_table, summary_table
from harness.protocol.render import write_outputs
from harness.stats import Bootstrap
from harness.train.jobs import JobOutcome, TrainingJob, run_training_jobs
from harness.train.store import cached_checkpoint

__all__ = ["ProtocolResult", "run_protocol"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ProtocolResult:
    """What a run did: jobs trained and found in the cache, cells scored and found cached."""

    out: Path
    jobs: int
    trained: int
    cells: int
    scored: int
    elapsed_s: float

    def summary(self) -> str:
        return (f"{self.jobs} training jobs: {self.trained} trained, {self.jobs - self.trained} from the cache; "
                f"{self.cells} cells: {self.scored} scored, {self.cells - self.scored} from the cache; "
                f"in {self.elapsed_s:.1f}s -> {self.out}")


def _read(config: ProtocolConfig, role: tuple[str, ...]) -> list:
    return [s for ds in config.sweep.datasets if ds.name in role for s in read_dataset(ds)]


def _jobs(config: ProtocolConfig, sets: list[TrainingSet]) -> list[tuple[DetectorConfig, TrainingSet, TrainingJob]]:
    out = []
    seed = config.sweep.run.seed
    for det in config.sweep.detectors:
        params = {k: v for k, v in det.param_dict.items() if k not in ENGINE_KEYS}
        for ts in sets:
            folder = cached_checkpoint(det.name, params, ts.samples, seed)
            out.append((det, ts, TrainingJob(det.name, params, ts.samples, folder, seed)))
    return out


def _alias(det: DetectorConfig, ts: TrainingSet) -> str:
    return f"{det.display_name}@{ts.name}"


def _scoring_config(config: ProtocolConfig, jobs: list) -> SweepConfig:
    """The sweep that scores the test data with every trained model."""
    sweep = config.sweep
    detectors = tuple(DetectorConfig(det.name, {**det.param_dict, "checkpoint": str(job.out)}, _alias(det, ts))
                      for det, ts, job in jobs)
    datasets = tuple(d for d in sweep.datasets if d.name in config.test)
    raw = {"run": {k: v for k, v in dataclasses.asdict(sweep.run).items() if v is not None},
           "datasets": [{"name": d.name, "layout": d.layout, "root": d.root, **d.option_dict} for d in datasets],
           "detectors": [{"name": d.name, "alias": d.alias, **d.param_dict} for d in detectors],
           "perturbations": {k: v for k, v in (("grid", list(sweep.grid)), ("suite", sweep.suite)) if v},
           "metrics": dataclasses.asdict(sweep.metrics)}
    return dataclasses.replace(sweep, datasets=datasets, detectors=detectors, raw=raw,
                               source=f"{config.source} (protocol scoring)")


def _job_record(det: DetectorConfig, ts: TrainingSet, outcome: JobOutcome) -> dict[str, Any]:
    from harness.checkpoint import read_manifest

    extra = read_manifest(outcome.job.out).get("extra", {})
    return {"detector": det.display_name, "name": det.name, "train": ts.name, "generators": list(ts.generators),
            "n_real": sum(s.label == 0 for s in ts.samples), "n_fake": sum(s.label == 1 for s in ts.samples),
            "params": outcome.job.params, "checkpoint": str(outcome.job.out), "trained": outcome.trained,
            "train_s": round(outcome.seconds, 3), "device": extra.get("device"), "where": extra.get("where")}


def _results(config: ProtocolConfig, models: list[Model], trains: list[str], out: Path) -> list[Path]:
    """The matrices, summary and their files, copied into ``out``: a derived artefact
    (:mod:`harness.derived_cache`) of the scores' content, the models, the metrics, the
    bootstrap and the code that makes them, so a re-run of unchanged scores copies the files."""
    from harness import metrics, stats
    from harness.protocol import matrix as matrix_module, render

    boot = Bootstrap(config.sweep.metrics.bootstrap, config.sweep.metrics.ci, config.sweep.run.seed)
    scores = pd.read_parquet(out / "sweep" / "scores.parquet")
    rows = pd.util.hash_pandas_object(scores.drop(columns=["run_id"]), index=False).to_numpy().tobytes()
    setup = json.dumps({"models": [dataclasses.asdict(m) for m in models], "metrics": list(config.metrics),
                        "bootstrap": dataclasses.asdict(boot), "kind": config.kind, "trains": trains,
                        "scikit-learn": version("scikit-learn")}, sort_keys=True).encode()
    code = b"".join(inspect.getsource(m).encode() for m in (matrix_module, metrics, stats))

    def make(folder: Path) -> list[Path]:
        matrix, replicates = matrix_table(scores, models, config.metrics, boot)
        summary = summary_table(matrix, replicates, boot.ci)
        return write_outputs(matrix, summary, trains, folder, kind=config.kind, bootstrap=boot.n_boot, ci=boot.ci)

    copied = []
    for made in derived_files("protocol", derived_key(render, "matplotlib", code, setup, rows), make):
        shutil.copyfile(made, out / made.name)
        copied.append(out / made.name)
    return copied


def run_protocol(config: ProtocolConfig, out: str | Path, *, address: str | None = None, quiet: bool = False,
                 cache: ScoreCache | None = None) -> ProtocolResult:
    start = time.monotonic()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    train, test = _read(config, config.train), _read(config, config.test)
    check_disjoint(train, test)
    sets = training_sets(config.kind, train, config.generators, fake_generators(test))
    jobs = _jobs(config, sets)
    outcomes = run_training_jobs([j for _, _, j in jobs], num_gpus=config.num_gpus, address=address)
    log.info("protocol: %d jobs, %d trained", len(outcomes), sum(o.trained for o in outcomes))
    scoring = _scoring_config(config, jobs)
    swept = run_sweep(scoring, out / "sweep", address=address, quiet=quiet, cache=cache, leaderboard=False)
    _write_toml(scoring, out / "sweep" / "sweep.toml")
    models = [Model(_alias(det, ts), det.display_name, ts.name, ts.generators) for det, ts, _ in jobs]
    files = _results(config, models, [ts.name for ts in sets], out)
    result = ProtocolResult(out, len(outcomes), sum(o.trained for o in outcomes), swept.total, swept.computed,
                            time.monotonic() - start)
    record = {"kind": config.kind, "config_path": config.source, "config": config.raw,
              "training_sets": [{"name": ts.name, "generators": list(ts.generators)} for ts in sets],
              "test_generators": fake_generators(test), "metrics": list(config.metrics),
              "jobs": [_job_record(det, ts, o) for (det, ts, _), o in zip(jobs, outcomes)],
              "scoring": {"run_id": swept.run_id, "cells": swept.total, "scored": swept.computed,
                          "cached": swept.cached, "failed": swept.failed},
              "files": [p.name for p in files], "elapsed_s": round(result.elapsed_s, 3)}
    atomic_write_text(out / "protocol.json", json.dumps(record, indent=1, default=str))
    return result


def _write_toml(config: SweepConfig, path: Path) -> None:
    """The scoring sweep as a config file: `exifbench sweep` reruns it as is."""
    import tomli_w

    path.write_text(tomli_w.dumps(dict(config.raw)))
