"""The leaderboard spec: which metric ranks, which columns show, how cells are written.

A TOML file with one ``[leaderboard]`` table (``leaderboards/default.toml``, packaged:
:mod:`harness.resources`); ``exifbench leaderboard RUN_DIR --spec FILE`` takes another one.
"""
from __future__ import annotations

import tomllib
from dataclasses import dataclass, fields
from importlib.resources.abc import Traversable
from pathlib import Path

from harness.api import ConfigError
from harness.metrics import METRIC_COLUMNS
from harness.resources import leaderboard_files

__all__ = ["LeaderboardSpec", "load_spec", "DEFAULT_SPEC_PATH"]

DEFAULT_SPEC_PATH: Traversable = leaderboard_files() / "default.toml"


@dataclass(frozen=True)
class LeaderboardSpec:
    """``intervals``: print each metric's bootstrap interval beside it (when the run has
    them); ``decimals``: digits after the point; ``alpha``: the level of the tests that
    group ranks."""

    title: str = "exifbench leaderboard"
    rank_by: str = "ap"
    columns: tuple[str, ...] = ("ap", "auc", "bal_acc", "real_acc", "fake_acc", "tpr_at_5fpr", "eer", "brier", "ece")
    reference_perturbation: str = "none"
    robustness_metric: str = "ap"
    heatmap_metric: str = "ap"
    intervals: bool = True
    decimals: int = 2
    alpha: float = 0.05


def load_spec(path: str | Path | Traversable | None = None) -> LeaderboardSpec:
    path = (path if isinstance(path, Traversable) else Path(path)) if path else DEFAULT_SPEC_PATH
    if not path.is_file():
        if path == DEFAULT_SPEC_PATH:
            return LeaderboardSpec()
        raise ConfigError(f"leaderboard spec {str(path)!r} does not exist")
    raw = tomllib.loads(path.read_text()).get("leaderboard", {})
    known = {f.name for f in fields(LeaderboardSpec)}
    if set(raw) - known:
        raise ConfigError(f"{path}: unknown keys {sorted(set(raw) - known)} in [leaderboard]")
    spec = LeaderboardSpec(**{k: tuple(v) if isinstance(v, list) else v for k, v in raw.items()})
    _check(spec, path)
    return spec


def _check(spec: LeaderboardSpec, path: object) -> None:
    for m in (spec.rank_by, spec.robustness_metric, spec.heatmap_metric, *spec.columns):
        if m not in METRIC_COLUMNS:
            raise ConfigError(f"{path}: unknown metric {m!r} (known: {METRIC_COLUMNS})")
    if not isinstance(spec.intervals, bool):
        raise ConfigError(f"{path}: intervals must be true or false, not {spec.intervals!r}")
    if not isinstance(spec.decimals, int) or not 0 <= spec.decimals <= 6:
        raise ConfigError(f"{path}: decimals must be a whole number from 0 to 6, not {spec.decimals!r}")
    if not isinstance(spec.alpha, float) or not 0 < spec.alpha < 1:
        raise ConfigError(f"{path}: alpha must be a number between 0 and 1 (e.g. 0.05), not {spec.alpha!r}")
