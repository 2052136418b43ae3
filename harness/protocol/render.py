"""The files of a protocol's result: ``matrix.csv`` and ``summary.csv`` (every number),
``matrix.md`` and ``matrix.html`` (a train x test table per metric, detector and
perturbation, and the summary), and ``heatmap-<metric>[-<perturbation>].png`` (one panel
per detector, each cell annotated with its value and interval, in-distribution cells framed).
"""
from __future__ import annotations

import base64
import html
import re
from pathlib import Path
from typing import Sequence

import pandas as pd

__all__ = ["write_outputs", "heatmap_name"]


def _column(frame: pd.DataFrame) -> pd.Series:
    several = frame["test_dataset"].nunique() > 1
    return frame["test_dataset"] + "/" + frame["test_generator"] if several else frame["test_generator"]


def _cell(row: dict) -> str:
    if pd.isna(row["value"]):
        return "n/a"
    text = f"{row['value']:.3f}"
    if pd.notna(row["lo"]) and pd.notna(row["hi"]):
        text += f" [{row['lo']:.3f}, {row['hi']:.3f}]"
    return text


def _tables(matrix: pd.DataFrame, trains: Sequence[str]):
    """(title, header, rows, in-distribution flags) per metric, detector and perturbation."""
    matrix = matrix.assign(column=_column(matrix))
    several = matrix["perturbation"].nunique() > 1
    for (metric, det, pert), part in matrix.groupby(["metric", "detector", "perturbation"], sort=False):
        counts = part.drop_duplicates("column").set_index("column")
        columns = list(counts.index)
        header = ["train \\ test"] + [f"{c} (n={counts.at[c, 'n_real']}/{counts.at[c, 'n_fake']})" for c in columns]
        cells = {(r["train"], r["column"]): r for r in part.to_dict("records")}
        body, flags = [], []
        for t in [t for t in trains if t in set(part["train"])]:
            body.append([t] + [_cell(cells[(t, c)]) if (t, c) in cells else "" for c in columns])
            flags.append([False] + [bool(cells[(t, c)]["in_distribution"]) if (t, c) in cells else False
                                    for c in columns])
        title = f"{metric}: {det}" + (f" at {pert}" if several else "")
        yield title, header, body, flags


def _summary_rows(summary: pd.DataFrame) -> tuple[list[str], list[list[str]]]:
    header = ["detector", "perturbation", "metric", "in-distribution", "cross-generator", "gap (in - cross)",
              "cells (in / cross)"]
    rows = []
    for r in summary.to_dict("records"):
        part = [_cell({"value": r[f"{k}"], "lo": r[f"{k}_lo"], "hi": r[f"{k}_hi"]})
                for k in ("in_distribution", "cross_generator", "gap")]
        rows.append([r["detector"], r["perturbation"], r["metric"], *part,
                     f"{r['n_in_distribution']} / {r['n_cross_generator']}"])
    return header, rows


def _md_table(header: list[str], rows: list[list[str]], flags: list[list[bool]] | None = None) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for i, row in enumerate(rows):
        shown = [f"**{v}**" if flags and flags[i][j] and v else v for j, v in enumerate(row)]
        lines.append("| " + " | ".join(shown) + " |")
    return "\n".join(lines)


