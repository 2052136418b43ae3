"""``exifbench score``: score any images, no labels needed, on the sweep engine and its cache.

Steps: expand the inputs (files, folders walked recursively, globs, archives and archive
members) into sample paths; read each once for its sha256 (a file that cannot be read
becomes an error row here); plan the cells (image x perturbation x detector) as a sweep
does; compute only what the score cache lacks (Ray starts only then); write one row per
cell: ``path``, ``sha256``, ``detector``, ``perturbation``, ``score``, ``threshold``,
``decision``, ``error``.

``decision`` is ``generated`` when ``score > threshold`` (the rule of the sweep's accuracy
metrics), ``real`` otherwise, empty when the row has an error. The threshold is the
detector's own, fixed without these images (0.5 for a probability, the 2% quantile of its
training reals' log-likelihood for the one-class EXIF detector): it is not calibrated for
the user's images, and a decision is only as good as that threshold is on data like them.

Cells share the score cache with sweeps: the key is the detector (name, parameters,
weights), the image's sha256 and the perturbation, not the path, so scoring a folder twice,
the same images from an archive, or images a sweep already scored computes nothing.
"""
from __future__ import annotations

import glob
import hashlib
import json
import os
import tomllib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from types import MappingProxyType
from typing import Any, Sequence

import pandas as pd

from harness.api import ConfigError, Sample
from harness.config import RunConfig, SweepConfig, detector_config, load_score
from harness.data import sources
from harness.data.decode import probe_bytes
from harness.data.layouts import is_image_name, root_images
from harness.engine.execute import EngineStats
from harness.engine.plan import make_plan
from harness.engine.score_cache import ScoreCache
from harness.engine.sweep import compute_missing, default_cache, scores_frame
from harness.files import atomic_path

__all__ = ["COLUMNS", "FORMATS", "ScoreInput", "ScoreResult", "expand_inputs", "score_config", "run_score",
           "write_table"]

COLUMNS = ["path", "sha256", "detector", "perturbation", "score", "threshold", "decision", "error"]
#: output format by the extension of ``--out``
FORMATS = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".parquet": "parquet"}


@dataclass(frozen=True)
class ScoreInput:
    """One image to score: the path as the user wrote it (``shown``) and the absolute
    sample path the workers read (``path``, a file or ``<archive>::<member>``)."""

    shown: str
    path: str


@dataclass(frozen=True)
class ScoreResult:
    out: Path
    images: int
    rows: int
    cached: int
    computed: int
    failed_files: int
    ignored: int
    stats: EngineStats

    def summary(self) -> str:
        return (f"{self.images} images, {self.rows} rows: {self.computed} cells computed, {self.cached} from cache; "
                f"{self.failed_files} files failed -> {self.out}")


# --- inputs -----------------------------------------------------------------------------------

def _expand_one(arg: str) -> tuple[list[ScoreInput], int]:
    """The images an argument names, and the count of files it holds that are not images."""
    head, member = sources.split(arg)
    absolute = os.path.abspath(os.path.expanduser(head))
    if member is not None:
        if not sources.is_container(absolute) or not sources.exists(sources.member_path(absolute, member)):
            raise ConfigError(f"{arg!r}: no such member of an archive")
        return [ScoreInput(arg, sources.member_path(absolute, member))], 0
    if os.path.isfile(absolute) and not sources.is_container(absolute):
        return [ScoreInput(arg, absolute)], 0  # named explicitly: scored whatever its extension
    if not os.path.isdir(absolute) and not sources.is_container(absolute):
        raise ConfigError(f"{arg!r}: no such file, folder or archive")
    found = root_images(absolute)
    archive = sources.is_container(absolute)
    inputs = [ScoreInput(f"{arg}{sources.SEP}{'/'.join(rel)}" if archive else os.path.join(arg, *rel), path)
              for path, rel in found]
    return inputs, _count_files(absolute) - len(found)


def _count_files(root: str) -> int:
    if sources.is_container(root):
        return len(sources.container(root).members())
    return sum(len(files) for _, _, files in os.walk(root, followlinks=True))


