"""Configuration files (TOML) parsed once into frozen dataclasses.

Sweep config (a public contract)::

    [run]
    seed = 0                 # perturbation seeds derive from it
    batch_size = 32          # images per detector call (optional)
    cpu_actors = 4           # pipeline actors (optional; default one per CPU slot)
    [[datasets]]
    name = "zoo"
    layout = "binary-folders"   # other keys are the layout's options
    root = "/path/to/root"
    [[detectors]]
    name = "spectrum"           # other keys are the detector's parameters
    checkpoint = "/path/to/dir"
    [perturbations]
    grid = ["none", "jpeg(quality=[95,75,50])"]
    suite = "aigcdetect"        # optional: a named suite of perturbations/suites.toml
    [metrics]                   # optional
    bootstrap = 1000            # replicates of the stratified bootstrap; 0 turns intervals off
    ci = 0.95                   # interval level

A training config has the same ``[[datasets]]`` tables, an optional ``[run]`` and an
optional ``[params]`` table (the trainer's parameters).
"""
from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from types import MappingProxyType
from pathlib import Path
from typing import Any, Mapping

from harness.api import ConfigError

__all__ = ["DatasetConfig", "DetectorConfig", "RunConfig", "MetricsConfig", "SweepConfig", "TrainConfig", "load_sweep",
           "parse_sweep", "load_train", "read_toml",
           "load_score", "detector_config"]


def _freeze(d: Mapping[str, Any]) -> Mapping[str, Any]:
    """A read-only view, so a parsed config cannot be changed after parsing."""
    return MappingProxyType({k: _freeze(v) if isinstance(v, Mapping) else v for k, v in d.items()})


def _thaw(d: Mapping[str, Any]) -> dict[str, Any]:
    return {k: _thaw(v) if isinstance(v, Mapping) else v for k, v in d.items()}


@dataclass(frozen=True)
class DatasetConfig:
    name: str
    layout: str
    root: str
    options: Mapping[str, Any] = field(default_factory=dict)

    @property
    def option_dict(self) -> dict[str, Any]:
        return _thaw(self.options)


@dataclass(frozen=True)
class DetectorConfig:
    name: str
    params: Mapping[str, Any] = field(default_factory=dict)
    alias: str = ""  # how the detector appears in results; defaults to its name
    #: not empty: this configuration is a control row (e.g. "random backbone"), see DetectorSpec.control
    control: str = ""
    #: not empty: the detector is scored only on these entries of the sweep's grid (spec
    #: strings, as in ``[perturbations] grid``); empty: on every chain of the grid
    perturbations: tuple[str, ...] = ()

    @property
    def param_dict(self) -> dict[str, Any]:
        return _thaw(self.params)

    @property
    def display_name(self) -> str:
        return self.alias or self.name


#: what a detector does with an image beyond its largest input (``[run] oversize``)
OVERSIZE_POLICIES = ("error", "centre-crop", "tile")


@dataclass(frozen=True)
class RunConfig:
    seed: int = 0
    batch_size: int = 32
    cpu_actors: int | None = None   # placement only: never part of a cache key
    #: memory budget of one chunk's work in a pipeline actor (decoded, perturbed and prepared
    #: images, and one detector's model work); sizes chunks by pixels and sets each declared
    #: detector's largest input
    memory_mib: int = 2048
    #: what a detector does with an image beyond its largest input: "error" (an error row),
    #: "centre-crop" (the centre of the image, of the same aspect, at the largest size), "tile"
    #: (tiles of at most the largest size covering the image; the score is their mean)
    oversize: str = "error"
    #: seconds one file may take to read and decode in a sweep before it becomes an error
    #: row (``decode: took longer than ...``; ``--retry-errors`` tries it again); 0: no limit
    decode_timeout_s: float = 60.0


@dataclass(frozen=True)
class MetricsConfig:
    """Intervals of the metrics: ``bootstrap`` replicates (0: none) at level ``ci``, seeded
    by the run's seed."""

    bootstrap: int = 1000
    ci: float = 0.95


@dataclass(frozen=True)
class SweepConfig:
    run: RunConfig
    datasets: tuple[DatasetConfig, ...]
    detectors: tuple[DetectorConfig, ...]
    grid: tuple[str, ...] = ("none",)
    suite: str = ""
    source: str = ""
    raw: Mapping[str, Any] = field(default_factory=dict, compare=False)
    metrics: MetricsConfig = MetricsConfig()


@dataclass(frozen=True)
class TrainConfig:
    run: RunConfig
    datasets: tuple[DatasetConfig, ...]
    params: Mapping[str, Any] = field(default_factory=dict)
    source: str = ""

    @property
    def param_dict(self) -> dict[str, Any]:
        return _thaw(self.params)


