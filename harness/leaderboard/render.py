"""Render ``RUN_DIR/metrics.csv`` into a leaderboard.

Writes ``leaderboard.md`` (tabulate), ``leaderboard.csv``, a self-contained
``leaderboard.html`` (plots inlined), ``robustness_<perturbation>.png`` (metric against strength,
a line per detector, mean over generators) and ``heatmap.png`` (detector x generator).
A spec (TOML, see ``leaderboards/default.toml``, packaged: :mod:`harness.resources`) says
which metric ranks and which columns show; every mean over generators is printed with the
generators it averages.
"""
from __future__ import annotations

import base64
import html
import json
import tomllib
from dataclasses import dataclass, fields
from importlib.resources.abc import Traversable
from pathlib import Path

import pandas as pd
from tabulate import tabulate

from harness.api import ConfigError
from harness.derived_cache import derived_files, derived_key
from harness.metrics import METRIC_COLUMNS, mean_over_generators
from harness.resources import leaderboard_files

__all__ = ["LeaderboardSpec", "load_spec", "render_leaderboard", "DEFAULT_SPEC_PATH"]

DEFAULT_SPEC_PATH: Traversable = leaderboard_files() / "default.toml"
LOWER_IS_BETTER = {"eer"}


@dataclass(frozen=True)
class LeaderboardSpec:
    title: str = "exifbench leaderboard"
    rank_by: str = "ap"
    columns: tuple[str, ...] = ("ap", "auc", "bal_acc", "real_acc", "fake_acc", "tpr_at_5fpr", "eer")
    reference_perturbation: str = "none"
    robustness_metric: str = "ap"
    heatmap_metric: str = "ap"


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
    for m in (spec.rank_by, spec.robustness_metric, spec.heatmap_metric, *spec.columns):
        if m not in METRIC_COLUMNS:
            raise ConfigError(f"{path}: unknown metric {m!r} (known: {METRIC_COLUMNS})")
    return spec


def _ranked(means: pd.DataFrame, spec: LeaderboardSpec) -> pd.DataFrame:
    asc = spec.rank_by in LOWER_IS_BETTER
    return means.sort_values(spec.rank_by, ascending=asc, na_position="last")


def main_table(metrics: pd.DataFrame, spec: LeaderboardSpec, dataset: str) -> tuple[pd.DataFrame, list[str]]:
    """Detectors ranked by the mean of ``rank_by`` over generators at the reference perturbation."""
    ref = metrics[(metrics["dataset"] == dataset) & (metrics["perturbation"] == spec.reference_perturbation)]
    if ref.empty:
        return pd.DataFrame(), []
    means = _ranked(mean_over_generators(ref, list(spec.columns)), spec)
    per_gen = ref.pivot_table(index="detector", columns="generator", values=spec.rank_by, aggfunc="first")
    table = means[["detector", *spec.columns]].rename(columns={c: f"mean {c}" for c in spec.columns})
    table = table.merge(per_gen.add_prefix(f"{spec.rank_by} ").reset_index(), on="detector", how="left")
    table.insert(0, "rank", range(1, len(table) + 1))
    return table.reset_index(drop=True), sorted(ref["generator"].unique())


def robustness_table(metrics: pd.DataFrame, spec: LeaderboardSpec, dataset: str,
                     order: list[str] | None = None) -> pd.DataFrame:
    """Detector x perturbation, columns in the order of the sweep's grid."""
    part = metrics[metrics["dataset"] == dataset]
    means = mean_over_generators(part, [spec.robustness_metric])
    order = order or list(dict.fromkeys(part["perturbation"]))
    table = means.pivot_table(index="detector", columns="perturbation", values=spec.robustness_metric)
    return table[[p for p in order if p in table.columns]].reset_index()