def expand_inputs(args: Sequence[str]) -> tuple[list[ScoreInput], int]:
    """Every image the arguments name, in argument order (a folder or archive in walk
    order; a glob in sorted order), each absolute path once; and the number of files left
    out of folders and archives (hidden, or without an image extension)."""
    inputs, ignored, seen = [], 0, set()
    for arg in args:
        if any(c in arg for c in "*?[") and not os.path.exists(os.path.expanduser(arg)):
            matches = sorted(glob.glob(os.path.expanduser(arg), recursive=True))
            if not matches:
                raise ConfigError(f"{arg!r}: no file matches")
        else:
            matches = [arg]
        for match in matches:
            found, skipped = _expand_one(match)
            ignored += skipped
            for item in found:
                if item.path not in seen:
                    seen.add(item.path)
                    inputs.append(item)
    if not inputs:
        raise ConfigError(f"no images in {list(args)} (image extensions: folders and archives are searched for "
                          "files named *.jpg, *.png, *.webp, ...)")
    return inputs, ignored


def _read_one(item: ScoreInput) -> Sample | str:
    """The sample of an input, or why its bytes cannot be read."""
    try:
        data = sources.read_bytes(item.path)
    except OSError as exc:
        return f"read: {exc.strerror or exc}"[:200]
    info = probe_bytes(data) if data else {}
    return Sample(sample_id=hashlib.sha256(data).hexdigest(), path=item.path, label=-1, dataset="", generator="",
                  family="", split="", subset="", **info)


def read_inputs(inputs: Sequence[ScoreInput], threads: int = 8) -> list[Sample | str]:
    """Each input's :class:`Sample` (label -1: unknown), or the reason it cannot be read.
    Threads overlap the reads; the order is the inputs'."""
    if len(inputs) < 32:
        return [_read_one(i) for i in inputs]
    with ThreadPoolExecutor(max(1, threads)) as pool:
        return list(pool.map(_read_one, inputs))


# --- configuration ------------------------------------------------------------------------------

