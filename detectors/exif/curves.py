"""Loss curves of the training jobs: one CSV row per logged step and a PNG plot."""
from __future__ import annotations

import csv
from pathlib import Path
from typing import Sequence

__all__ = ["write_loss_curve"]


def write_loss_curve(folder: str | Path, rows: Sequence[dict], title: str) -> tuple[Path, Path]:
    """``loss.csv`` (columns from the first row) and ``loss.png`` (``loss`` against ``step``)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    csv_path, png_path = folder / "loss.csv", folder / "loss.png"
    if rows:
        with open(csv_path, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot([r["step"] for r in rows], [r["loss"] for r in rows], lw=1)
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(png_path, dpi=100)
    plt.close(fig)
    return csv_path, png_path
