"""The tables of a leaderboard, built from a run's outputs.

Per dataset: the main table (detectors ranked in groups by the mean of ``rank_by`` over
generators at the reference perturbation; means over all, unseen and seen generators; the
ranking metric per generator, seen ones marked ``†``), the robustness table (the mean over
generators at every perturbation), and for data of one class only, the false-positive rate
on reals or the detection rate on fakes. For the HTML page, every metrics row in one table.
"""
from __future__ import annotations

import math

import pandas as pd

from harness.leaderboard.cells import Cell, metric_cell
from harness.leaderboard.outputs import RunOutputs
from harness.leaderboard.ranking import rank_groups
from harness.leaderboard.spec import LeaderboardSpec
from harness.leaderboard.table import Label, Table
from harness.metrics import HIGHER_IS_BETTER, MIN_REALS

__all__ = ["dataset_tables", "all_results_table", "SEEN_MARK"]

SEEN_MARK = "†"
#: a control row (DetectorSpec.control, or a [[detectors]] entry's ``control``): its rank
#: label and the mark after its name
CONTROL_LABEL, CONTROL_MARK = "control", "[control]"
SEEN_NOTE = f"{SEEN_MARK} a generator this detector was trained on (run.json's trained_on)."


def dataset_tables(out: RunOutputs, spec: LeaderboardSpec, dataset: str) -> list[Table]:
    """The tables of one dataset, those its data allow, in reading order."""
    rows = out.metrics[out.metrics["dataset"] == dataset]
    labelled = rows[(rows["generator"] != "real") & (rows["n_real"] > 0)]
    tables = []
    if not labelled.empty:
        tables += [t for t in (main_table(out, spec, dataset, labelled), robustness_table(out, spec, dataset)) if t]
    if (rows["generator"] == "real").any():
        tables.append(real_only_table(out, rows[rows["generator"] == "real"]))
    fakes_only = rows[(rows["generator"] != "real") & (rows["n_real"] == 0)]
    if not fakes_only.empty:
        tables.append(fake_only_table(out, fakes_only))
    return tables


# --- the main table -----------------------------------------------------------------------

def main_table(out: RunOutputs, spec: LeaderboardSpec, dataset: str, labelled: pd.DataFrame) -> Table | None:
    ref = labelled[labelled["perturbation"] == spec.reference_perturbation]
    if ref.empty:
        return None
    means = _means(out, dataset, spec.reference_perturbation)
    controls = {d: why for d, why in out.controls.items() if d in set(ref["detector"])}
    detectors = _ranked(means.get("all", {}), spec.rank_by, sorted(set(ref["detector"]) - set(controls)))
    gens = sorted(ref["generator"].unique())
    ranks = rank_groups(detectors, spec.rank_by, out.comparisons, dataset=dataset,
                        perturbation=spec.reference_perturbation, generators=gens, alpha=spec.alpha)
    seen = _seen(ref)
    split = any(seen.values())
    table = Table("main", dataset, _main_columns(spec, gens, split), intro=_intro(spec, gens))
    ranked = zip(detectors, ranks.labels, ranks.positions, ranks.shared)
    for place, (det, label, position, shared) in enumerate(ranked, start=1):
        row = [Label(label, place), det, *_main_cells(spec, ref, means, det, gens, seen.get(det, set()), split)]
        table.add(row, {"dataset": dataset, "perturbation": spec.reference_perturbation}, rank=position,
                  rank_shared=shared, seen_generators=",".join(sorted(seen.get(det, ()))))
    for place, det in enumerate(_ranked(means.get("all", {}), spec.rank_by, sorted(controls)),
                                start=len(detectors) + 1):
        row = [Label(CONTROL_LABEL, place), f"{det} {CONTROL_MARK}",
               *_main_cells(spec, ref, means, det, gens, seen.get(det, set()), split)]
        table.add(row, {"dataset": dataset, "perturbation": spec.reference_perturbation}, rank=float("nan"),
                  rank_shared=False, seen_generators=",".join(sorted(seen.get(det, ()))), control=controls[det])
    table.notes = _main_notes(spec, ref, ranks.note, seen, means, table) + _control_notes(controls)
    return table


def _control_notes(controls: dict[str, str]) -> list[str]:
    """What each control row controls for: a control is a labelled row, never ranked."""
    if not controls:
        return []
    return [f"{CONTROL_MARK} control rows, below the ranking and not ranked (what each controls for): "
            + " · ".join(f"{d}: {why}" for d, why in sorted(controls.items()))
            + ". A detector that does no better than its control has not shown what it claims."]


def _main_cells(spec: LeaderboardSpec, ref: pd.DataFrame, means: dict, det: str, gens: list[str], seen: set[str],
                split: bool) -> list[Cell]:
    """A detector's means over all generators, over unseen and seen ones (when any is
    seen), and its ranking metric per generator."""
    counts = _counts(ref[ref["detector"] == det])
    cells = [metric_cell(means.get("all", {}).get(det, {}), c, *counts) for c in spec.columns]
    if split:
        cells += [_group_cell(means, group, det, spec.rank_by, counts) for group in ("unseen", "seen")]
    return cells + [_generator_cell(ref, det, g, spec.rank_by, seen) for g in gens]


