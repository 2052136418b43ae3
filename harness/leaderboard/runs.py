"""Several run folders at once: merged into one run (``exifbench leaderboard RUN...``) or
compared side by side (``exifbench compare RUN...``).

A run folder is what ``exifbench sweep`` writes: ``scores.parquet`` (one row per cell),
``metrics.csv`` and ``run.json``. Merging concatenates the score rows, so a detector added
later in its own run joins the others on the same images; the metrics, intervals and
comparisons of the merged folder are computed as a sweep computes them. Comparing puts each
run's metrics side by side and, for every detector of one run against the same detector
name (or every detector) of another, gives the difference with its interval: paired when
the runs scored the same images (the images both have, resampled with the same weights),
unpaired otherwise (independent bootstraps of each run).
"""
from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from harness.api import ConfigError
from harness.files import atomic_write_text
from harness.metrics import compare_detectors, evaluate, write_tables
from harness.stats import Bootstrap, bootstrap_p_value, holm, percentile_interval

__all__ = ["read_run", "merge_runs", "compare_runs"]


def read_run(run_dir: str | Path) -> tuple[pd.DataFrame, dict]:
    """A run folder's score rows and its ``run.json`` (``{}`` when absent)."""
    run_dir = Path(run_dir)
    scores = run_dir / "scores.parquet"
    if not scores.is_file():
        raise ConfigError(f"{str(run_dir)!r} has no scores.parquet; is it the --out folder of a sweep?")
    record = json.loads((run_dir / "run.json").read_text()) if (run_dir / "run.json").is_file() else {}
    return pd.read_parquet(scores), record


def _names(run_dirs: Sequence[Path]) -> list[str]:
    """Short, distinct names of runs: their folder names, numbered where two are equal."""
    names = [Path(d).name for d in run_dirs]
    return [n if names.count(n) == 1 else f"{n}#{i + 1}" for i, n in enumerate(names)]


