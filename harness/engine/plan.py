"""Sweep planning: datasets to samples, the grid to chains, detectors to keys, and cells.

Nothing here runs a model: planning is cheap and stops a bad config (unknown detector,
unknown perturbation, missing checkpoint, empty dataset) before any compute is spent.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any, Mapping, Sequence

from harness.api import CheckpointError, ConfigError, Sample
from harness.config import DatasetConfig, DetectorConfig, SweepConfig
from harness.engine.score_cache import cell_key
from harness.chains import Chain, expand_grid
from harness.plugins import detectors, layouts, perturbations
from harness.checkpoint import path_sha256, read_manifest

__all__ = ["ENGINE_KEYS", "PlannedDetector", "Cell", "Plan", "make_plan", "read_dataset", "path_params",
           "weights_sha256", "params_hash"]

#: detector-table keys that tell the engine how to place a detector, not the detector what to do
ENGINE_KEYS = ("num_gpus", "actors")


def params_hash(params: Mapping[str, Any]) -> str:
    return hashlib.sha256(json.dumps(dict(params), sort_keys=True, default=str).encode()).hexdigest()[:16]


def path_params(params: Mapping[str, Any], declared: Mapping[str, tuple[str, ...]] = MappingProxyType({})) -> dict[str, Path]:
    """The parameters that name files or folders: every string value that names an existing
    one, for any plugin, plus the ``declared`` path parameters, which must exist unless their
    value is one of their documented special values."""
    out = {}
    for key, value in params.items():
        if not isinstance(value, str) or not value:
            continue
        path = Path(value).expanduser()
        if path.exists():
            out[key] = path
        elif key in declared and value not in declared[key]:
            special = f" (or one of {list(declared[key])})" if declared[key] else ""
            raise ConfigError(f"parameter {key} = {value!r}: no such file or folder{special}; relative paths "
                              "are read from the config file's folder")
    return out


def weights_sha256(params: Mapping[str, Any], declared: Mapping[str, tuple[str, ...]] = MappingProxyType({})) -> str:
    """One sha256 over the content of every file or folder a detector's parameters name
    ('' when none): retraining into the same path changes it, so no stale score is served."""
    parts = [f"{key}={path_sha256(path)}" for key, path in sorted(path_params(params, declared).items())]
    if not parts:
        return ""
    if len(parts) == 1:
        return parts[0].split("=", 1)[1]
    return hashlib.sha256("|".join(parts).encode()).hexdigest()


@dataclass(frozen=True)
class PlannedDetector:
    display_name: str        # how it appears in results (the `detector` column)
    name: str                # registry name
    params: Mapping[str, Any]
    num_gpus: float | None
    actors: int
    key: str                 # name + params + weights: the cache identity
    params_hash: str
    weights_sha256: str
    threshold: float = float("nan")
    #: generators (and datasets) the checkpoints in its parameters were trained on
    seen_generators: tuple[str, ...] = ()
    seen_datasets: tuple[str, ...] = ()
    score_is_probability: bool = False
    #: not empty: a control row (the config's ``control``, else the spec's), and what it controls for
    control: str = ""


@dataclass(frozen=True)
class Cell:
    key: str
    sample: Sample
    chain: Chain
    detector: int            # index into Plan.detectors


@dataclass(frozen=True)
class Plan:
    samples: tuple[Sample, ...]
    chains: tuple[Chain, ...]
    detectors: tuple[PlannedDetector, ...]
    cells: tuple[Cell, ...]
    seed: int


def read_dataset(ds: DatasetConfig) -> list[Sample]:
    spec = layouts()[ds.layout]
    try:
        return spec.read(ds.root, dataset=ds.name, **ds.option_dict)
    except TypeError as exc:
        raise ConfigError(f"dataset {ds.name!r}: bad options for layout {ds.layout!r}: {exc}") from exc


def _plan_detector(cfg: DetectorConfig) -> PlannedDetector:
    spec = detectors()[cfg.name]
    params = {**spec.defaults, **{k: v for k, v in cfg.param_dict.items() if k not in ENGINE_KEYS}}
    engine = cfg.param_dict
    wsha = weights_sha256(params, spec.path_params)
    phash = params_hash(params)
    identity = f"{cfg.name}|{phash}|{wsha}" + (f"|v{spec.version}" if spec.version else "")
    key = hashlib.sha256(identity.encode()).hexdigest()
    generators, datasets = trained_on(path_params(params, spec.path_params).values())
    return PlannedDetector(cfg.display_name, cfg.name, params, engine.get("num_gpus"), int(engine.get("actors", 1)),
                           key, phash, wsha, seen_generators=generators, seen_datasets=datasets,
                           score_is_probability=spec.score_is_probability, control=cfg.control or spec.control)


def trained_on(paths) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The generators and datasets that the exifbench checkpoints among ``paths`` record in
    their manifests (``extra.trained_on``); files and other folders record nothing."""
    generators, datasets = set(), set()
    for path in paths:
        try:
            seen = read_manifest(path).get("extra", {}).get("trained_on", {}) if Path(path).is_dir() else {}
        except CheckpointError:
            continue
        generators.update(seen.get("generators", ()))
        datasets.update(seen.get("datasets", ()))
    return tuple(sorted(generators)), tuple(sorted(datasets))


def chains_of(config: SweepConfig) -> list[Chain]:
    entries = list(config.grid)
    if config.suite:
        from harness.chains import suite_entries

        entries += suite_entries(config.suite)
    chains = expand_grid(entries)
    if not chains:
        raise ConfigError("the perturbation grid is empty")
    return chains


def make_plan(config: SweepConfig, samples: Sequence[Sample] | None = None) -> Plan:
    if samples is None:
        samples = [s for ds in config.datasets for s in read_dataset(ds)]
    chains = chains_of(config)
    planned = [_plan_detector(d) for d in config.detectors]
    reg = perturbations()
    cells = []
    for s in samples:
        for c in chains:
            stochastic = any(reg[st.name].stochastic for st in c.steps)
            seed = config.run.seed if stochastic else None
            for i, d in enumerate(planned):
                cells.append(Cell(cell_key(d.key, s.sample_id, c.spec, c.version(reg), seed), s, c, i))
    return Plan(tuple(samples), tuple(chains), tuple(planned), tuple(cells), config.run.seed)
