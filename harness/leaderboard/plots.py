"""The plots of a leaderboard: ``robustness_<perturbation>.png`` (the mean of a metric over
generators against strength, a line per detector, its interval as a band) and
``heatmap.png`` (detector x generator at the reference perturbation, each cell annotated
with its interval, seen generators marked).

The plots are a derived artefact (:mod:`harness.derived_cache`) of the metrics, the means,
the spec, the order of the perturbations and this module's code, so re-rendering unchanged
metrics copies the files (and spares importing matplotlib).
"""
from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pandas as pd

from harness.derived_cache import derived_files, derived_key
from harness.leaderboard.outputs import RunOutputs
from harness.leaderboard.spec import LeaderboardSpec

__all__ = ["draw_plots"]


def draw_plots(out: RunOutputs, spec: LeaderboardSpec, run_dir: Path) -> list[Path]:
    """The plots, copied into ``run_dir`` (from the cache when their inputs are unchanged)."""
    inputs = (json.dumps([repr(spec), out.order]).encode(),
              pd.util.hash_pandas_object(out.metrics, index=False).to_numpy().tobytes(),
              pd.util.hash_pandas_object(out.means, index=False).to_numpy().tobytes(),
              b"" if out.reliability is None else
              pd.util.hash_pandas_object(out.reliability, index=False).to_numpy().tobytes())
    key = derived_key(sys.modules[__name__], "matplotlib", *inputs)
    copied = []
    for made in derived_files("plots", key, lambda folder: _draw(out, spec, folder)):
        shutil.copyfile(made, run_dir / made.name)
        copied.append(run_dir / made.name)
    return copied


def _draw(out: RunOutputs, spec: LeaderboardSpec, folder: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    made = []
    if not out.means.empty:
        made += [_robustness(out, spec, names, levels, folder) for names, levels in _kinds(out.order).items()]
    ref = out.metrics[(out.metrics["perturbation"] == spec.reference_perturbation)
                      & (out.metrics["generator"] != "real")]
    if not ref.empty:
        made.append(_heatmap(ref, spec, folder))
    if out.reliability is not None:
        bins = out.reliability[out.reliability["perturbation"] == spec.reference_perturbation]
        if not bins.empty:
            made.append(_reliability(bins, folder))
    return made


def _reliability(bins: pd.DataFrame, folder: Path) -> Path:
    """Fraction generated against mean predicted probability, per bin, a line per detector."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 5))
    ax.plot([0, 1], [0, 1], color="grey", linestyle=":", label="perfectly calibrated")
    for (det, ds), part in bins.groupby(["detector", "dataset"]):
        name = det if bins["dataset"].nunique() == 1 else f"{det} ({ds})"
        ax.plot(part["mean_score"], part["fraction_generated"], marker="o", label=name)
    ax.set(xlim=(0, 1), ylim=(0, 1), xlabel="mean predicted P(generated) in the bin",
           ylabel="fraction generated in the bin", title="Reliability (10 equal-width bins)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return _save(fig, folder / "reliability.png")


def _kinds(order: list[str]) -> dict[str, list[str]]:
    """The levels of each kind of perturbation, ``none`` first when the grid has it."""
    from harness.chains import parse

    by_kind: dict[str, list[str]] = {}
    for p in order:
        if p != "none":
            by_kind.setdefault(parse(p).names, []).append(p)
    return {k: (["none"] if "none" in order else []) + v for k, v in by_kind.items()}


def _robustness(out: RunOutputs, spec: LeaderboardSpec, names: str, levels: list[str], folder: Path) -> Path:
    import matplotlib.pyplot as plt

    m = spec.robustness_metric
    means = out.means[out.means["group"] == "all"] if not out.means.empty else out.means
    several = means["dataset"].nunique() > 1
    fig, ax = plt.subplots(figsize=(6.4, 4))
    x = range(len(levels))
    for (det, ds), part in means.groupby(["detector", "dataset"]):
        part = part.set_index("perturbation").reindex(levels)
        line, = ax.plot(x, part[m].to_numpy(), marker="o", label=f"{det} ({ds})" if several else det)
        if f"{m}_lo" in part.columns:
            ax.fill_between(x, part[f"{m}_lo"].to_numpy(dtype=float), part[f"{m}_hi"].to_numpy(dtype=float),
                            color=line.get_color(), alpha=0.15, linewidth=0)
    ax.set_xticks(list(x), [_short(lv) for lv in levels], rotation=30, ha="right")
    ax.set_ylabel(f"mean {m} over generators" + (" (band: interval)" if f"{m}_lo" in means.columns else ""))
    ax.set_title(f"Robustness to {names}")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return _save(fig, folder / f"robustness_{names.replace('+', '_')}.png")


def _heatmap(ref: pd.DataFrame, spec: LeaderboardSpec, folder: Path) -> Path:
    import matplotlib.pyplot as plt

    m = spec.heatmap_metric
    several = ref["dataset"].nunique() > 1
    ref = ref.assign(column=ref["dataset"] + "/" + ref["generator"] if several else ref["generator"])
    grid = ref.pivot_table(index="detector", columns="column", values=m, aggfunc="first", dropna=False)
    fig, ax = plt.subplots(figsize=(1.4 + 1.3 * grid.shape[1], 1.2 + 0.6 * grid.shape[0]))
    im = ax.imshow(grid.to_numpy(dtype=float), vmin=0, vmax=1, cmap="viridis", aspect="auto")
    ax.set_xticks(range(grid.shape[1]), grid.columns, rotation=40, ha="right")
    ax.set_yticks(range(grid.shape[0]), grid.index)
    cells = {(r["detector"], r["column"]): r for r in ref.to_dict("records")}
    for i, det in enumerate(grid.index):
        for j, col in enumerate(grid.columns):
            row = cells.get((det, col))
            if row is not None and pd.notna(row[m]):
                ax.text(j, i, _annotation(row, m), ha="center", va="center", fontsize=7,
                        color="w" if row[m] < 0.6 else "k")
    fig.colorbar(im, ax=ax, label=m)
    seen = "seen" in ref.columns and ref["seen"].astype(str).str.lower().eq("true").any()
    ax.set_title(f"{m} at {spec.reference_perturbation}" + (" († seen in training)" if seen else ""))
    return _save(fig, folder / "heatmap.png")


def _annotation(row: dict, metric: str) -> str:
    mark = "†" if str(row.get("seen")).lower() == "true" else ""
    text = f"{row[metric]:.2f}{mark}"
    lo, hi = row.get(f"{metric}_lo"), row.get(f"{metric}_hi")
    if lo is not None and hi is not None and pd.notna(lo) and pd.notna(hi):
        text += f"\n[{lo:.2f}, {hi:.2f}]"
    return text


def _save(fig, path: Path) -> Path:
    import matplotlib.pyplot as plt

    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _short(spec: str) -> str:
    return spec.split("(", 1)[1].rstrip(")") if "(" in spec and "+" not in spec else spec