def _html_table(header: list[str], rows: list[list[str]], flags: list[list[bool]] | None = None) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = []
    for i, row in enumerate(rows):
        tds = "".join(f"<td class=\"in\">{html.escape(v)}</td>" if flags and flags[i][j] else
                      f"<td>{html.escape(v)}</td>" for j, v in enumerate(row))
        body.append(f"<tr>{tds}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _intro(kind: str, bootstrap: int, ci: float) -> str:
    interval = (f"[{ci:.0%} interval: stratified bootstrap of the test images, {bootstrap} replicates]"
                if bootstrap else "(no intervals: [metrics] bootstrap = 0)")
    return (f"Protocol `{kind}`. Rows: the training set of each model (a detector trained on the fakes of "
            f"those generators and their reals); columns: the test generator (n = reals/fakes). Cells: the metric "
            f"{interval}. In-distribution cells (the test generator is among the model's training generators) are "
            "in bold; the others are cross-generator. Threshold metrics (acc, bal_acc, ...) use each detector's "
            "own threshold, never one tuned on test images. The intervals cover the test images, not the "
            "variation between training runs.")


def heatmap_name(metric: str, perturbation: str, several: bool) -> str:
    suffix = "-" + re.sub(r"[^A-Za-z0-9._=-]+", "_", perturbation).strip("_") if several else ""
    return f"heatmap-{metric}{suffix}.png"


def _heatmaps(matrix: pd.DataFrame, trains: Sequence[str], folder: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    matrix = matrix.assign(column=_column(matrix))
    several = matrix["perturbation"].nunique() > 1
    paths = []
    for (metric, pert), part in matrix.groupby(["metric", "perturbation"], sort=False):
        dets = list(dict.fromkeys(part["detector"]))
        rows = [t for t in trains if t in set(part["train"])]
        cols = list(dict.fromkeys(part["column"]))
        fig, axes = plt.subplots(1, len(dets), squeeze=False,
                                 figsize=(len(dets) * (1.6 + 1.25 * len(cols)), 1.4 + 0.65 * len(rows)))
        for ax, det in zip(axes[0], dets):
            grid = (part[part["detector"] == det].pivot_table(index="train", columns="column", values="value",
                                                               aggfunc="first", dropna=False)
                    .reindex(index=rows, columns=cols))
            im = ax.imshow(grid.to_numpy(dtype=float), vmin=0, vmax=1, cmap="viridis", aspect="auto")
            ax.set_xticks(range(len(cols)), cols, rotation=40, ha="right")
            ax.set_yticks(range(len(rows)), rows)
            ax.set(xlabel="test generator", ylabel="trained on" if ax is axes[0][0] else "", title=det)
            for r in part[part["detector"] == det].to_dict("records"):
                i, j = rows.index(r["train"]), cols.index(r["column"])
                if pd.notna(r["value"]):
                    ax.text(j, i, _cell(r).replace(" [", "\n["), ha="center", va="center", fontsize=7,
                            color="w" if r["value"] < 0.6 else "k")
                if r["in_distribution"]:
                    ax.add_patch(Rectangle((j - 0.44, i - 0.44), 0.88, 0.88, fill=False, edgecolor="red",
                                           linewidth=2))
        fig.colorbar(im, ax=list(axes[0]), label=metric)
        fig.suptitle(f"{metric}" + (f" at {pert}" if several else "") + " (framed: in-distribution)", y=1.04)
        path = folder / heatmap_name(metric, pert, several)
        fig.savefig(path, dpi=110, bbox_inches="tight")
        plt.close(fig)
        paths.append(path)
    return paths


def write_outputs(matrix: pd.DataFrame, summary: pd.DataFrame, trains: Sequence[str], folder: Path, *,
                  kind: str, bootstrap: int, ci: float) -> list[Path]:
    """Every file of the result into ``folder``; returns their paths."""
    matrix.to_csv(folder / "matrix.csv", index=False)
    summary.to_csv(folder / "summary.csv", index=False)
    images = _heatmaps(matrix, trains, folder) if not matrix.empty else []
    tables = list(_tables(matrix, trains))
    s_header, s_rows = _summary_rows(summary)
    md = [f"# exifbench protocol: {kind}", "", _intro(kind, bootstrap, ci), ""]
    md += ["## In-distribution versus cross-generator", "",
           "Means over the cells of each kind, and their difference (paired bootstrap).", "",
           _md_table(s_header, s_rows), ""]
    for title, header, body, flags in tables:
        md += [f"## {title}", "", _md_table(header, body, flags), ""]
    md += ["Heatmaps: " + ", ".join(p.name for p in images), ""]
    (folder / "matrix.md").write_text("\n".join(md))
    page = [f"<!doctype html><html><head><meta charset=\"utf-8\"><title>exifbench protocol: {html.escape(kind)}"
            "</title><style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse;margin:1em 0}"
            "td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}td.in{font-weight:bold;"
            "background:#fff3d6}</style></head><body>",
            f"<h1>exifbench protocol: {html.escape(kind)}</h1>", f"<p>{html.escape(_intro(kind, bootstrap, ci))}</p>",
            "<h2>In-distribution versus cross-generator</h2>", _html_table(s_header, s_rows)]
    for title, header, body, flags in tables:
        page += [f"<h2>{html.escape(title)}</h2>", _html_table(header, body, flags)]
    for p in images:
        data = base64.b64encode(p.read_bytes()).decode()
        page.append(f"<h2>{html.escape(p.stem)}</h2><img alt=\"{html.escape(p.stem)}\" "
                    f"src=\"data:image/png;base64,{data}\">")
    page.append("</body></html>")
    (folder / "matrix.html").write_text("\n".join(page))
    return [folder / n for n in ("matrix.csv", "summary.csv", "matrix.md", "matrix.html")] + images