def merge_runs(run_dirs: Sequence[str | Path], out: str | Path, bootstrap: Bootstrap) -> Path:
    """One run folder ``out`` holding the score rows of every run: a detector present in two
    runs keeps the rows of the later one (its newer scores of the same cells)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    frames, records = [], []
    for d in run_dirs:
        frame, record = read_run(d)
        frames.append(frame)
        records.append(record)
    merged = pd.concat(frames, ignore_index=True)
    merged = merged.drop_duplicates(["detector", "dataset", "sample_id", "perturbation"], keep="last")
    merged.to_parquet(out / "scores.parquet", index=False)
    seen = {d["display_name"]: d.get("trained_on", {}).get("generators", [])
            for r in records for d in r.get("detectors", [])}
    probabilities = {d["display_name"] for r in records for d in r.get("detectors", []) if d.get("score_is_probability")}
    write_tables(merged, out, bootstrap, seen, probabilities)
    perturbations = list({p["spec"]: p for r in records for p in r.get("perturbations", [])}.values())
    record = {"run_id": "merged:" + ",".join(r.get("run_id", "?") for r in records),
              "merged_from": [str(d) for d in run_dirs],
              "git_commit": ",".join(sorted({str(r.get("git_commit")) for r in records})),
              "config": {"merged": [r.get("config", {}) for r in records]},
              "versions": records[-1].get("versions", {}), "seed": bootstrap.seed, "perturbations": perturbations,
              "detectors": [d for r in records for d in r.get("detectors", [])],
              "bootstrap": {"replicates": bootstrap.n_boot, "ci": bootstrap.ci, "seed": bootstrap.seed,
                            "method": "stratified percentile bootstrap (reals by subset, fakes by generator); "
                                      "comparisons: paired, Holm-adjusted"}}
    atomic_write_text(out / "run.json", json.dumps(record, indent=1, default=str))
    return out


def compare_runs(run_dirs: Sequence[str | Path], bootstrap: Bootstrap) -> pd.DataFrame:
    """AUC and AP of every (detector, dataset, generator, perturbation) of each run side by
    side, and the difference of every later run from the first, with its interval."""
    if len(run_dirs) < 2:
        raise ConfigError("compare needs at least two run folders")
    names = _names([Path(d) for d in run_dirs])
    frames = [read_run(d)[0] for d in run_dirs]
    rows = []
    base_name, base = names[0], frames[0]
    for name, frame in zip(names[1:], frames[1:]):
        rows += _compare_two(base_name, base, name, frame, bootstrap)
    table = pd.DataFrame(rows)
    if not table.empty:
        table["p_auc_holm"], table["p_ap_holm"] = holm(table["p_auc"]), holm(table["p_ap"])
    return table


def _compare_two(name_a: str, a: pd.DataFrame, name_b: str, b: pd.DataFrame, bootstrap: Bootstrap) -> list[dict]:
    """Rows for the detectors both runs have (by name), paired where they share images."""
    shared = set(a["sample_id"]) & set(b["sample_id"])
    if shared:
        both = pd.concat([a.assign(detector=a["detector"] + f"@{name_a}"),
                          b.assign(detector=b["detector"] + f"@{name_b}")], ignore_index=True)
        table = compare_detectors(both, bootstrap)
        pairs = table[table["detector_a"].str.rsplit("@", n=1).str[0] == table["detector_b"].str.rsplit("@", n=1).str[0]]
        return [_oriented(row, row["detector_a"].endswith(f"@{name_a}"), name_a, name_b)
                for row in pairs.to_dict("records")]
    return _unpaired(name_a, a, name_b, b, bootstrap)


def _oriented(row: dict, first_is_a: bool, name_a: str, name_b: str) -> dict:
    """A comparison row (detector_a - detector_b, names sorted) as run b - run a."""
    out = {"detector": row["detector_a"].rsplit("@", 1)[0], "dataset": row["dataset"], "generator": row["generator"],
           "perturbation": row["perturbation"], "run_a": name_a, "run_b": name_b, "paired": True,
           "n_real": row["n_real"], "n_fake": row["n_fake"]}
    for m in ("auc", "ap"):
        lo, hi, delta = row[f"delta_{m}_lo"], row[f"delta_{m}_hi"], row[f"delta_{m}"]
        if first_is_a:
            out[f"{m}_a"], out[f"{m}_b"] = row[f"{m}_a"], row[f"{m}_b"]
            out[f"delta_{m}"], out[f"delta_{m}_lo"], out[f"delta_{m}_hi"] = -delta, -hi, -lo
        else:
            out[f"{m}_a"], out[f"{m}_b"] = row[f"{m}_b"], row[f"{m}_a"]
            out[f"delta_{m}"], out[f"delta_{m}_lo"], out[f"delta_{m}_hi"] = delta, lo, hi
        out[f"p_{m}"] = row[f"p_{m}"]
    return out


def _unpaired(name_a: str, a: pd.DataFrame, name_b: str, b: pd.DataFrame, bootstrap: Bootstrap) -> list[dict]:
    """No image in common: independent bootstraps of the two runs."""
    ev_a = evaluate(a, bootstrap)
    ev_b = evaluate(b, replace(bootstrap, seed=bootstrap.seed + 1))  # independent of a's weights
    ma = ev_a.metrics.set_index(["detector", "dataset", "generator", "perturbation"])
    mb = ev_b.metrics.set_index(["detector", "dataset", "generator", "perturbation"])
    out = []
    for key in sorted(set(ma.index) & set(mb.index)):
        ra, rb = ev_a.replicates.get(key), ev_b.replicates.get(key)
        row = dict(zip(["detector", "dataset", "generator", "perturbation"], key))
        row.update(run_a=name_a, run_b=name_b, paired=False, n_real=int(mb.loc[key, "n_real"]),
                   n_fake=int(mb.loc[key, "n_fake"]))
        for m in ("auc", "ap"):
            row[f"{m}_a"], row[f"{m}_b"] = float(ma.loc[key, m]), float(mb.loc[key, m])
            row[f"delta_{m}"] = row[f"{m}_b"] - row[f"{m}_a"]
            deltas = rb[m] - ra[m] if ra is not None and rb is not None else np.array([])
            row[f"delta_{m}_lo"], row[f"delta_{m}_hi"] = percentile_interval(deltas, bootstrap.ci)
            row[f"p_{m}"] = bootstrap_p_value(deltas) if len(deltas) else float("nan")
        out.append(row)
    return out
