"""Where a leaderboard's numbers come from, read from ``run.json``: the run, the code
version, a hash of the config, the seeds, the bootstrap settings and package versions."""
from __future__ import annotations

from typing import Any

from harness.leaderboard.outputs import RunOutputs, config_sha256

__all__ = ["provenance_items", "interval_note"]


def provenance_items(record: dict[str, Any]) -> list[tuple[str, str]]:
    """(label, value) pairs, those the record has, in reading order (versions apart)."""
    boot = record.get("bootstrap") or {}
    items = [("run", record.get("run_id")), ("code version (git commit)", record.get("git_commit")),
             ("config sha256", config_sha256(record)), ("config file", record.get("config_path")),
             ("created", record.get("created")), ("seed", record.get("seed")),
             ("bootstrap", _bootstrap(boot) if boot else None),
             ("merged from", ", ".join(record["merged_from"]) if record.get("merged_from") else None)]
    return [(label, str(value)) for label, value in items if value not in (None, "")]


def _bootstrap(boot: dict[str, Any]) -> str:
    if not boot.get("replicates"):
        return "none (no intervals)"
    text = f"{boot['replicates']} replicates, {float(boot.get('ci', 0.95)):.0%} intervals, seed {boot.get('seed')}"
    return f"{text}; {boot['method']}" if boot.get("method") else text


def interval_note(out: RunOutputs) -> str:
    """What ``[lo, hi]`` means in this run, or that it has no intervals."""
    if not out.has_intervals:
        return "No intervals: the run was computed without bootstrap replicates (metrics.bootstrap = 0)."
    boot = out.record.get("bootstrap") or {}
    level = f"{float(boot['ci']):.0%} " if boot.get("ci") else ""
    count = f" ({boot['replicates']} replicates, seed {boot.get('seed')})" if boot.get("replicates") else ""
    return (f"[lo, hi]: the {level}percentile interval of a stratified bootstrap{count}: reals and fakes resampled "
            "separately, the same weights for every detector.")