def _fmt_frame(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.map(lambda v: f"{v:.3f}" if isinstance(v, float) else v)


def render_leaderboard(run_dir: str | Path, spec: LeaderboardSpec | str | Path | None = None) -> Path:
    run_dir = Path(run_dir)
    metrics_path = run_dir / "metrics.csv"
    if not metrics_path.is_file():
        raise ConfigError(f"{str(run_dir)!r} has no metrics.csv; is it the --out folder of a sweep?")
    spec = spec if isinstance(spec, LeaderboardSpec) else load_spec(spec)
    metrics = pd.read_csv(metrics_path)
    run = json.loads((run_dir / "run.json").read_text()) if (run_dir / "run.json").is_file() else {}
    order = [p["spec"] for p in run.get("perturbations", [])] or None
    plots = _plots(metrics, spec, run_dir, order)
    md, html_parts, csv_parts = [f"# {spec.title}", ""], [], []
    if run:
        md += [f"Run `{run.get('run_id')}`, code `{run.get('git_commit')}`, seed {run.get('seed')}.", ""]
    for dataset in sorted(metrics["dataset"].unique()):
        table, gens = main_table(metrics, spec, dataset)
        robust = robustness_table(metrics, spec, dataset, order)
        note = (f"Ranked by mean {spec.rank_by} over {len(gens)} generators at perturbation "
                f"`{spec.reference_perturbation}`: {', '.join(gens)}. Accuracies use each detector's own "
                f"threshold, fixed without test data.")
        md += [f"## {dataset}", "", note, "", tabulate(_fmt_frame(table), headers="keys", tablefmt="github",
                                                        showindex=False), ""]
        md += [f"### Robustness: mean {spec.robustness_metric} over generators", "",
               tabulate(_fmt_frame(robust), headers="keys", tablefmt="github", showindex=False), ""]
        html_parts += [f"<h2>{html.escape(dataset)}</h2><p>{html.escape(note)}</p>",
                       _fmt_frame(table).to_html(index=False, border=0),
                       f"<h3>Robustness: mean {spec.robustness_metric} over generators</h3>",
                       _fmt_frame(robust).to_html(index=False, border=0)]
        csv_parts.append(table.assign(dataset=dataset))
    md += ["## Plots", ""] + [f"![{p.stem}]({p.name})" for p in plots] + [""]
    (run_dir / "leaderboard.md").write_text("\n".join(md))
    pd.concat(csv_parts, ignore_index=True).to_csv(run_dir / "leaderboard.csv", index=False) if csv_parts else None
    (run_dir / "leaderboard.html").write_text(_html(spec.title, html_parts, plots))
    return run_dir / "leaderboard.md"


_CSS = ("body{font-family:system-ui,sans-serif;margin:2em;max-width:1400px}table{border-collapse:collapse;"
        "font-size:13px;margin:1em 0}td,th{padding:4px 8px;border-bottom:1px solid #ddd;text-align:right}"
        "th{background:#f4f4f4}img{max-width:640px;margin:8px}")


def _html(title: str, parts: list[str], plots: list[Path]) -> str:
    imgs = "".join(f'<img alt="{p.stem}" src="data:image/png;base64,{base64.b64encode(p.read_bytes()).decode()}">'
                   for p in plots)
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
            f"<style>{_CSS}</style></head><body><h1>{html.escape(title)}</h1>{''.join(parts)}"
            f"<h2>Plots</h2>{imgs}</body></html>")


def _plots(metrics: pd.DataFrame, spec: LeaderboardSpec, run_dir: Path, order: list[str] | None) -> list[Path]:
    """The plots of ``run_dir``: a derived artefact (:mod:`harness.derived_cache`) of the
    metrics, the spec, the order of the perturbations and this module's code, so re-rendering
    unchanged metrics copies the files (and spares importing matplotlib)."""
    import shutil
    import sys

    inputs = (json.dumps([repr(spec), order]).encode(),
              pd.util.hash_pandas_object(metrics, index=False).to_numpy().tobytes())
    key = derived_key(sys.modules[__name__], "matplotlib", *inputs)
    out = []
    for made in derived_files("plots", key, lambda folder: _draw(metrics, spec, folder, order)):
        shutil.copyfile(made, run_dir / made.name)
        out.append(run_dir / made.name)
    return out


def _draw(metrics: pd.DataFrame, spec: LeaderboardSpec, folder: Path, order: list[str] | None) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from harness.chains import parse

    out = []
    pert = order or list(dict.fromkeys(metrics["perturbation"]))
    by_kind: dict[str, list[str]] = {}
    for p in pert:
        if p != "none":
            by_kind.setdefault(parse(p).names, []).append(p)
    means = mean_over_generators(metrics, [spec.robustness_metric])
    for names, specs in by_kind.items():
        levels = (["none"] if "none" in pert else []) + specs
        fig, ax = plt.subplots(figsize=(6.4, 4))
        for (det, ds), part in means.groupby(["detector", "dataset"]):
            vals = part.set_index("perturbation")[spec.robustness_metric].reindex(levels)
            label = det if metrics["dataset"].nunique() == 1 else f"{det} ({ds})"
            ax.plot(range(len(levels)), vals.to_numpy(), marker="o", label=label)
        ax.set_xticks(range(len(levels)), [_short(l) for l in levels], rotation=30, ha="right")
        ax.set_ylabel(f"mean {spec.robustness_metric} over generators")
        ax.set_title(f"Robustness to {names}")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
        fig.tight_layout()
        path = folder / f"robustness_{names.replace('+', '_')}.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        out.append(path)
    ref = metrics[metrics["perturbation"] == spec.reference_perturbation]
    if not ref.empty:
        grid = ref.pivot_table(index="detector", columns="generator", values=spec.heatmap_metric, aggfunc="mean")
        fig, ax = plt.subplots(figsize=(1.2 + 0.9 * grid.shape[1], 1.2 + 0.5 * grid.shape[0]))
        im = ax.imshow(grid.to_numpy(), vmin=0, vmax=1, cmap="viridis", aspect="auto")
        ax.set_xticks(range(grid.shape[1]), grid.columns, rotation=40, ha="right")
        ax.set_yticks(range(grid.shape[0]), grid.index)
        for (i, j), v in pd.DataFrame(grid.to_numpy()).stack().items():
            ax.text(j, i, f"{v:.2f}", ha="center", va="center", color="w" if v < 0.6 else "k", fontsize=8)
        fig.colorbar(im, ax=ax, label=spec.heatmap_metric)
        ax.set_title(f"{spec.heatmap_metric} at {spec.reference_perturbation}")
        fig.tight_layout()
        path = folder / "heatmap.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        out.append(path)
    return out


def _short(spec: str) -> str:
    return spec.split("(", 1)[1].rstrip(")") if "(" in spec and "+" not in spec else spec