def _main_columns(spec: LeaderboardSpec, gens: list[str], split: bool) -> list[str]:
    columns = ["rank", "detector"] + [f"mean {c}" for c in spec.columns]
    if split:
        columns += [f"unseen mean {spec.rank_by}", f"seen mean {spec.rank_by}"]
    return columns + [f"{spec.rank_by} {g}" for g in gens]


def _intro(spec: LeaderboardSpec, gens: list[str]) -> str:
    return (f"Ranked by mean {spec.rank_by} over {len(gens)} generators at perturbation "
            f"`{spec.reference_perturbation}`: {', '.join(gens)}. Accuracies use each detector's own "
            f"threshold, fixed without test data.")


def _means(out: RunOutputs, dataset: str, perturbation: str) -> dict[str, dict[str, dict]]:
    """means.csv rows of a dataset and perturbation: group -> detector -> row."""
    m = out.means
    part = m[(m["dataset"] == dataset) & (m["perturbation"] == perturbation)] if not m.empty else m
    by_group: dict[str, dict[str, dict]] = {}
    for row in part.to_dict("records"):
        by_group.setdefault(row["group"], {})[row["detector"]] = row
    return by_group


def _ranked(means: dict[str, dict], metric: str, detectors: list[str]) -> list[str]:
    """Best first by the mean of ``metric``; a detector without one last."""
    sign = 1.0 if HIGHER_IS_BETTER.get(metric, True) else -1.0

    def key(det: str) -> tuple:
        value = float(means.get(det, {}).get(metric, math.nan))
        return (math.isnan(value), -sign * value if not math.isnan(value) else 0.0, det)

    return sorted(detectors, key=key)


def _seen(rows: pd.DataFrame) -> dict[str, set[str]]:
    """Per detector, the generators it was trained on (the ``seen`` column; none without it)."""
    if "seen" not in rows.columns:
        return {}
    marked = rows[rows["seen"].astype(str).str.lower() == "true"]
    return {det: set(part["generator"]) for det, part in marked.groupby("detector")}


def _counts(rows: pd.DataFrame) -> tuple[float, float]:
    """The fewest reals and fakes of the rows a mean averages (what limits its metrics)."""
    if rows.empty:
        return math.nan, math.nan
    return float(rows["n_real"].min()), float(rows["n_fake"].min())


def _group_cell(means: dict, group: str, det: str, metric: str, counts: tuple[float, float]) -> Cell:
    row = means.get(group, {}).get(det)
    return metric_cell(row, metric, *counts) if row else Cell(math.nan, absent=True)


def _generator_cell(ref: pd.DataFrame, det: str, gen: str, metric: str, seen: set[str]) -> Cell:
    rows = ref[(ref["detector"] == det) & (ref["generator"] == gen)].to_dict("records")
    if not rows:
        return Cell(math.nan, absent=True)
    return metric_cell(rows[0], metric, rows[0]["n_real"], rows[0]["n_fake"], SEEN_MARK if gen in seen else "")


def _main_notes(spec: LeaderboardSpec, ref: pd.DataFrame, rule: str, seen: dict[str, set[str]],
                means: dict, table: Table) -> list[str]:
    notes = [rule] if rule else []
    if "ap" in (spec.rank_by, *spec.columns) and "ap_chance" in ref.columns:
        notes.append(_ap_chance(ref, spec.decimals))
    notes += _seen_notes(ref, seen, means)
    notes += _missing_notes(table)
    return notes


def _ap_chance(ref: pd.DataFrame, decimals: int) -> str:
    """AP's chance level per generator: the share of fakes (a range where failed cells
    leave detectors with different counts)."""
    parts = []
    for gen, part in ref.groupby("generator"):
        lo, hi = part["ap_chance"].min(), part["ap_chance"].max()
        level = f"{lo:.{decimals}f}" if math.isclose(lo, hi, abs_tol=10 ** -decimals / 2) else \
            f"{lo:.{decimals}f}–{hi:.{decimals}f}"
        parts.append(f"{gen} {level}")
    return "AP chance level (share of fakes) per generator: " + ", ".join(parts) + "."


def _seen_notes(ref: pd.DataFrame, seen: dict[str, set[str]], means: dict) -> list[str]:
    if "seen" not in ref.columns:
        return []
    if not any(seen.values()):
        return ["No detector was trained on any of these generators (run.json's trained_on): every mean is "
                "over unseen generators."]
    lists = []
    for det in sorted(seen):
        groups = {g: means.get(g, {}).get(det, {}).get("generators", "") for g in ("unseen", "seen")}
        lists.append(f"{det}: unseen {groups['unseen'] or 'none'}; seen {groups['seen'] or 'none'}")
    return [SEEN_NOTE, "The unseen and seen means average, per detector trained on any of them: "
            + " · ".join(lists) + " (every other detector: all generators unseen)."]