def _value(text: str) -> Any:
    """A ``--param`` value: a TOML value when it parses as one (``0.5``, ``true``,
    ``[1, 2]``, ``"text"``), else the text itself."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def _bind_params(params: Sequence[str], names: Sequence[str]) -> dict[str, dict[str, Any]]:
    """``KEY=VALUE`` to the only detector, ``NAME.KEY=VALUE`` to detector ``NAME``."""
    bound: dict[str, dict[str, Any]] = {n: {} for n in names}
    for item in params:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"--param {item!r}: write KEY=VALUE (or DETECTOR.KEY=VALUE)")
        prefix, dot, rest = key.partition(".")
        if dot and prefix in bound:
            bound[prefix][rest] = _value(value)
        elif len(names) == 1:
            bound[names[0]][key] = _value(value)
        else:
            raise ConfigError(f"--param {item!r}: with several detectors ({', '.join(names)}) say which one: "
                              f"--param DETECTOR.{key}={value}")
    return bound


def score_config(detectors: Sequence[str] = (), params: Sequence[str] = (), config: str | Path | None = None,
                 perturb: Sequence[str] = (), seed: int | None = None) -> SweepConfig:
    """The detectors and perturbations to score with: the ``[[detectors]]``, ``[run]`` and
    ``[perturbations]`` of ``config`` (a sweep config without datasets), then each
    ``detectors`` name; ``params`` bind to them by name (see :func:`_bind_params`) and
    override the config's; ``perturb`` replaces the config's grid (default ``none``)."""
    base = load_score(config) if config else SweepConfig(RunConfig(), (), ())
    cwd = Path.cwd()
    from_cli = [detector_config(name, {}, cwd) for name in detectors]
    every = [*base.detectors, *from_cli]
    names = [d.display_name for d in every]
    if not every:
        raise ConfigError("name a detector: --detector NAME (exifbench list detectors), or --config FILE with "
                          "[[detectors]] tables")
    if len(set(names)) != len(names):
        raise ConfigError(f"a detector is named twice ({names}); give each a distinct alias in a --config file")
    bound = _bind_params(params, names)
    merged = tuple(replace(d, params=MappingProxyType({**d.param_dict,
                                                       **detector_config(d.name, bound[d.display_name], cwd).params}))
                   for d in every)
    run = base.run if seed is None else replace(base.run, seed=seed)
    grid = tuple(perturb) or base.grid or ("none",)
    return replace(base, run=run, detectors=merged, grid=grid, suite="" if perturb else base.suite)


# --- output ---------------------------------------------------------------------------------------

def output_format(out: str | Path) -> str:
    suffix = Path(out).suffix.lower()
    if suffix not in FORMATS:
        raise ConfigError(f"--out {str(out)!r}: the extension says the format, one of {sorted(FORMATS)}")
    return FORMATS[suffix]


def write_table(table: pd.DataFrame, out: str | Path) -> None:
    """Write ``table`` as CSV, JSON Lines or Parquet by the extension of ``out``, atomically."""
    kind = output_format(out)
    with atomic_path(out) as tmp:
        if kind == "csv":
            table.to_csv(tmp, index=False)
        elif kind == "jsonl":  # json's float repr reads back exactly (pandas' writer rounds)
            records = table.astype(object).where(table.notna(), None).to_dict("records")
            tmp.write_text("".join(json.dumps(r) + "\n" for r in records))
        else:
            table.to_parquet(tmp, index=False)


def _rows(inputs: Sequence[ScoreInput], read: Sequence[Sample | str], frame: pd.DataFrame,
          pairs: Sequence[tuple[str, str]]) -> pd.DataFrame:
    """One row per input x (perturbation, detector) pair of the plan, in input order; an
    unreadable input gets error rows."""
    shown = {i.path: i.shown for i in inputs}
    scored = pd.DataFrame({"path": frame["path"].map(shown), "sha256": frame["sample_id"],
                           "detector": frame["detector"], "perturbation": frame["perturbation"],
                           "score": frame["score"], "threshold": frame["threshold"], "error": frame["error"]})
    failed = [(i.shown, None, d, c, None, None, reason) for i, reason in zip(inputs, read) if isinstance(reason, str)
              for c, d in pairs]
    table = pd.concat([scored, pd.DataFrame(failed, columns=list(scored.columns))], ignore_index=True)
    order = {i.shown: k for k, i in enumerate(inputs)}
    table = table.sort_values("path", key=lambda p: p.map(order), kind="stable", ignore_index=True)
    table["score"] = table["score"].astype("float64")
    table["threshold"] = table["threshold"].astype("float64")
    ok = table["score"].notna() & table["error"].isna()
    table["decision"] = None
    table.loc[ok, "decision"] = (table.loc[ok, "score"] > table.loc[ok, "threshold"]).map(
        {True: "generated", False: "real"})
    return table[COLUMNS]


# --- the command ------------------------------------------------------------------------------------

def run_score(paths: Sequence[str], config: SweepConfig, out: str | Path, *, address: str | None = None,
              quiet: bool = False, cache: ScoreCache | None = None, apply_orientation: bool = False,
              retry_errors: bool = False) -> ScoreResult:
    """Score every image ``paths`` name with ``config``'s detectors and perturbations;
    write the rows to ``out`` (format by its extension)."""
    output_format(out)  # a bad extension fails before any work
    inputs, ignored = expand_inputs(paths)
    read = read_inputs(inputs)
    samples = [s for s in read if isinstance(s, Sample)]
    cache = default_cache() if cache is None else cache
    plan = make_plan(config, samples)
    computed, stats = (compute_missing(plan, cache, address=address, quiet=quiet, batch_size=config.run.batch_size,
                                       apply_orientation=apply_orientation, cpu_actors=config.run.cpu_actors,
                                       retry_errors=retry_errors)
                       if samples else (0, EngineStats()))
    frame = scores_frame(plan, cache, run_id="")
    positions = [plan.cells.position(j) for j in range(plan.cells.per_sample)]
    table = _rows(inputs, read, frame, [(plan.chains[c].spec, plan.detectors[d].display_name) for c, d in positions])
    write_table(table, out)
    failed = int(table.loc[table["error"].notna(), "path"].nunique())
    return ScoreResult(Path(out), len(inputs), len(table), len(plan.cells) - computed, computed, failed, ignored,
                       stats)
