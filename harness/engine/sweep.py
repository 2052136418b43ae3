"""``exifbench sweep``: plan, look up the cache, compute what is missing, write the run.

Steps: read the datasets and plan the cells; look up every cell in the score cache; if
anything is missing, start (or join) Ray and compute it; write one row per cell into
``scores.parquet``; compute ``metrics.csv`` (with bootstrap intervals) and
``comparisons.csv`` (paired differences of detectors); write ``run.json`` and
``results.json``; render the leaderboard.

Memory does not grow with the rows but with the samples: the plan's cells are made on
demand (:class:`~harness.engine.plan.CellGrid`), the cache is looked up in blocks of
``LOOKUP_CELLS`` cells into one bool per cell (missing or not), and ``scores.parquet`` is
written one row group per block. The metrics step reads back only the columns the metrics
use (about 80 bytes per cell): it needs every score of a (detector, dataset, perturbation)
at once, for its bootstrap and paired comparisons.
"""
from __future__ import annotations

import hashlib
import inspect
import json
import logging
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

import numpy as np
import pandas as pd

from harness.config import MetricsConfig, SweepConfig
from harness.derived_cache import derived_files, derived_key
from harness.files import atomic_path, atomic_write_text, writable_folder
from harness.stats import Bootstrap
from harness.engine.score_cache import ScoreCache
from harness.engine.execute import EngineStats
from harness.engine.plan import MissingCells, Plan, make_plan
from harness.engine.records import git_commit, new_run_id, versions, write_run_json
from harness.plugins import perturbations
from harness.progress import Progress

__all__ = ["SweepResult", "run_sweep", "compute_missing", "default_cache", "scores_frame", "missing_mask",
           "write_scores", "METRIC_COLUMNS"]

log = logging.getLogger(__name__)

SCORE_COLUMNS = ["run_id", "detector", "detector_params_hash", "weights_sha256", "dataset", "generator", "family",
                 "subset", "split", "sample_id", "path", "label", "perturbation", "perturbation_version", "score",
                 "error", "threshold"]
#: the columns of ``scores.parquet`` that the metrics read
METRIC_COLUMNS = ["detector", "dataset", "generator", "subset", "sample_id", "label", "perturbation", "score", "error",
                  "threshold"]
#: cells per cache look-up and per row group of ``scores.parquet``
LOOKUP_CELLS = 65536


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


def _compute_missing(plan: Plan, cache: ScoreCache, missing: Sequence, progress: Progress, *, address: str | None,
                     batch_size: int, apply_orientation: bool, detectors: list[int],
                     cpu_actors: int | None = None) -> EngineStats:
    """Start (or join) Ray and compute ``missing``; each finished batch goes to the cache."""
    from harness.engine.execute import run_cells
    from harness.runtime import ensure_ray

    ray = ensure_ray(address)
    per_image = max(1, len(plan.chains) if isinstance(missing, MissingCells) else len({c.chain.spec for c in missing}))
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


