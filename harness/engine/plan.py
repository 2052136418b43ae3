"""Sweep planning: datasets to samples, the grid to chains, detectors to keys, and cells.

Nothing here runs a model: planning is cheap and stops a bad config (unknown detector,
unknown perturbation, missing checkpoint, empty dataset) before any compute is spent.

A plan's cells are not stored: :class:`CellGrid` makes them (and their cache keys) on
demand from the samples, chains and detectors, so a plan of 10^8 cells costs the memory of
its samples, and its keys cost one sha256 each, computed as they are read.
"""
from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Sequence as SequenceABC
from dataclasses import dataclass, replace
from pathlib import Path
from types import MappingProxyType
from typing import Any, Iterator, Mapping, Sequence

from harness.api import CheckpointError, ConfigError, Sample
from harness.config import DatasetConfig, DetectorConfig, SweepConfig
from harness.chains import Chain, expand_grid
from harness.plugins import detectors, layouts, perturbations
from harness.checkpoint import path_sha256, read_manifest

__all__ = ["ENGINE_KEYS", "PlannedDetector", "Cell", "CellGrid", "MissingCells", "Plan", "make_plan", "read_dataset", "path_params",
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
    #: the largest image (pixels) it takes within the sweep's memory budget; None: no limit
    max_pixels: int | None = None
    #: its declared memory growth: (base bytes, bytes per input pixel, bytes per pixel
    #: squared); None: not declared
    memory: tuple[float, float, float] | None = None
    #: the specs of the chains it is scored on; None: every chain of the plan
    chains: tuple[str, ...] | None = None


#: bytes per pixel a chunk holds besides the models' work: the decoded image, its perturbed
#: copy and a float32 prepared input
HOLD_BYTES_PER_PIXEL = 18


def max_pixels(memory: tuple[float, float, float] | None, budget_bytes: float) -> int | None:
    """The largest input (pixels) whose declared memory fits ``budget_bytes`` besides what a
    chunk holds of it; None when the memory does not grow with the input (or is not declared).
    With a squared term ``q``, the root of ``q n^2 + (b + held) n + base = budget``."""
    if memory is None or (memory[1] <= 0 and memory[2] <= 0):
        return None
    base, linear, squared = memory[0], memory[1] + HOLD_BYTES_PER_PIXEL, memory[2]
    room = max(0.0, budget_bytes - base)
    n = (math.sqrt(linear * linear + 4 * squared * room) - linear) / (2 * squared) if squared > 0 else room / linear
    return max(64 * 64, int(n))


@dataclass(frozen=True)
class Cell:
    key: str
    sample: Sample
    chain: Chain
    detector: int            # index into Plan.detectors


class CellGrid(SequenceABC):
    """The cells of a plan, sample-major (each sample, each chain, each detector that takes
    that chain: a detector may be scored on part of the grid only), made on
    demand: ``grid[i]``, iteration and ``keys_of(sample index)`` compute the cache keys
    (:func:`~harness.engine.score_cache.cell_key`) as they are read; nothing per cell is kept."""

    def __init__(self, samples: Sequence[Sample], chains: Sequence[Chain], detectors: Sequence[PlannedDetector],
                 seed: int, oversize: str = "error"):
        reg = perturbations()
        self.samples, self.chains = samples, tuple(chains)
        # an image beyond a detector's limit gets the oversize policy: its cells' keys name
        # the policy and the limit, so changing either never serves a stale score
        self._limits = [d.max_pixels for d in detectors]
        self._over = [f"{d.key}|oversize={oversize}@{d.max_pixels}|".encode() for d in detectors]
        self.n_detectors = len(detectors)
        # cell_key's text is f"{detector key}|{sample id}|{spec}|{version}|{seed or ''}": its
        # parts around the sample id are fixed per (chain, detector)
        self._parts: list[tuple[bytes, bytes, int, int]] = []
        for c, chain in enumerate(self.chains):
            stochastic = any(reg[st.name].stochastic for st in chain.steps)
            tail = f"|{chain.spec}|{chain.version(reg)}|{seed if stochastic else ''}".encode()
            for d, det in enumerate(detectors):
                if det.chains is None or chain.spec in det.chains:  # a detector may take part of the grid
                    self._parts.append((f"{det.key}|".encode(), tail, c, d))
        self.per_sample = len(self._parts)
        self._limited = any(limit is not None for limit in self._limits)

    def _heads(self, i: int) -> list[bytes] | None:
        """Per (chain, detector) position, the key's head for sample ``i`` when one of its
        detectors takes it beyond its limit; None when none does."""
        if not self._limited:
            return None
        s = self.samples[i]
        pixels = s.width * s.height
        over = [limit is not None and pixels > limit for limit in self._limits]
        if not any(over):
            return None
        return [self._over[d] if over[d] else head for head, _, _, d in self._parts]

    def oversized(self, i: int, d: int) -> bool:
        """Sample ``i`` is beyond detector ``d``'s limit (as its reader probed its size)."""
        limit = self._limits[d]
        return limit is not None and self.samples[i].width * self.samples[i].height > limit

    def __len__(self) -> int:
        return len(self.samples) * self.per_sample

    def keys_of(self, i: int) -> list[str]:
        """The keys of sample ``i``'s cells, chain-major then detector."""
        sid = self.samples[i].sample_id.encode()
        sha = hashlib.sha256
        heads = self._heads(i)
        if heads is not None:
            return [sha(h + sid + tail).hexdigest() for h, (_, tail, _, _) in zip(heads, self._parts)]
        return [sha(head + sid + tail).hexdigest() for head, tail, _, _ in self._parts]

    def cells_of(self, i: int, keys: Sequence[str] | None = None) -> list[Cell]:
        sample = self.samples[i]
        keys = self.keys_of(i) if keys is None else keys
        return [Cell(k, sample, self.chains[c], d) for k, (_, _, c, d) in zip(keys, self._parts)]

    def position(self, j: int) -> tuple[int, int]:
        """(chain index, detector index) of the ``j``-th cell of a sample."""
        return self._parts[j][2], self._parts[j][3]

    def __iter__(self) -> Iterator[Cell]:
        for i in range(len(self.samples)):
            yield from self.cells_of(i)

    def __getitem__(self, index):
        if isinstance(index, slice):
            return [self[j] for j in range(*index.indices(len(self)))]
        n = len(self)
        if index < 0:
            index += n
        if not 0 <= index < n:
            raise IndexError("cell index out of range")
        i, j = divmod(index, self.per_sample)
        _, _, c, d = self._parts[j]
        return Cell(self.keys_of(i)[j], self.samples[i], self.chains[c], d)

    def __repr__(self) -> str:
        return f"CellGrid({len(self.samples)} samples x {len(self.chains)} chains x {self.n_detectors} detectors)"


class MissingCells(SequenceABC):
    """The cells of ``grid`` marked in ``mask`` (one bool per cell, in grid order), read
    sample by sample with the samples sorted by size (pixels, then height), so neighbouring
    chunks hold images of one size. Made on demand, as :class:`CellGrid`'s."""

    sample_ordered = True

    def __init__(self, grid: CellGrid, mask: Any):
        import numpy as np

        self.grid, self.mask = grid, mask
        per = max(1, grid.per_sample)
        rows = mask.reshape(-1, per) if len(grid) else np.zeros((0, per), bool)
        self._any = np.flatnonzero(rows.any(axis=1))
        self._count = int(mask.sum())
        dets = np.zeros(grid.n_detectors, bool)
        for j in range(grid.per_sample):
            if rows[:, j].any():
                dets[grid.position(j)[1]] = True
        self._detectors = tuple(int(d) for d in np.flatnonzero(dets))
        samples = grid.samples
        pixels = np.fromiter((s.width * s.height for s in samples), np.int64, len(samples))
        heights = np.fromiter((s.height for s in samples), np.int64, len(samples))
        order = np.lexsort((heights[self._any], pixels[self._any]))  # stable: ties keep plan order
        self._order = self._any[order]

    def __len__(self) -> int:
        return self._count

    @property
    def n_samples(self) -> int:
        return len(self._order)

    def detector_indices(self) -> tuple[int, ...]:
        return self._detectors

    def by_sample(self) -> Iterator[list[Cell]]:
        """Each sample's missing cells, samples by size."""
        per = self.grid.per_sample
        for i in self._order:
            i = int(i)
            wanted = self.mask[i * per:(i + 1) * per]
            yield [c for c, w in zip(self.grid.cells_of(i), wanted) if w]

    def __iter__(self) -> Iterator[Cell]:
        for cells in self.by_sample():
            yield from cells

    def __getitem__(self, index):
        return list(self)[index]  # for inspection only; the engine iterates


@dataclass(frozen=True)
class Plan:
    samples: tuple[Sample, ...]
    chains: tuple[Chain, ...]
    detectors: tuple[PlannedDetector, ...]
    cells: CellGrid
    seed: int
    oversize: str = "error"
    #: a chunk's pixel budget (None: no detector declares memory growth)
    pixels_per_chunk: int | None = None
    #: seconds a file may take to read and decode (0: no limit); not part of any cache key
    decode_timeout_s: float = 60.0

    def chain_specs(self, detector: PlannedDetector) -> list[str]:
        """The specs of the chains ``detector`` is scored on (all of the plan's by default)."""
        return [c.spec for c in self.chains] if detector.chains is None else list(detector.chains)


def read_dataset(ds: DatasetConfig) -> list[Sample]:
    from harness.data import identities

    spec = layouts()[ds.layout]
    try:
        return spec.read(ds.root, dataset=ds.name, **ds.option_dict)
    except TypeError as exc:
        raise ConfigError(f"dataset {ds.name!r}: bad options for layout {ds.layout!r}: {exc}") from exc
    finally:
        identities.flush()  # what this read learnt, for the next process


def _plan_detector(cfg: DetectorConfig, budget_bytes: float = 2048 * 2 ** 20) -> PlannedDetector:
    spec = detectors()[cfg.name]
    params = {**spec.defaults, **{k: v for k, v in cfg.param_dict.items() if k not in ENGINE_KEYS}}
    engine = cfg.param_dict
    wsha = weights_sha256(params, spec.path_params)
    phash = params_hash(params)
    identity = f"{cfg.name}|{phash}|{wsha}" + (f"|v{spec.version}" if spec.version else "")
    key = hashlib.sha256(identity.encode()).hexdigest()
    generators, datasets = trained_on(path_params(params, spec.path_params).values())
    memory = spec.memory_model(params)
    return PlannedDetector(cfg.display_name, cfg.name, params, engine.get("num_gpus"), int(engine.get("actors", 1)),
                           key, phash, wsha, seen_generators=generators, seen_datasets=datasets,
                           score_is_probability=spec.score_is_probability, control=cfg.control or spec.control,
                           max_pixels=max_pixels(memory, budget_bytes), memory=memory)


def _with_chains(planned: PlannedDetector, cfg: DetectorConfig, chains: Sequence[Chain]) -> PlannedDetector:
    """``cfg.perturbations`` (entries of the grid) as the specs of the chains the detector is
    scored on; an entry that is not part of the sweep's grid is a ConfigError."""
    if not cfg.perturbations:
        return planned
    in_grid = [c.spec for c in chains]
    own = [c.spec for c in expand_grid(cfg.perturbations)]
    outside = [spec for spec in own if spec not in in_grid]
    if outside:
        raise ConfigError(f"detector {cfg.display_name!r}: perturbations {outside} are not in the sweep's grid "
                          f"{in_grid}")
    return replace(planned, chains=tuple(spec for spec in in_grid if spec in own))


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
    budget = config.run.memory_mib * 2 ** 20
    planned = tuple(_with_chains(_plan_detector(d, budget), d, chains) for d in config.detectors)
    samples = tuple(samples)
    growth = [d.memory[1] for d in planned if d.memory is not None]
    per_chunk = int(budget / (HOLD_BYTES_PER_PIXEL + max(growth))) if growth else None
    return Plan(samples, tuple(chains), planned, CellGrid(samples, chains, planned, config.run.seed, config.run.oversize),
                config.run.seed, config.run.oversize, per_chunk, config.run.decode_timeout_s)
