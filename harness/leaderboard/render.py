"""Render a run folder into a leaderboard.

Writes ``leaderboard.md`` (tabulate), ``leaderboard.csv`` (every table's rows as numbers,
intervals in ``_lo``/``_hi`` columns), a self-contained interactive ``leaderboard.html``
(:mod:`~harness.leaderboard.page`) and the plots (:mod:`~harness.leaderboard.plots`).

What the tables say (:mod:`~harness.leaderboard.sections`): detectors ranked in groups
(:mod:`~harness.leaderboard.ranking`), every metric with its interval or the reason it is
missing (:mod:`~harness.leaderboard.cells`), AP's chance level, means over unseen and seen
generators apart, the false-positive rate of real-only data; every mean over generators is
printed with the generators it averages. A spec (:mod:`~harness.leaderboard.spec`) says
which metric ranks, which columns show and whether intervals are printed.
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from harness.leaderboard.cells import Style
from harness.leaderboard.outputs import RunOutputs, read_outputs
from harness.leaderboard.page import html_page
from harness.leaderboard.plots import draw_plots
from harness.leaderboard.provenance import interval_note, provenance_items
from harness.leaderboard.sections import all_results_table, dataset_tables
from harness.leaderboard.spec import DEFAULT_SPEC_PATH, LeaderboardSpec, load_spec
from harness.leaderboard.table import Table

__all__ = ["LeaderboardSpec", "load_spec", "render_leaderboard", "DEFAULT_SPEC_PATH"]


def render_leaderboard(run_dir: str | Path, spec: LeaderboardSpec | str | Path | None = None) -> Path:
    """Write the leaderboard files of ``run_dir`` into it; returns ``leaderboard.md``'s path."""
    run_dir = Path(run_dir)
    spec = spec if isinstance(spec, LeaderboardSpec) else load_spec(spec)
    out = read_outputs(run_dir)
    style = Style(spec.decimals, spec.intervals)
    plots = draw_plots(out, spec, run_dir)
    sections = {dataset: dataset_tables(out, spec, dataset) for dataset in out.datasets()}
    (run_dir / "leaderboard.md").write_text(_markdown(spec, out, sections, plots, style))
    _csv(out, sections).to_csv(run_dir / "leaderboard.csv", index=False)
    page = html_page(spec.title, out, sections, all_results_table(out, spec), plots, style)
    (run_dir / "leaderboard.html").write_text(page)
    return run_dir / "leaderboard.md"


def _markdown(spec: LeaderboardSpec, out: RunOutputs, sections: dict[str, list[Table]], plots: list[Path],
              style: Style) -> str:
    lines = [f"# {spec.title}", ""]
    items = provenance_items(out.record)
    if items:
        lines += [f"- {k}: `{v}`" for k, v in items] + [""]
    lines += [interval_note(out), ""]
    for dataset, tables in sections.items():
        lines += [f"## {dataset}", ""]
        for table in tables:
            lines += ([] if table.kind == "main" else [f"### {table.title}", ""]) + [table.markdown(style), ""]
    lines += ["## Plots", ""] + [f"![{p.stem}]({p.name})" for p in plots] + [""]
    return "\n".join(lines)


def _csv(out: RunOutputs, sections: dict[str, list[Table]]) -> pd.DataFrame:
    """The main, real-only and fake-only tables' rows (column ``table`` says which)."""
    frames = [t.frame() for kind in _CSV_TABLES for tables in sections.values() for t in tables
              if t.kind == kind and t.rows]
    table = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=["table", "dataset"])
    if not out.has_intervals:
        table = table.drop(columns=[c for c in table.columns if c.endswith(("_lo", "_hi"))])
    counts = [c for c in ("rank", "n_real", "n_fake", "n_failed") if c in table.columns]
    return table.astype({c: "Int64" for c in counts})


_CSV_TABLES = ("main", "real-only", "fake-only")
