"""One metric cell of a leaderboard: a value, its interval, why it is missing, a mark.

The same cell is written as text (Markdown: ``0.83 [0.74, 0.90]``, ``n/a (n_real=32)``),
as HTML (the interval in a span, the value in ``data-v`` for sorting) and as CSV numbers
(value, ``_lo``, ``_hi`` in separate columns).
"""
from __future__ import annotations

import html
import math
from dataclasses import dataclass

from harness.metrics import MIN_REALS

__all__ = ["Cell", "Style", "metric_cell", "missing_reason"]


@dataclass(frozen=True)
class Style:
    decimals: int = 2
    intervals: bool = True


@dataclass(frozen=True)
class Cell:
    """``value`` NaN is "n/a", followed by ``reason`` when there is one; ``absent`` cells
    (nothing to report, e.g. the seen mean of a detector trained on none) print a dash."""

    value: float
    lo: float = math.nan
    hi: float = math.nan
    reason: str = ""
    mark: str = ""
    absent: bool = False

    @property
    def has_interval(self) -> bool:
        return not (math.isnan(self.lo) or math.isnan(self.hi))

    def text(self, style: Style) -> str:
        if self.absent:
            return "—"
        if math.isnan(self.value):
            return f"n/a ({self.reason})" if self.reason else "n/a"
        out = f"{self.value:.{style.decimals}f}{self.mark}"
        if style.intervals and self.has_interval:
            out += f" [{self.lo:.{style.decimals}f}, {self.hi:.{style.decimals}f}]"
        return out

    def html(self, style: Style) -> str:
        """A ``<td>``: the interval inline (when shown) and on hover."""
        if self.absent or math.isnan(self.value):
            return f'<td data-v="">{html.escape(self.text(style))}</td>'
        d = style.decimals
        point = html.escape(f"{self.value:.{d}f}{self.mark}")
        if not self.has_interval:
            return f'<td data-v="{self.value!r}">{point}</td>'
        interval = f"[{self.lo:.{d}f}, {self.hi:.{d}f}]"
        shown = f' <span class="ci">{interval}</span>' if style.intervals else ""
        return f'<td data-v="{self.value!r}" title="interval {interval}">{point}{shown}</td>'


def missing_reason(metric: str, n_real: float, n_fake: float) -> str:
    """Why a metric of a row with these counts is undefined: too few reals (or fakes)."""
    if metric in MIN_REALS and n_real < MIN_REALS[metric]:
        return f"n_real={int(n_real)}"
    if n_real == 0 and metric != "fake_acc":
        return "n_real=0"
    if n_fake == 0 and metric != "real_acc":
        return "n_fake=0"
    return ""


def metric_cell(row: dict, metric: str, n_real: float, n_fake: float, mark: str = "") -> Cell:
    """The cell of ``metric`` in a metrics or means row (a dict), with its interval when the
    row has one and the reason when the value is missing."""
    value = _num(row.get(metric))
    if math.isnan(value):
        return Cell(value, reason=missing_reason(metric, n_real, n_fake))
    return Cell(value, _num(row.get(f"{metric}_lo")), _num(row.get(f"{metric}_hi")), mark=mark)


def _num(value: object) -> float:
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return math.nan
