"""``exifbench sweep``: plan, look up the cache, compute what is missing, write the run.

Steps: read the datasets and plan the cells; look up every cell in the score cache; if
anything is missing, start (or join) Ray and compute it; assemble one row per cell into
``scores.parquet``; compute ``metrics.csv`` (with bootstrap intervals) and
``comparisons.csv`` (paired differences of detectors); write ``run.json`` and
``results.json``; render the leaderboard.
"""
from __future__ import annotations

import hashlib
import inspect
import json
import logging
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import pandas as pd

from harness.config import MetricsConfig, SweepConfig
from harness.derived_cache import derived_files, derived_key
from harness.files import atomic_write_text, writable_folder
from harness.stats import Bootstrap
from harness.engine.score_cache import ScoreCache
from harness.engine.execute import EngineStats
from harness.engine.plan import Plan, make_plan
from harness.engine.records import git_commit, new_run_id, versions, write_run_json
from harness.plugins import perturbations
from harness.progress import Progress

__all__ = ["SweepResult", "run_sweep", "compute_missing", "default_cache", "scores_frame"]

log = logging.getLogger(__name__)

SCORE_COLUMNS = ["run_id", "detector", "detector_params_hash", "weights_sha256", "dataset", "generator", "family",
                 "subset", "split", "sample_id", "path", "label", "perturbation", "perturbation_version", "score",
                 "error", "threshold"]


@dataclass(frozen=True)
class SweepResult:
    out: Path
    run_id: str
    total: int
    cached: int
    computed: int
    failed: int
    elapsed_s: float

    def summary(self) -> str:
        return (f"{self.total} cells: {self.computed} computed, {self.cached} from cache, "
                f"{self.failed} failed, in {self.elapsed_s:.1f}s -> {self.out}")


def default_cache() -> ScoreCache:
    """The score cache in the user cache folder, shared by sweeps and ``exifbench score``."""
    from harness.cache_folder import cache_dir

    return ScoreCache(cache_dir() / "scores.sqlite")