def _missing_notes(table: Table) -> list[str]:
    reasons = {v.reason for row in table.rows for v in row if isinstance(v, Cell) and v.reason}
    if not any(r.startswith("n_real=") for r in reasons):
        return []
    needs = ", ".join(f"{m} {n}" for m, n in MIN_REALS.items())
    return [f"n/a (n_real=N): too few reals for the metric (reals needed: {needs}); a mean over a "
            "generator without it is n/a too."]


# --- the robustness table -----------------------------------------------------------------

def robustness_table(out: RunOutputs, spec: LeaderboardSpec, dataset: str) -> Table | None:
    """Detector x perturbation, the mean of ``robustness_metric`` over generators, columns in
    the order of the sweep's grid."""
    m = out.means
    part = m[(m["dataset"] == dataset) & (m["group"] == "all")] if not m.empty else m
    if part.empty:
        return None
    perts = [p for p in out.order if p in set(part["perturbation"])]
    table = Table("robustness", f"Robustness: mean {spec.robustness_metric} over generators", ["detector", *perts])
    rows = out.metrics[(out.metrics["dataset"] == dataset) & (out.metrics["generator"] != "real")]
    by_key = {(r["detector"], r["perturbation"]): r for r in part.to_dict("records")}
    for det in sorted(part["detector"].unique()):
        cells = []
        for p in perts:
            counts = _counts(rows[(rows["detector"] == det) & (rows["perturbation"] == p)])
            row = by_key.get((det, p))
            cells.append(metric_cell(row, spec.robustness_metric, *counts) if row else Cell(math.nan, absent=True))
        table.add([det, *cells], {"dataset": dataset})
    table.notes = _missing_notes(table)
    return table


# --- data of one class --------------------------------------------------------------------

def _by_grid(rows: pd.DataFrame, out: RunOutputs) -> pd.DataFrame:
    rank = {p: i for i, p in enumerate(out.order)}
    return rows.assign(_p=rows["perturbation"].map(lambda p: rank.get(p, len(rank)))).sort_values(
        ["_p", "generator", "detector"])


def real_only_table(out: RunOutputs, rows: pd.DataFrame) -> Table:
    """Reals without generated images: the false-positive rate, 1 - real_acc, with the
    interval [1 - real_acc_hi, 1 - real_acc_lo]."""
    table = Table("real-only", "Real images only: false-positive rate",
                  ["detector", "perturbation", "n_real", "n_failed", "false-positive rate"],
                  intro="Real images without generated ones: the share flagged as generated at each detector's own "
                        "threshold (false-positive rate = 1 − real_acc; lower is better).")
    for r in _by_grid(rows, out).to_dict("records"):
        acc = metric_cell(r, "real_acc", r["n_real"], 0)
        fpr = Cell(1 - acc.value, 1 - acc.hi, 1 - acc.lo, reason=acc.reason)
        table.add([r["detector"], r["perturbation"], int(r["n_real"]), int(r["n_failed"]), fpr],
                  {"dataset": r["dataset"], "generator": "real", "perturbation": r["perturbation"]})
    return table


def fake_only_table(out: RunOutputs, rows: pd.DataFrame) -> Table:
    """Generated images without reals: the detection rate (fake_acc)."""
    seen = _seen(rows)
    table = Table("fake-only", "Generated images only: detection rate",
                  ["detector", "generator", "perturbation", "n_fake", "n_failed", "detection rate"],
                  intro="Generated images without reals: the share detected at each detector's own threshold "
                        "(fake_acc; higher is better). AP, AUC and the other metrics need reals.")
    for r in _by_grid(rows, out).to_dict("records"):
        mark = SEEN_MARK if r["generator"] in seen.get(r["detector"], ()) else ""
        table.add([r["detector"], r["generator"], r["perturbation"], int(r["n_fake"]), int(r["n_failed"]),
                   metric_cell(r, "fake_acc", 0, r["n_fake"], mark)],
                  {"dataset": r["dataset"], "generator": r["generator"], "perturbation": r["perturbation"]})
    if seen:
        table.notes.append(SEEN_NOTE)
    return table


# --- every row ------------------------------------------------------------------------------

def all_results_table(out: RunOutputs, spec: LeaderboardSpec) -> Table:
    """Every metrics row with the spec's columns (the HTML page's filterable table)."""
    chance = ["ap_chance"] if "ap_chance" in out.metrics.columns else []
    table = Table("all", "All results", ["detector", "dataset", "generator", "perturbation", "n_real", "n_fake",
                                         "n_failed", *chance, *spec.columns])
    seen = _seen(out.metrics)
    for r in _by_grid(out.metrics, out).sort_values("dataset", kind="stable").to_dict("records"):
        mark = SEEN_MARK if r["generator"] in seen.get(r["detector"], ()) else ""
        plain = [r["detector"], r["dataset"], r["generator"] + mark, r["perturbation"], int(r["n_real"]),
                 int(r["n_fake"]), int(r.get("n_failed", 0))]
        cells = [metric_cell(r, c, r["n_real"], r["n_fake"]) for c in [*chance, *spec.columns]]
        table.add(plain + cells, {"dataset": r["dataset"], "generator": r["generator"],
                                  "perturbation": r["perturbation"]})
    table.notes = ([SEEN_NOTE] if seen else []) + _missing_notes(table)
    return table
