"""A leaderboard table, written alike as Markdown, HTML and CSV rows.

Rows hold plain values (names, counts) and :class:`~harness.leaderboard.cells.Cell`
metrics; ``keys`` name each row's dataset, generator and perturbation (what the HTML page
filters by); ``notes`` are the lines printed under the table.
"""
from __future__ import annotations

import html
import math
from dataclasses import dataclass, field
from typing import Union

import pandas as pd
from tabulate import tabulate

from harness.leaderboard.cells import Cell, Style

__all__ = ["Table", "Value", "Label"]


@dataclass(frozen=True)
class Label:
    """Text that sorts by a number (a rank label ``=2`` sorts by its row's place)."""

    text: str
    order: float


#: a table cell: a metric, or a plain value (a name, a count, a rank label)
Value = Union[Cell, Label, str, int, float, bool]


@dataclass
class Table:
    kind: str
    title: str
    columns: list[str]
    rows: list[list[Value]] = field(default_factory=list)
    keys: list[dict[str, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    #: extra CSV columns per row (e.g. the numeric rank beside its label)
    extra: list[dict[str, object]] = field(default_factory=list)
    #: the paragraph above the table
    intro: str = ""

    def add(self, row: list[Value], key: dict[str, str], **extra: object) -> None:
        self.rows.append(row)
        self.keys.append(key)
        self.extra.append(extra)

    def markdown(self, style: Style) -> str:
        body = [[v.text(style) if isinstance(v, Cell) else _plain(v) for v in row] for row in self.rows]
        table = tabulate(body, headers=self.columns, tablefmt="github", disable_numparse=True)
        return "\n\n".join(p for p in [self.intro, table, *self.notes] if p)

    def html(self, style: Style, table_id: str) -> str:
        head = "".join(f'<th scope="col">{html.escape(c)}</th>' for c in self.columns)
        body = "".join(_html_row(row, key, style) for row, key in zip(self.rows, self.keys))
        notes = "".join(f'<p class="note">{html.escape(n)}</p>' for n in self.notes)
        intro = f"<p>{html.escape(self.intro)}</p>" if self.intro else ""
        return (f'{intro}<table class="sortable" id="{table_id}"><thead><tr>{head}</tr></thead>'
                f"<tbody>{body}</tbody></table>{notes}")

    def frame(self) -> pd.DataFrame:
        """The rows as numbers: each metric as ``<column>``, ``<column>_lo``, ``<column>_hi``."""
        records = []
        for row, key, extra in zip(self.rows, self.keys, self.extra):
            record: dict[str, object] = {"table": self.kind, "dataset": key.get("dataset")}
            for name, value in zip(self.columns, row):
                record.update(_csv_values(name, value))
            records.append({**record, **extra})
        return pd.DataFrame(records)


def _plain(value: Value) -> str:
    if isinstance(value, Label):
        return value.text
    if isinstance(value, float):
        return "" if math.isnan(value) else f"{value:g}"
    return str(value)


def _html_row(row: list[Value], key: dict[str, str], style: Style) -> str:
    attrs = "".join(f' data-{k}="{html.escape(v)}"' for k, v in key.items())
    cells = "".join(v.html(style) if isinstance(v, Cell) else _html_plain(v) for v in row)
    return f'<tr class="filterable"{attrs}>{cells}</tr>'


def _html_plain(value: Value) -> str:
    if isinstance(value, Label):
        return f'<td class="t" data-v="{value.order!r}">{html.escape(value.text)}</td>'
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return f'<td data-v="{value!r}">{html.escape(_plain(value))}</td>'
    return f'<td class="t">{html.escape(_plain(value))}</td>'


def _csv_values(name: str, value: Value) -> dict[str, object]:
    if isinstance(value, Label):
        return {name: value.text}
    if not isinstance(value, Cell):
        return {name: value}
    return {name: value.value, f"{name}_lo": value.lo, f"{name}_hi": value.hi}