def read_toml(path: str | Path) -> dict[str, Any]:
    """A config file's TOML, or a :class:`ConfigError` that says what is wrong with it."""
    return _read(path)


def _read(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file {str(path)!r} does not exist")
    try:
        return tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc})") from exc


def _only(table: Mapping[str, Any], allowed: set[str], where: str) -> None:
    if not isinstance(table, Mapping):
        raise ConfigError(f"{where}: must be a table of keys ({sorted(allowed)}), not {type(table).__name__} {table!r:.40}")
    extra = set(table) - allowed
    if extra:
        raise ConfigError(f"{where}: unknown keys {sorted(extra)} (allowed: {sorted(allowed)})")


def _run(raw: Mapping[str, Any], where: str) -> RunConfig:
    table = raw.get("run", {})
    _only(table, {"seed", "batch_size", "cpu_actors", "memory_mib", "oversize", "decode_timeout_s"}, f"{where} [run]")
    try:
        run = RunConfig(seed=int(table.get("seed", 0)), batch_size=int(table.get("batch_size", 32)),
                        cpu_actors=int(table["cpu_actors"]) if "cpu_actors" in table else None,
                        memory_mib=int(table.get("memory_mib", 2048)), oversize=str(table.get("oversize", "error")),
                        decode_timeout_s=float(table.get("decode_timeout_s", 60.0)))
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{where} [run]: {exc}") from exc
    if run.batch_size < 1 or (run.cpu_actors is not None and run.cpu_actors < 1):
        raise ConfigError(f"{where} [run]: batch_size and cpu_actors must be at least 1")
    if run.memory_mib < 64:
        raise ConfigError(f"{where} [run]: memory_mib must be at least 64, not {run.memory_mib}")
    if not 0 <= run.decode_timeout_s < float("inf"):
        raise ConfigError(f"{where} [run]: decode_timeout_s must be 0 (no limit) or a number of seconds, "
                          f"not {run.decode_timeout_s}")
    if run.oversize not in OVERSIZE_POLICIES:
        raise ConfigError(f"{where} [run]: oversize = {run.oversize!r}: use one of {list(OVERSIZE_POLICIES)}")
    return run


def _metrics(raw: Mapping[str, Any], where: str) -> MetricsConfig:
    table = raw.get("metrics", {})
    _only(table, {"bootstrap", "ci"}, f"{where} [metrics]")
    try:
        out = MetricsConfig(bootstrap=int(table.get("bootstrap", 1000)), ci=float(table.get("ci", 0.95)))
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{where} [metrics]: {exc}") from exc
    if out.bootstrap < 0 or not 0 < out.ci < 1:
        raise ConfigError(f"{where} [metrics]: bootstrap must be >= 0 and ci between 0 and 1, got {out}")
    return out


def _resolve(root: str, base: Path) -> str:
    p = Path(root).expanduser()
    return str(p if p.is_absolute() else (base / p).resolve())


def _datasets(raw: Mapping[str, Any], where: str, base: Path) -> tuple[DatasetConfig, ...]:
    tables = raw.get("datasets")
    if not tables or not isinstance(tables, list):
        raise ConfigError(f"{where}: needs at least one [[datasets]] table with name, layout and root")
    out = []
    for i, t in enumerate(tables):
        if not isinstance(t, Mapping):
            raise ConfigError(f"{where}: [[datasets]] #{i + 1} must be a table, not {t!r:.40}")
        missing = {"name", "layout", "root"} - set(t)
        if missing:
            raise ConfigError(f"{where}: [[datasets]] #{i + 1} lacks {sorted(missing)}")
        opts = {k: v for k, v in t.items() if k not in ("name", "layout", "root")}
        out.append(DatasetConfig(str(t["name"]), str(t["layout"]), _resolve(str(t["root"]), base), _freeze(opts)))
    names = [d.name for d in out]
    if len(set(names)) != len(names):
        raise ConfigError(f"{where}: dataset names must be unique, got {names}")
    return tuple(out)


def _path_params(params: dict[str, Any], base: Path, declared: Mapping[str, tuple[str, ...]]) -> dict[str, Any]:
    """Detector and trainer parameters that name a file or folder, read from the config's folder.

    The rule is the same for every plugin: a string value that names an existing file or
    folder relative to the config file becomes its absolute path (and is then hashed by
    content into the cache key, :func:`harness.engine.plan.weights_sha256`). A parameter the
    plugin declares as a path (``path_params`` of its spec) is resolved even when it does not
    exist yet, unless its value is one of the documented special values (``backbone =
    "random"``); planning then refuses a missing one. Any other value is kept as written.
    """
    out = {}
    for k, v in params.items():
        if isinstance(v, str) and v:
            candidate = Path(_resolve(v, base))
            if candidate.exists() or (k in declared and v not in declared[k]):
                v = str(candidate)
        out[k] = v
    return out