def _blocks(plan: Plan) -> Iterator[tuple[int, int]]:
    """Sample ranges of about ``LOOKUP_CELLS`` cells."""
    step = max(1, LOOKUP_CELLS // max(1, plan.cells.per_sample))
    for start in range(0, len(plan.samples), step):
        yield start, min(len(plan.samples), start + step)


def _schema():
    import pyarrow as pa

    numeric = {"label": pa.int64(), "score": pa.float64(), "threshold": pa.float64()}
    return pa.schema([(c, numeric.get(c, pa.string())) for c in SCORE_COLUMNS])


def _table_of(plan: Plan, start: int, stop: int, cache: ScoreCache, run_id: str, thresholds: Sequence):
    """The rows of samples ``start:stop`` as an Arrow table: the columns of a sample and
    of a (chain, detector) are repeated by index, not built row by row."""
    import pyarrow as pa

    grid, reg = plan.cells, perturbations()
    per, m = grid.per_sample, stop - start
    keys = _block_keys(plan, start, stop)
    found = cache.get_many(keys)
    missing = (None, "not computed (sweep interrupted)")
    got = [found.get(k, missing) for k in keys]
    samples = plan.samples[start:stop]
    by_sample = np.repeat(np.arange(m, dtype=np.int32), per)
    by_position = np.tile(np.arange(per, dtype=np.int32), m)
    positions = [grid.position(j) for j in range(per)]

    def repeated(values: list, index: np.ndarray):
        return pa.DictionaryArray.from_arrays(index, pa.array(values, pa.string())).dictionary_decode()

    dets = [plan.detectors[d] for _, d in positions]
    chains = [plan.chains[c] for c, _ in positions]
    columns = {
        "run_id": pa.array(np.full(m * per, run_id, dtype=object), pa.string()),
        "detector": repeated([d.display_name for d in dets], by_position),
        "detector_params_hash": repeated([d.params_hash for d in dets], by_position),
        "weights_sha256": repeated([d.weights_sha256 for d in dets], by_position),
        **{col: repeated([getattr(s, col) for s in samples], by_sample)
           for col in ("dataset", "generator", "family", "subset", "split", "sample_id", "path")},
        "label": pa.array(np.repeat(np.fromiter((s.label for s in samples), np.int64, m), per), pa.int64()),
        "perturbation": repeated([c.spec for c in chains], by_position),
        "perturbation_version": repeated([c.version(reg) for c in chains], by_position),
        "score": pa.array([g[0] for g in got], pa.float64()),
        "error": pa.array([g[1] for g in got], pa.string()),
        "threshold": pa.array(np.tile(np.array([np.nan if thresholds[d] is None else thresholds[d]
                                                for _, d in positions], np.float64), m), pa.float64()),
    }
    return pa.table(columns, schema=_schema())


def _block_keys(plan: Plan, start: int, stop: int) -> list[str]:
    return [k for i in range(start, stop) for k in plan.cells.keys_of(i)]


def scores_frame(plan: Plan, cache: ScoreCache, run_id: str) -> pd.DataFrame:
    """One row per cell, in plan order, as one frame (:func:`write_scores` streams them)."""
    import pyarrow as pa

    thresholds = [cache.get_threshold(d.key) for d in plan.detectors]
    tables = [_table_of(plan, a, b, cache, run_id, thresholds) for a, b in [*_blocks(plan)] or [(0, 0)]]
    return pa.concat_tables(tables).to_pandas()


def write_scores(plan: Plan, cache: ScoreCache, run_id: str, path: Path) -> int:
    """``scores.parquet``, one row per cell in plan order, written one row group per block
    of cells (never the whole table in memory). Returns the number of rows with an error."""
    import pyarrow.parquet as pq

    thresholds = [cache.get_threshold(d.key) for d in plan.detectors]
    failed = 0
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        with pq.ParquetWriter(tmp, _schema()) as writer:
            for a, b in [*_blocks(plan)] or [(0, 0)]:
                table = _table_of(plan, a, b, cache, run_id, thresholds)
                failed += len(table) - table.column("error").null_count
                writer.write_table(table)
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)
    return failed


def split_slices(path: Path, folder: Path) -> list[Path]:
    """The metric columns of ``scores.parquet`` split, in one pass over its row groups, into one
    Parquet file per (dataset, perturbation) in ``folder``; the files in (dataset,
    perturbation) order. Only one row group is held at a time."""
    import pyarrow.parquet as pq

    folder.mkdir(parents=True, exist_ok=True)
    source = pq.ParquetFile(path)
    writers: dict[tuple[str, str], Any] = {}
    try:
        for g in range(source.num_row_groups):
            table = source.read_row_group(g, columns=METRIC_COLUMNS)
            keys = table.select(["dataset", "perturbation"]).to_pandas()
            for key, index in keys.groupby(["dataset", "perturbation"], sort=False).indices.items():
                if key not in writers:
                    writers[key] = pq.ParquetWriter(folder / f"{len(writers):05d}.parquet", table.schema)
                writers[key].write_table(table.take(index))
    finally:
        for writer in writers.values():
            writer.close()
    return [folder / f"{i:05d}.parquet" for i, _ in sorted(enumerate(writers), key=lambda kv: kv[1])]


