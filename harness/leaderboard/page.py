"""``leaderboard.html``: one self-contained, interactive page.

Nothing is fetched at view time: the CSS and the script are inline and the plots are data
URIs. The tables are real ``<table>``s with ``<th>`` headers, so the page reads without
JavaScript; with it, a click on a header sorts the rows by that column (numbers
numerically, ``n/a`` last either way) and select boxes and a text box filter the rows by
dataset, generator and perturbation. A provenance block says where the numbers come from.
"""
from __future__ import annotations

import base64
import html
from pathlib import Path
from typing import Sequence

from harness.leaderboard.cells import Style
from harness.leaderboard.outputs import RunOutputs
from harness.leaderboard.provenance import interval_note, provenance_items
from harness.leaderboard.table import Table

__all__ = ["html_page"]

_CSS = """
body{font-family:system-ui,sans-serif;margin:2em;max-width:1500px;color:#222}
table{border-collapse:collapse;font-size:13px;margin:1em 0}
td,th{padding:4px 8px;border-bottom:1px solid #ddd;text-align:right;white-space:nowrap}
td:nth-child(-n+2),th:nth-child(-n+2){text-align:left}
th{background:#f4f4f4}
table.sortable th{cursor:pointer;user-select:none}
table.sortable th[aria-sort=ascending]::after{content:" \\25B2"}
table.sortable th[aria-sort=descending]::after{content:" \\25BC"}
.ci{color:#777;font-size:11px}
.note{font-size:12px;color:#555;margin:.3em 0}
td.t{text-align:left}
#filters{background:#f8f8f8;padding:.5em;border:1px solid #ddd}
#filters label{margin-right:1em}
#provenance dl{display:grid;grid-template-columns:max-content auto;gap:2px 12px;font-size:13px}
#provenance dt{font-weight:600}#provenance dd{margin:0;font-family:monospace}
figure{display:inline-block;margin:8px}img{max-width:640px}
[hidden]{display:none!important}
"""

_SCRIPT = """
(function () {
  function key(td) {
    if (!td) return null;
    var v = td.getAttribute('data-v');
    if (v !== null) return v === '' ? null : parseFloat(v);
    var t = td.textContent.trim();
    return (t === '' || t === '\\u2014' || t.indexOf('n/a') === 0) ? null : t.toLowerCase();
  }
  function compare(x, y) {
    if (typeof x === 'number' && typeof y === 'number') return x - y;
    return String(x).localeCompare(String(y), undefined, {numeric: true});
  }
  function sortBy(th) {
    var table = th.closest('table'), body = table.tBodies[0], col = th.cellIndex;
    var asc = th.getAttribute('aria-sort') !== 'ascending';
    table.querySelectorAll('th').forEach(function (h) { h.removeAttribute('aria-sort'); });
    th.setAttribute('aria-sort', asc ? 'ascending' : 'descending');
    var rows = Array.prototype.slice.call(body.rows);
    rows.sort(function (a, b) {
      var x = key(a.cells[col]), y = key(b.cells[col]);
      if (x === null || y === null) return (x === null) - (y === null);
      return asc ? compare(x, y) : compare(y, x);
    });
    rows.forEach(function (r) { body.appendChild(r); });
  }
  document.querySelectorAll('table.sortable th').forEach(function (th) {
    th.tabIndex = 0;
    th.title = 'sort by this column';
    th.addEventListener('click', function () { sortBy(th); });
    th.addEventListener('keydown', function (e) { if (e.key === 'Enter') sortBy(th); });
  });
  function applyFilters() {
    var want = {};
    document.querySelectorAll('#filters select').forEach(function (s) { if (s.value) want[s.name] = s.value; });
    var text = document.getElementById('filter-text').value.trim().toLowerCase();
    document.querySelectorAll('.filterable').forEach(function (el) {
      var ok = Object.keys(want).every(function (k) {
        var v = el.getAttribute('data-' + k);
        return v === null || v === want[k];
      });
      if (ok && text && el.tagName === 'TR') ok = el.textContent.toLowerCase().indexOf(text) >= 0;
      el.hidden = !ok;
    });
  }
  document.querySelectorAll('#filters select, #filters input').forEach(function (el) {
    el.addEventListener('input', applyFilters);
    el.addEventListener('change', applyFilters);
  });
})();
"""


def html_page(title: str, out: RunOutputs, sections: dict[str, list[Table]], everything: Table,
              plots: Sequence[Path], style: Style) -> str:
    body = [f"<h1>{html.escape(title)}</h1>", _provenance(out),
            f'<p class="note">{html.escape(interval_note(out))}</p>', _filters(out)]
    for n, (dataset, tables) in enumerate(sections.items()):
        body.append(_dataset_section(dataset, tables, style, n))
    body.append(f'<section><h2>{html.escape(everything.title)}</h2>{everything.html(style, "all-results")}</section>')
    body.append(_plots(plots))
    return (f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
            f"<style>{_CSS}</style></head><body>{''.join(body)}<script>{_SCRIPT}</script></body></html>")


def _dataset_section(dataset: str, tables: list[Table], style: Style, n: int) -> str:
    parts = [f"<h2>{html.escape(dataset)}</h2>"]
    for i, table in enumerate(tables):
        if table.kind != "main":
            parts.append(f"<h3>{html.escape(table.title)}</h3>")
        parts.append(table.html(style, f"t{n}-{table.kind}-{i}"))
    return f'<section class="filterable" data-dataset="{html.escape(dataset)}">{"".join(parts)}</section>'


def _filters(out: RunOutputs) -> str:
    m = out.metrics
    choices = {"dataset": sorted(m["dataset"].unique()), "generator": sorted(m["generator"].unique()),
               "perturbation": [p for p in out.order if p in set(m["perturbation"])]}
    boxes = []
    for name, values in choices.items():
        options = "".join(f'<option value="{html.escape(v)}">{html.escape(v)}</option>' for v in values)
        boxes.append(f'<label>{name} <select id="filter-{name}" name="{name}"><option value="">all</option>'
                     f"{options}</select></label>")
    boxes.append('<label>text <input id="filter-text" type="search" placeholder="detector, generator…"></label>')
    return f'<div id="filters">Filter: {"".join(boxes)}</div>'


def _provenance(out: RunOutputs) -> str:
    items = "".join(f"<dt>{html.escape(k)}</dt><dd>{html.escape(v)}</dd>" for k, v in provenance_items(out.record))
    versions = out.record.get("versions") or {}
    rows = "".join(f"<tr><th scope='row'>{html.escape(k)}</th><td>{html.escape(str(v))}</td></tr>"
                   for k, v in versions.items())
    table = (f"<details><summary>package versions</summary><table><tbody>{rows}</tbody></table></details>"
             if rows else "")
    if not items and not table:
        items = "<dt>run.json</dt><dd>absent: no provenance recorded</dd>"
    return f'<section id="provenance"><h2>Provenance</h2><dl>{items}</dl>{table}</section>'


def _plots(plots: Sequence[Path]) -> str:
    figures = "".join(
        f'<figure><img alt="{html.escape(p.stem)}" src="data:image/png;base64,'
        f'{base64.b64encode(p.read_bytes()).decode()}"><figcaption>{html.escape(p.stem)}</figcaption></figure>'
        for p in plots)
    return f"<section><h2>Plots</h2>{figures}</section>"