def _compute_missing(plan: Plan, cache: ScoreCache, missing: list, progress: Progress, *, address: str | None,
                     batch_size: int, apply_orientation: bool, detectors: list[int],
                     cpu_actors: int | None = None) -> EngineStats:
    """Start (or join) Ray and compute ``missing``; each finished batch goes to the cache."""
    from harness.engine.execute import run_cells
    from harness.runtime import ensure_ray

    ray = ensure_ray(address)
    per_image = max(1, len({c.chain.spec for c in missing}))
    stats = EngineStats()

    def on_result(rows: list, n_images: int) -> None:
        cache.put_many(rows)
        progress.update(n_images, cells=len(rows), failed=sum(1 for r in rows if r[2] is not None))

    thresholds = run_cells(ray, plan, missing, on_result, images_per_chunk=max(1, batch_size // per_image),
                           apply_orientation=apply_orientation, detectors=detectors, stats=stats,
                           cpu_actors=cpu_actors)
    for i, t in thresholds.items():
        cache.put_threshold(plan.detectors[i].key, t)
    return stats


def scores_frame(plan: Plan, cache: ScoreCache, run_id: str) -> pd.DataFrame:
    """One row per cell, in plan order."""
    found = cache.get_many(c.key for c in plan.cells)
    reg = perturbations()
    thresholds = [cache.get_threshold(d.key) for d in plan.detectors]
    rows = []
    for c in plan.cells:
        d, s = plan.detectors[c.detector], c.sample
        score, error = found.get(c.key, (None, "not computed (sweep interrupted)"))
        rows.append((run_id, d.display_name, d.params_hash, d.weights_sha256, s.dataset, s.generator, s.family, s.subset,
                     s.split, s.sample_id, s.path, s.label, c.chain.spec, c.chain.version(reg), score, error,
                     thresholds[c.detector]))
    frame = pd.DataFrame(rows, columns=SCORE_COLUMNS)
    frame["score"] = frame["score"].astype("float64")
    frame["threshold"] = frame["threshold"].astype("float64")
    return frame


def write_metrics(frame: pd.DataFrame, out: Path, cache: ScoreCache, settings: MetricsConfig = MetricsConfig(),
                  seed: int = 0, seen: Mapping[str, Sequence[str]] | None = None,
                  probabilities: Sequence[str] = ()) -> None:
    """``metrics.csv``, ``means.csv`` (means over generators: all, unseen, seen) and
    ``comparisons.csv`` of ``frame`` into the folder ``out``: derived
    artefacts (:mod:`harness.derived_cache`) of the rows' content, the bootstrap settings,
    the seen generators and the metrics code, kept beside the score cache: a re-run whose
    rows are all cached copies the files instead of recomputing them.

    ``seen`` maps a detector (as in the ``detector`` column) to the generators its
    checkpoints were trained on: those rows get ``seen = True``. ``probabilities`` names the
    detectors whose score is a probability: their rows get the Brier score and ECE, and
    ``reliability.csv`` their reliability diagram."""
    from harness import metrics, stats

    seen = {k: sorted(v) for k, v in (seen or {}).items()}
    rows = pd.util.hash_pandas_object(frame.drop(columns=["run_id"]), index=False).to_numpy().tobytes()
    probabilities = sorted(probabilities)
    setup = json.dumps({"bootstrap": settings.bootstrap, "ci": settings.ci, "seed": seed, "seen": seen,
                        "probabilities": probabilities}, sort_keys=True).encode()

    def make(folder: Path) -> list[Path]:
        return metrics.write_tables(frame, folder, Bootstrap(settings.bootstrap, settings.ci, seed), seen, probabilities)

    root = Path(cache.path).parent if cache.path != ":memory:" else None
    key = derived_key(metrics, "scikit-learn", inspect.getsource(stats).encode(), setup, rows)
    for made in derived_files("metrics", key, make, root):
        shutil.copyfile(made, out / made.name)


def write_results(out: Path, record: Mapping[str, Any]) -> None:
    """``results.json``: the run's metrics with their intervals and counts, the comparisons,
    the config, versions and seeds, and which metrics are better higher (the shape of an
    evaluation harness's results file, one schema for every run)."""
    from harness.metrics import HIGHER_IS_BETTER

    metrics_table = pd.read_csv(out / "metrics.csv")
    comparisons = pd.read_csv(out / "comparisons.csv") if (out / "comparisons.csv").is_file() else pd.DataFrame()
    summary = {
        "schema": "exifbench-results/1",
        **{k: record[k] for k in ("run_id", "created", "git_commit", "seed", "config", "versions", "datasets",
                                  "detectors", "perturbations")},
        "bootstrap": record.get("bootstrap"),
        "higher_is_better": HIGHER_IS_BETTER,
        "results": _records(metrics_table),
        "comparisons": _records(comparisons),
    }
    atomic_write_text(out / "results.json", json.dumps(summary, indent=1, sort_keys=False, default=str))


def _records(table: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows as JSON objects: NaN (a metric the row cannot have) becomes null."""
    return json.loads(table.to_json(orient="records", double_precision=15))


def _run_record(config: SweepConfig, plan: Plan, run_id: str, result: dict[str, Any], frame: pd.DataFrame) -> dict:
    reg = perturbations()
    datasets = []
    for ds in config.datasets:
        part = [s for s in plan.samples if s.dataset == ds.name]
        ids = "\n".join(sorted(f"{s.sample_id},{s.label}" for s in part))
        datasets.append({"name": ds.name, "layout": ds.layout, "root": ds.root, "options": ds.option_dict,
                         "n_samples": len(part), "n_real": sum(s.label == 0 for s in part),
                         "n_fake": sum(s.label == 1 for s in part),
                         "data_sha256": hashlib.sha256(ids.encode()).hexdigest()})
    thresholds = frame.groupby("detector")["threshold"].first().to_dict()
    return {
        "run_id": run_id,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "config_path": config.source,
        "config": config.raw,
        "versions": versions(),
        "git_commit": git_commit(),
        "seed": config.run.seed,
        "datasets": datasets,
        "detectors": [{"display_name": d.display_name, "name": d.name, "params": dict(d.params),
                       "params_hash": d.params_hash, "weights_sha256": d.weights_sha256,
                       "threshold": thresholds.get(d.display_name),
                       "trained_on": {"generators": list(d.seen_generators), "datasets": list(d.seen_datasets)},
                       "score_is_probability": d.score_is_probability, "control": d.control}
                      for d in plan.detectors],
        "bootstrap": {"replicates": config.metrics.bootstrap, "ci": config.metrics.ci, "seed": config.run.seed,
                      "method": "stratified percentile bootstrap (reals by subset, fakes by generator); "
                                "comparisons: paired, Holm-adjusted"},
        "perturbations": [{"spec": c.spec, "version": c.version(reg)} for c in plan.chains],
        "cells": result,
    }


def _missing(plan: Plan, cache: ScoreCache, retry_errors: bool) -> tuple[list, list[int]]:
    """The cells the cache lacks, and the detectors that must run (a missing cell, or no
    threshold on record): a detector whose cells are all cached loads no model."""
    found = cache.get_many(c.key for c in plan.cells)
    missing = [c for c in plan.cells if c.key not in found or (retry_errors and found[c.key][1])]
    needed = {c.detector for c in missing}
    needed |= {i for i, d in enumerate(plan.detectors) if cache.get_threshold(d.key) is None}
    return missing, sorted(needed)


def compute_missing(plan: Plan, cache: ScoreCache, *, address: str | None = None, quiet: bool = False,
                    batch_size: int = 32, apply_orientation: bool = False, cpu_actors: int | None = None,
                    retry_errors: bool = False) -> tuple[int, EngineStats]:
    """Compute the cells of ``plan`` that ``cache`` lacks, with a progress display; Ray
    starts only when a cell is missing or a detector's threshold is not on record. Returns
    the number of cells computed and the engine's counters (``exifbench score`` runs on this)."""
    missing, needed = _missing(plan, cache, retry_errors)
    if not needed:
        return 0, EngineStats()
    progress = Progress(len({c.sample.sample_id for c in missing}), desc="images", unit="img", quiet=quiet,
                        cells=len(plan.cells), cached=len(plan.cells) - len(missing))
    try:
        return len(missing), _compute_missing(plan, cache, missing, progress, address=address, batch_size=batch_size,
                                              apply_orientation=apply_orientation, detectors=needed,
                                              cpu_actors=cpu_actors)
    finally:
        progress.close()

def run_sweep(config: SweepConfig, out: str | Path, *, address: str | None = None, quiet: bool = False,
              cache: ScoreCache | None = None, retry_errors: bool = False, apply_orientation: bool = False,
              leaderboard: bool = True) -> SweepResult:
    """Plan, look up the cache, compute what is missing (Ray starts only then), write the run."""
    start = time.monotonic()
    out = Path(out)
    writable_folder(out)  # before any work: an unwritable folder fails now, not after the compute
    cache = default_cache() if cache is None else cache
    run_id = new_run_id()
    plan = make_plan(config)
    missing, needed = _missing(plan, cache, retry_errors)
    stats = EngineStats()
    if needed:
        progress = Progress(len({c.sample.sample_id for c in missing}), desc="images", unit="img", quiet=quiet,
                            cells=len(plan.cells), cached=len(plan.cells) - len(missing))
        try:
            stats = _compute_missing(plan, cache, missing, progress, address=address,
                                     batch_size=config.run.batch_size, apply_orientation=apply_orientation,
                                     detectors=needed, cpu_actors=config.run.cpu_actors)
        finally:
            progress.close()
    frame = scores_frame(plan, cache, run_id)
    frame.to_parquet(out / "scores.parquet", index=False)
    write_metrics(frame, out, cache, config.metrics, config.run.seed,
                  {d.display_name: d.seen_generators for d in plan.detectors},
                  [d.display_name for d in plan.detectors if d.score_is_probability])
    failed = int(frame["error"].notna().sum())
    result = {"total": len(plan.cells), "cached": len(plan.cells) - len(missing), "computed": len(missing),
              "failed": failed}
    elapsed = time.monotonic() - start
    record = _run_record(config, plan, run_id, result, frame)
    write_run_json(out / "run.json", {**record, "engine": stats.as_dict(), "elapsed_s": elapsed})
    write_results(out, record)
    if leaderboard:
        from harness.leaderboard import render_leaderboard

        render_leaderboard(out)
    return SweepResult(out, run_id, len(plan.cells), result["cached"], len(missing), failed, elapsed)