def write_metrics(source: pd.DataFrame | Path, out: Path, cache: ScoreCache, settings: MetricsConfig = MetricsConfig(),
                  seed: int = 0, seen: Mapping[str, Sequence[str]] | None = None,
                  probabilities: Sequence[str] = ()) -> None:
    """``metrics.csv``, ``means.csv`` (means over generators: all, unseen, seen) and
    ``comparisons.csv`` of ``source`` (a scores table, or the path of ``scores.parquet``)
    into the folder ``out``: derived
    artefacts (:mod:`harness.derived_cache`) of the rows' content, the bootstrap settings,
    the seen generators and the metrics code, kept beside the score cache: a re-run whose
    rows are all cached copies the files instead of recomputing them.

    From a path the tables are computed one (dataset, perturbation) slice at a time
    (:func:`split_slices`, :func:`harness.metrics.write_tables`): the rows of the whole
    sweep are never held at once.

    ``seen`` maps a detector (as in the ``detector`` column) to the generators its
    checkpoints were trained on: those rows get ``seen = True``. ``probabilities`` names the
    detectors whose score is a probability: their rows get the Brier score and ECE, and
    ``reliability.csv`` their reliability diagram."""
    from harness import metrics, stats

    scratch = None
    if isinstance(source, pd.DataFrame):
        def parts() -> Iterator[pd.DataFrame]:
            return metrics.slices(source)
    else:
        scratch = Path(out) / f".slices-{os.getpid()}"
        files = split_slices(Path(source), scratch)

        def parts() -> Iterator[pd.DataFrame]:
            return (pd.read_parquet(f) for f in files)
    try:
        rows = hashlib.sha256()
        for part in parts():  # the content's identity, slice by slice (the same from a frame or a file)
            used = part[[c for c in METRIC_COLUMNS if c in part]]
            rows.update(pd.util.hash_pandas_object(used, index=False).to_numpy().tobytes())
        seen = {k: sorted(v) for k, v in (seen or {}).items()}
        probabilities = sorted(probabilities)
        setup = json.dumps({"bootstrap": settings.bootstrap, "ci": settings.ci, "seed": seed, "seen": seen,
                            "probabilities": probabilities}, sort_keys=True).encode()

        def make(folder: Path) -> list[Path]:
            return metrics.write_tables(parts(), folder, Bootstrap(settings.bootstrap, settings.ci, seed), seen,
                                        probabilities)

        root = Path(cache.path).parent if cache.path != ":memory:" else None
        key = derived_key(metrics, "scikit-learn", inspect.getsource(stats).encode(), setup, rows.digest())
        for made in derived_files("metrics", key, make, root):
            with atomic_path(out / made.name) as tmp:  # a reader never sees half a table
                shutil.copyfile(made, tmp)
    finally:
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)


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


def _run_record(config: SweepConfig, plan: Plan, run_id: str, result: dict[str, Any], cache: ScoreCache) -> dict:
    reg = perturbations()
    datasets = []
    for ds in config.datasets:
        part = [s for s in plan.samples if s.dataset == ds.name]
        ids = "\n".join(sorted(f"{s.sample_id},{s.label}" for s in part))
        datasets.append({"name": ds.name, "layout": ds.layout, "root": ds.root, "options": ds.option_dict,
                         "n_samples": len(part), "n_real": sum(s.label == 0 for s in part),
                         "n_fake": sum(s.label == 1 for s in part),
                         "data_sha256": hashlib.sha256(ids.encode()).hexdigest()})
    thresholds = {d.display_name: cache.get_threshold(d.key) for d in plan.detectors}
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
                       "score_is_probability": d.score_is_probability, "control": d.control,
                       "perturbations": plan.chain_specs(d)}
                      for d in plan.detectors],
        "bootstrap": {"replicates": config.metrics.bootstrap, "ci": config.metrics.ci, "seed": config.run.seed,
                      "method": "stratified percentile bootstrap (reals by subset, fakes by generator); "
                                "comparisons: paired, Holm-adjusted"},
        "perturbations": [{"spec": c.spec, "version": c.version(reg)} for c in plan.chains],
        "memory": memory_record(config, plan),
        "cells": result,
    }