def _declared_paths(registry: str, name: str) -> Mapping[str, tuple[str, ...]]:
    """The path parameters a registered plugin declares (none for an unknown name: planning
    reports that one, with the closest name)."""
    from harness import plugins

    specs = getattr(plugins, registry)()
    return specs[name].path_params if name in specs else {}


def load_sweep(path: str | Path) -> SweepConfig:
    path = Path(path)
    return parse_sweep(_read(path), path)


def parse_sweep(raw: Mapping[str, Any], path: str | Path, datasets: bool = True) -> SweepConfig:
    """A sweep config from its parsed TOML; ``path`` names it in errors and resolves its
    relative paths (a protocol config is a sweep config plus its own keys). ``datasets=False``
    parses one without datasets (``exifbench score --config``)."""
    path = Path(path)
    where = str(path)
    _only(raw, {"run", "datasets", "detectors", "perturbations", "metrics"}, where)
    base = path.resolve().parent
    dets = raw.get("detectors")
    if not dets or not isinstance(dets, list):
        raise ConfigError(f"{where}: needs at least one [[detectors]] table with a name")
    detectors = []
    for i, t in enumerate(dets):
        if not isinstance(t, Mapping):
            raise ConfigError(f"{where}: [[detectors]] #{i + 1} must be a table, not {t!r:.40}")
        if "name" not in t:
            raise ConfigError(f"{where}: [[detectors]] #{i + 1} lacks a name")
        if "label" in t:
            raise ConfigError(f"{where}: [[detectors]] #{i + 1}: `label` is now `alias` (a detector's name in the "
                              "results; `label` means real/generated everywhere else)")
        params = _path_params({k: v for k, v in t.items() if k not in ("name", "alias", "control", "perturbations")},
                              base, _declared_paths("detectors", str(t["name"])))
        only = t.get("perturbations", [])
        if isinstance(only, str) or not isinstance(only, list) or not all(isinstance(g, str) for g in only):
            raise ConfigError(f"{where}: [[detectors]] #{i + 1}: perturbations must be a list of spec strings "
                              f"(entries of [perturbations] grid), not {only!r:.60}")
        detectors.append(DetectorConfig(str(t["name"]), _freeze(params), str(t.get("alias", "")),
                                        str(t.get("control", "")), tuple(only)))
    names = [d.display_name for d in detectors]
    if len(set(names)) != len(names):
        raise ConfigError(f"{where}: two [[detectors]] share the name {names}; give each a distinct `alias`")
    pert = raw.get("perturbations", {})
    _only(pert, {"grid", "suite"}, f"{where} [perturbations]")
    grid = pert.get("grid", ["none"] if not pert.get("suite") else [])
    if isinstance(grid, str) or not all(isinstance(g, str) for g in grid):
        raise ConfigError(f"{where} [perturbations]: grid must be a list of spec strings")
    return SweepConfig(_run(raw, where), _datasets(raw, where, base) if datasets else (), tuple(detectors),
                       tuple(grid), str(pert.get("suite", "")), str(path), raw, _metrics(raw, where))


def load_train(path: str | Path, trainer: str | None = None) -> TrainConfig:
    """A training config; ``trainer`` (the registered name it is for) says which of its
    parameters are paths even before they exist."""
    path = Path(path)
    raw = _read(path)
    where = str(path)
    _only(raw, {"run", "datasets", "params"}, where)
    base = path.resolve().parent
    if not isinstance(raw.get("params", {}), Mapping):
        raise ConfigError(f"{where} [params]: must be a table of the trainer's parameters, not {raw['params']!r:.40}")
    params = _path_params(dict(raw.get("params", {})), base, _declared_paths("trainers", trainer) if trainer else {})
    return TrainConfig(_run(raw, where), _datasets(raw, where, base), _freeze(params), str(path))


def load_score(path: str | Path) -> SweepConfig:
    """``exifbench score --config FILE``: the ``[run]``, ``[[detectors]]`` and
    ``[perturbations]`` tables of a sweep config; the images come from the command line."""
    path = Path(path)
    raw = _read(path)
    _only(raw, {"run", "detectors", "perturbations"}, f"{path} (a score config has no datasets or metrics)")
    return parse_sweep(raw, path, datasets=False)


def detector_config(name: str, params: Mapping[str, Any], base: Path, alias: str = "") -> DetectorConfig:
    """A detector's configuration from raw parameters (the command line's), whose relative
    paths are read from ``base`` by the rule of ``[[detectors]]`` tables (:func:`_path_params`)."""
    return DetectorConfig(name, _freeze(_path_params(dict(params), base, _declared_paths("detectors", name))), alias)
