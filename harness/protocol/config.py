"""A protocol config: a sweep config whose datasets say whether they train or test, plus a
``[protocol]`` table::

    [protocol]
    kind = "train-on-each"        # or "leave-one-out"
    generators = ["gana", "ganb"] # optional: the training generators (default: every one found)
    metrics = ["auc", "ap"]       # optional: the matrices' metrics (default: auc, ap, bal_acc)
    num_gpus = 1                  # optional: GPUs per training job (default: 1 where the cluster has any)
    [[datasets]]
    name = "train"
    role = "train"                # "train" or "test"; the other keys as in a sweep
    layout = "binary-folders"
    root = "data/train"
    [[datasets]]
    name = "test"
    role = "test"
    layout = "binary-folders"
    root = "data/test"
    [[detectors]]                 # trainable detectors; their keys are the training parameters
    name = "spectrum"
    n_bins = 64

``[run]``, ``[perturbations]`` (applied to the test images) and ``[metrics]`` (bootstrap
replicates and interval level) are a sweep's.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from harness.api import ConfigError
from harness.config import SweepConfig, parse_sweep, read_toml
from harness.stats import BOOTSTRAP_METRICS

__all__ = ["KINDS", "ROLES", "DEFAULT_METRICS", "ProtocolConfig", "load_protocol"]

KINDS = ("train-on-each", "leave-one-out")
ROLES = ("train", "test")
#: the metrics of the matrices when ``[protocol] metrics`` is not given
DEFAULT_METRICS = ("auc", "ap", "bal_acc")
#: the keys of the [protocol] table
_PROTOCOL_KEYS = {"kind", "generators", "metrics", "num_gpus"}


@dataclass(frozen=True)
class ProtocolConfig:
    """``sweep`` holds every dataset and detector as parsed for a sweep; ``train`` and
    ``test`` name the datasets of each role."""

    kind: str
    sweep: SweepConfig
    train: tuple[str, ...]
    test: tuple[str, ...]
    generators: tuple[str, ...] = ()
    metrics: tuple[str, ...] = DEFAULT_METRICS
    num_gpus: float | None = None
    source: str = ""
    raw: Mapping[str, Any] = field(default_factory=dict, compare=False)


def load_protocol(path: str | Path) -> ProtocolConfig:
    path = Path(path)
    raw = read_toml(path)
    where = str(path)
    table = raw.get("protocol")
    if not isinstance(table, dict):
        raise ConfigError(f"{where}: needs a [protocol] table with kind = one of {list(KINDS)}")
    extra = set(table) - _PROTOCOL_KEYS
    if extra:
        raise ConfigError(f"{where} [protocol]: unknown keys {sorted(extra)} (allowed: {sorted(_PROTOCOL_KEYS)})")
    kind = table.get("kind")
    if kind not in KINDS:
        raise ConfigError(f"{where} [protocol]: kind = {kind!r}; use one of {list(KINDS)}")
    roles, tables = _roles(raw.get("datasets"), where)
    sweep = parse_sweep({**{k: v for k, v in raw.items() if k != "protocol"}, "datasets": tables}, path)
    _check_detectors(sweep, where)
    return ProtocolConfig(kind, sweep, tuple(n for n, r in roles.items() if r == "train"),
                          tuple(n for n, r in roles.items() if r == "test"),
                          _names(table, "generators", where), _metrics(table, where), _num_gpus(table, where),
                          str(path), raw)


def _roles(datasets: Any, where: str) -> tuple[dict[str, str], list[dict[str, Any]]]:
    """Each dataset's role, and the dataset tables without it (a sweep's tables)."""
    if not datasets or not isinstance(datasets, list):
        raise ConfigError(f"{where}: needs [[datasets]] tables with role = \"train\" and role = \"test\"")
    roles, tables = {}, []
    for i, t in enumerate(datasets):
        role = t.get("role")
        if role not in ROLES:
            raise ConfigError(f"{where}: [[datasets]] #{i + 1} ({t.get('name', '?')}): role = {role!r}; give each "
                              f"dataset role = \"train\" or \"test\" (one dataset is never both: its images would "
                              "be tested after being trained on)")
        roles[str(t.get("name", i))] = role
        tables.append({k: v for k, v in t.items() if k != "role"})
    for role in ROLES:
        if role not in roles.values():
            raise ConfigError(f"{where}: no [[datasets]] table has role = \"{role}\"")
    return roles, tables


def _check_detectors(sweep: SweepConfig, where: str) -> None:
    from harness.plugins import detectors

    registry = detectors()
    for d in sweep.detectors:
        if not registry[d.name].trainable:
            trainable = sorted(n for n, s in registry.items() if s.trainable)
            raise ConfigError(f"{where}: {d.name} is not trainable, and a protocol trains every detector it "
                              f"names (trainable: {trainable}); score a fixed detector with `exifbench sweep`")
        if "checkpoint" in d.params:
            raise ConfigError(f"{where}: [[detectors]] {d.display_name} has a checkpoint; a protocol trains its "
                              "own checkpoints: remove the key")


def _names(table: Mapping[str, Any], key: str, where: str) -> tuple[str, ...]:
    value = table.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"{where} [protocol]: {key} must be a list of names")
    if len(set(value)) != len(value):
        raise ConfigError(f"{where} [protocol]: {key} names one more than once: {value}")
    return tuple(value)


def _metrics(table: Mapping[str, Any], where: str) -> tuple[str, ...]:
    names = _names(table, "metrics", where) or DEFAULT_METRICS
    unknown = [m for m in names if m not in BOOTSTRAP_METRICS]
    if unknown:
        raise ConfigError(f"{where} [protocol]: metrics {unknown} unknown; use some of {list(BOOTSTRAP_METRICS)} "
                          "(the metrics with intervals)")
    return names


def _num_gpus(table: Mapping[str, Any], where: str) -> float | None:
    if "num_gpus" not in table:
        return None
    try:
        value = float(table["num_gpus"])
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{where} [protocol]: num_gpus must be a number") from exc
    if value < 0:
        raise ConfigError(f"{where} [protocol]: num_gpus must be >= 0")
    return value
