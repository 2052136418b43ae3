"""A run folder's tables, read once for rendering.

``metrics.csv`` is required; ``means.csv`` (means over generators: all, unseen, seen, with
intervals) and ``comparisons.csv`` (paired tests) are used when present: a folder written
before they existed gets means computed from ``metrics.csv`` (group ``all``, no interval)
and plain ranks.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from harness.api import ConfigError
from harness.metrics import METRIC_COLUMNS, mean_over_generators

__all__ = ["RunOutputs", "read_outputs", "config_sha256"]


@dataclass(frozen=True)
class RunOutputs:
    """``metrics``: one row per detector x dataset x generator x perturbation; ``means``:
    one per detector x dataset x perturbation x group; ``comparisons``: None when the run
    has none; ``record``: ``run.json`` (``{}`` when absent)."""

    metrics: pd.DataFrame
    means: pd.DataFrame
    comparisons: pd.DataFrame | None = None
    record: dict[str, Any] = field(default_factory=dict)
    reliability: pd.DataFrame | None = None  # reliability.csv: the probability detectors' calibration bins

    @property
    def has_intervals(self) -> bool:
        return "ap_lo" in self.metrics.columns

    @property
    def order(self) -> list[str]:
        """The perturbations in the order of the sweep's grid."""
        from_record = [p["spec"] for p in self.record.get("perturbations", [])]
        return from_record or list(dict.fromkeys(self.metrics["perturbation"]))

    @property
    def controls(self) -> dict[str, str]:
        """Control rows (run.json's ``control`` of each detector): display name -> what it controls for."""
        return {d["display_name"]: d["control"] for d in self.record.get("detectors", []) if d.get("control")}

    def datasets(self) -> list[str]:
        return sorted(self.metrics["dataset"].unique())


def read_outputs(run_dir: Path) -> RunOutputs:
    metrics_path = run_dir / "metrics.csv"
    if not metrics_path.is_file():
        raise ConfigError(f"{str(run_dir)!r} has no metrics.csv; is it the --out folder of a sweep?")
    metrics = pd.read_csv(metrics_path, keep_default_na=False, na_values=[""])
    record = json.loads((run_dir / "run.json").read_text()) if (run_dir / "run.json").is_file() else {}
    means = _read_means(run_dir / "means.csv", metrics)
    comparisons = pd.read_csv(run_dir / "comparisons.csv", keep_default_na=False, na_values=[""]) \
        if (run_dir / "comparisons.csv").is_file() else None
    reliability = pd.read_csv(run_dir / "reliability.csv") if (run_dir / "reliability.csv").is_file() else None
    return RunOutputs(metrics, means, comparisons, record, reliability)


def _read_means(path: Path, metrics: pd.DataFrame) -> pd.DataFrame:
    if path.is_file() and path.stat().st_size > 1:
        return pd.read_csv(path, keep_default_na=False, na_values=[""])
    generated = metrics[metrics["generator"] != "real"]
    if generated.empty:
        return pd.DataFrame(columns=["detector", "dataset", "perturbation", "group", "generators", *METRIC_COLUMNS])
    columns = [c for c in METRIC_COLUMNS if c in generated.columns]
    return mean_over_generators(generated, columns).assign(group="all")


def config_sha256(record: dict[str, Any]) -> str | None:
    """The sha256 of run.json's ``config`` as canonical JSON (sorted keys), or None without one."""
    if "config" not in record:
        return None
    text = json.dumps(record["config"], sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()