def missing_mask(plan: Plan, cache: ScoreCache, retry_errors: bool) -> np.ndarray:
    """One bool per cell (plan order): the cache lacks it (or, with ``retry_errors``, holds
    an error for it). Looked up in blocks, so only the bools are kept."""
    mask = np.zeros(len(plan.cells), dtype=bool)
    per = plan.cells.per_sample
    for a, b in _blocks(plan):
        keys = _block_keys(plan, a, b)
        if retry_errors:
            found = cache.get_many(keys)
            mask[a * per:b * per] = [k not in found or bool(found[k][1]) for k in keys]
        else:
            held = cache.has_many(keys)
            mask[a * per:b * per] = [k not in held for k in keys]
    return mask


def _needed(plan: Plan, cache: ScoreCache, missing: MissingCells) -> list[int]:
    """The detectors that must run: a missing cell, or no threshold on record (a detector
    whose cells are all cached loads no model)."""
    needed = set(missing.detector_indices())
    needed |= {i for i, d in enumerate(plan.detectors) if cache.get_threshold(d.key) is None}
    return sorted(needed)


def memory_record(config: SweepConfig, plan: Plan) -> dict[str, Any]:
    """The memory budget, the chunks' pixel budget, and per detector its declared growth, its
    largest input and the cells whose source image is beyond it (they got the policy)."""
    pixels = np.fromiter((s.width * s.height for s in plan.samples), np.int64, len(plan.samples))
    return {"memory_mib": config.run.memory_mib, "oversize": plan.oversize, "pixels_per_chunk": plan.pixels_per_chunk,
            "detectors": {d.display_name: {
                "base_bytes": None if d.memory is None else d.memory[0],
                "bytes_per_pixel": None if d.memory is None else d.memory[1],
                "bytes_per_pixel_squared": None if d.memory is None else d.memory[2],
                "max_pixels": d.max_pixels,
                "oversized_cells": 0 if d.max_pixels is None else
                int((pixels > d.max_pixels).sum()) * len(plan.chain_specs(d))}
                for d in plan.detectors}}


def _missing(plan: Plan, cache: ScoreCache, retry_errors: bool) -> tuple[list, list[int]]:
    """The cells the cache lacks, and the detectors that must run (a missing cell, or no
    threshold on record): a detector whose cells are all cached loads no model."""
    missing = MissingCells(plan.cells, missing_mask(plan, cache, retry_errors))
    return list(missing), _needed(plan, cache, missing)


def compute_missing(plan: Plan, cache: ScoreCache, *, address: str | None = None, quiet: bool = False,
                    batch_size: int = 32, apply_orientation: bool = False, cpu_actors: int | None = None,
                    retry_errors: bool = False) -> tuple[int, EngineStats]:
    """Compute the cells of ``plan`` that ``cache`` lacks, with a progress display; Ray
    starts only when a cell is missing or a detector's threshold is not on record. Returns
    the number of cells computed and the engine's counters (sweeps and ``exifbench score``)."""
    missing = MissingCells(plan.cells, missing_mask(plan, cache, retry_errors))
    needed = _needed(plan, cache, missing)
    if not needed:
        return len(missing), EngineStats()
    progress = Progress(missing.n_samples, desc="images", unit="img", quiet=quiet,
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
    computed, stats = compute_missing(plan, cache, address=address, quiet=quiet, batch_size=config.run.batch_size,
                                      apply_orientation=apply_orientation, cpu_actors=config.run.cpu_actors,
                                      retry_errors=retry_errors)
    failed = write_scores(plan, cache, run_id, out / "scores.parquet")
    write_metrics(out / "scores.parquet", out, cache, config.metrics, config.run.seed,
                  {d.display_name: d.seen_generators for d in plan.detectors},
                  [d.display_name for d in plan.detectors if d.score_is_probability])
    result = {"total": len(plan.cells), "cached": len(plan.cells) - computed, "computed": computed, "failed": failed}
    elapsed = time.monotonic() - start
    record = _run_record(config, plan, run_id, result, cache)
    write_run_json(out / "run.json", {**record, "engine": stats.as_dict(), "elapsed_s": elapsed})
    write_results(out, record)
    if leaderboard:
        from harness.leaderboard import render_leaderboard

        render_leaderboard(out)
    return SweepResult(out, run_id, len(plan.cells), result["cached"], computed, failed, elapsed)
