"""Leaderboards that say what they know: ranks in groups where differences are not
significant, intervals, n/a with its reason, seen generators apart, the false-positive rate
of real-only data, a run without intervals; and the HTML page in a real browser.

Runs are built by hand (score rows with known signal), merged into a run folder by
:func:`harness.leaderboard.runs.merge_runs` (which computes metrics, means and comparisons
as a sweep does), then rendered.
"""
from __future__ import annotations

import json
import re
import shutil
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from harness.leaderboard import LeaderboardSpec, render_leaderboard
from harness.leaderboard.ranking import rank_groups
from harness.leaderboard.runs import merge_runs
from harness.stats import Bootstrap


def _scores(signals: dict[str, float], *, dataset: str = "d", generators=("g1", "g2"), n_real: int = 120,
            n_fake: int = 80, perturbations=("none",), twins: dict[str, str] | None = None,
            seed: int = 0) -> list[dict]:
    """Score rows: a detector's score is normal around ``signal`` for fakes, 0 for reals; a
    twin (``{"twin": "original"}``) has exactly its original's scores."""
    rng = np.random.default_rng(seed)
    images = [("real", f"{dataset}-r{i}", 0) for i in range(n_real)]
    images += [(g, f"{dataset}-{g}-{i}", 1) for g in generators for i in range(n_fake)]
    rows = []
    for det, signal in signals.items():
        for pert in perturbations:
            weaker = 0.5 if pert != "none" else 1.0
            for (gen, sid, label), score in zip(images, rng.normal(0, 1, len(images))):
                rows.append({"run_id": "hand", "detector": det, "dataset": dataset, "generator": gen, "subset": "",
                             "perturbation": pert, "sample_id": sid, "label": label,
                             "score": score + signal * weaker * label, "error": None, "threshold": 0.5})
    for twin, original in (twins or {}).items():
        rows += [{**r, "detector": twin} for r in rows if r["detector"] == original]
    return rows


def _run(tmp_path: Path, rows: list[dict], *, trained_on: dict[str, list[str]] | None = None, n_boot: int = 200,
         perturbations=("none",)) -> Path:
    """A run folder computed from ``rows`` (metrics, means, comparisons), its run.json
    completed with what a sweep records."""
    source = tmp_path / "hand"
    source.mkdir()
    pd.DataFrame(rows).to_parquet(source / "scores.parquet", index=False)
    detectors = sorted({r["detector"] for r in rows})
    record = {"run_id": "hand", "perturbations": [{"spec": p} for p in perturbations],
              "detectors": [{"display_name": d, "trained_on": {"generators": (trained_on or {}).get(d, [])}}
                            for d in detectors]}
    (source / "run.json").write_text(json.dumps(record))
    run = merge_runs([source], tmp_path / "run", Bootstrap(n_boot, 0.95, 0))
    merged = json.loads((run / "run.json").read_text())
    merged.update(git_commit="0123abc", config={"run": {"seed": 0}, "datasets": []}, versions={"numpy": "1.0"},
                  bootstrap={"replicates": n_boot, "ci": 0.95, "seed": 0})
    (run / "run.json").write_text(json.dumps(merged))
    return run


def _main_rows(md: str, dataset: str = "d") -> dict[str, list[str]]:
    """The main table of a dataset in leaderboard.md: detector -> its cells."""
    section = md.split(f"## {dataset}\n", 1)[1]
    lines = [l for l in section.splitlines() if l.startswith("| ")]
    header = [c.strip() for c in lines[0].strip("|").split("|")]
    rows = {}
    for line in lines[1:]:
        if not line.startswith("| "):
            break
        cells = [c.strip() for c in line.strip("|").split("|")]
        if len(cells) != len(header):
            break
        rows[cells[1]] = dict(zip(header, cells))
    return rows


def _csv(run: Path, table: str = "main") -> pd.DataFrame:
    frame = pd.read_csv(run / "leaderboard.csv")
    return frame[frame["table"] == table].set_index("detector")


# --- ranks in groups ----------------------------------------------------------------------

def test_two_clearly_different_detectors_get_ranks_1_and_2(tmp_path):
    run = _run(tmp_path, _scores({"good": 3.0, "bad": 0.0}))
    rows = _main_rows(render_leaderboard(run).read_text())
    assert (rows["good"]["rank"], rows["bad"]["rank"]) == ("1", "2")
    assert _csv(run)["rank_shared"].tolist() == [False, False]


def test_two_equal_detectors_share_a_rank_and_the_rule_is_printed(tmp_path):
    run = _run(tmp_path, _scores({"top": 3.0, "twin_a": 0.5}, twins={"twin_b": "twin_a"}))
    md = render_leaderboard(run).read_text()
    rows = _main_rows(md)
    assert [rows[d]["rank"] for d in ("top", "twin_a", "twin_b")] == ["1", "2", "=2"]
    assert ("=k: not significantly different from the detector above (paired bootstrap of the mean over generators, "
            "Holm-adjusted over the 2 adjacent pairs, α = 0.05)") in md
    table = _csv(run)
    assert table.loc["twin_b", "rank"] == 2 and table.loc["twin_b", "rank_shared"]


def test_equal_detectors_on_one_generator_share_rank_1_by_delong(tmp_path):
    run = _run(tmp_path, _scores({"a": 1.0}, generators=("g1",), twins={"b": "a"}))
    md = render_leaderboard(run, LeaderboardSpec(rank_by="auc")).read_text()
    assert [_main_rows(md)[d]["rank"] for d in ("a", "b")] == ["1", "=1"]
    assert "paired DeLong test of generator g1" in md


def test_adjacent_p_values_are_holm_adjusted_before_ranks_are_shared():
    """Raw p-values 0.04 and 0.03 are both below 0.05; Holm over the two pairs makes them 0.06."""
    pair = {"dataset": "d", "generator": "mean", "perturbation": "none"}
    comparisons = pd.DataFrame([{**pair, "detector_a": "a", "detector_b": "b", "p_ap": 0.04},
                                {**pair, "detector_a": "b", "detector_b": "c", "p_ap": 0.03}])
    ranks = rank_groups(["a", "b", "c"], "ap", comparisons, dataset="d", perturbation="none", generators=["g1", "g2"],
                        alpha=0.05)
    assert ranks.labels == ["1", "=1", "=1"]
    assert rank_groups(["a", "b", "c"], "ap", comparisons, dataset="d", perturbation="none",
                       generators=["g1", "g2"], alpha=0.1).labels == ["1", "2", "3"]


def test_a_metric_without_a_test_ranks_plainly_and_says_so(tmp_path):
    run = _run(tmp_path, _scores({"a": 0.5}, twins={"b": "a"}))
    md = render_leaderboard(run, LeaderboardSpec(rank_by="bal_acc")).read_text()
    assert [_main_rows(md)[d]["rank"] for d in ("a", "b")] == ["1", "2"]
    assert "Ranked plainly: no significance test of bal_acc is available" in md


# --- what a cell says -----------------------------------------------------------------------

def test_metric_cells_carry_their_interval_and_the_csv_keeps_it_in_columns(tmp_path):
    run = _run(tmp_path, _scores({"a": 1.0, "b": 0.3}))
    md = render_leaderboard(run).read_text()
    means = pd.read_csv(run / "means.csv").query("group == 'all' and detector == 'a'").iloc[0]
    assert _main_rows(md)["a"]["mean ap"] == f"{means['ap']:.2f} [{means['ap_lo']:.2f}, {means['ap_hi']:.2f}]"
    row = _csv(run).loc["a"]
    assert (row["mean ap_lo"], row["mean ap"], row["mean ap_hi"]) == pytest.approx(
        (means["ap_lo"], means["ap"], means["ap_hi"]))
    assert "[lo, hi]: the 95% percentile interval of a stratified bootstrap (200 replicates, seed 0)" in md


def test_a_spec_can_turn_the_printed_intervals_off(tmp_path):
    run = _run(tmp_path, _scores({"a": 1.0, "b": 0.3}))
    md = render_leaderboard(run, LeaderboardSpec(intervals=False)).read_text()
    assert re.fullmatch(r"\d\.\d\d", _main_rows(md)["a"]["mean ap"])
    assert "mean ap_lo" in pd.read_csv(run / "leaderboard.csv")


def test_a_metric_with_too_few_reals_is_na_with_the_count_never_a_number_or_nan(tmp_path):
    run = _run(tmp_path, _scores({"a": 1.0, "b": 0.3}, n_real=50))
    spec = LeaderboardSpec(columns=("ap", "tpr_at_1fpr", "tpr_at_5fpr"), rank_by="ap")
    md = render_leaderboard(run, spec).read_text()
    row = _main_rows(md)["a"]
    assert row["mean tpr_at_1fpr"] == "n/a (n_real=50)"  # 50 < 100 reals
    assert row["mean tpr_at_5fpr"].startswith("0.")       # 50 >= 20 reals
    assert "nan" not in md.lower().replace("n/a", "")
    assert "too few reals for the metric" in md


def test_ap_columns_print_their_chance_level_per_generator(tmp_path):
    g2 = [r for r in _scores({"a": 1.0}, generators=("g2",), n_fake=40, seed=1) if r["label"] == 1]
    run = _run(tmp_path, _scores({"a": 1.0}, generators=("g1",), n_real=120, n_fake=80) + g2)
    md = render_leaderboard(run).read_text()
    assert "AP chance level (share of fakes) per generator: g1 0.40, g2 0.25." in md


def test_seen_generators_are_marked_and_unseen_and_seen_means_are_apart(tmp_path):
    run = _run(tmp_path, _scores({"a": 1.0, "b": 0.3}, generators=("g1", "g2", "g3")), trained_on={"a": ["g1"]})
    md = render_leaderboard(run).read_text()
    rows = _main_rows(md)
    assert "†" in rows["a"]["ap g1"] and "†" not in rows["a"]["ap g2"] and "†" not in rows["b"]["ap g1"]
    assert "† a generator this detector was trained on" in md
    means = pd.read_csv(run / "means.csv").set_index(["detector", "group"])
    assert rows["a"]["unseen mean ap"].startswith(f"{means.loc[('a', 'unseen'), 'ap']:.2f} [")
    assert rows["a"]["seen mean ap"].startswith(f"{means.loc[('a', 'seen'), 'ap']:.2f} [")
    assert rows["b"]["seen mean ap"] == "—"
    assert "a: unseen g2,g3; seen g1" in md
    assert _csv(run).loc["a", "seen_generators"] == "g1"


# --- data of one class ----------------------------------------------------------------------

def test_real_only_data_gets_a_false_positive_rate_table(tmp_path):
    rows = _scores({"a": 1.0, "b": 0.3}) + _scores({"a": 1.0, "b": 0.3}, dataset="cameras", generators=(), n_real=60)
    run = _run(tmp_path, rows)
    md = render_leaderboard(run).read_text()
    assert "### Real images only: false-positive rate" in md.split("## cameras", 1)[1]
    metrics = pd.read_csv(run / "metrics.csv").query("dataset == 'cameras'").set_index("detector")
    fpr = _csv(run, "real-only").loc["a"]
    assert fpr["false-positive rate"] == pytest.approx(1 - metrics.loc["a", "real_acc"])
    assert (fpr["false-positive rate_lo"], fpr["false-positive rate_hi"]) == pytest.approx(
        (1 - metrics.loc["a", "real_acc_hi"], 1 - metrics.loc["a", "real_acc_lo"]))
    cell = f"{1 - metrics.loc['a', 'real_acc']:.2f} [{1 - metrics.loc['a', 'real_acc_hi']:.2f}, "
    assert cell in md


def test_fake_only_data_gets_a_detection_rate_table(tmp_path):
    run = _run(tmp_path, _scores({"a": 2.0}, dataset="gen", generators=("g1",), n_real=0))
    md = render_leaderboard(run).read_text()
    assert "### Generated images only: detection rate" in md
    rate = pd.read_csv(run / "metrics.csv").set_index("detector").loc["a", "fake_acc"]
    assert _csv(run, "fake-only").loc["a", "detection rate"] == pytest.approx(rate)


# --- a run without intervals ----------------------------------------------------------------

def test_a_run_without_intervals_renders_plainly(tmp_path):
    run = _run(tmp_path, _scores({"a": 1.0, "b": 0.3}), n_boot=0)
    assert "ap_lo" not in pd.read_csv(run / "metrics.csv")
    md = render_leaderboard(run).read_text()
    assert re.fullmatch(r"\d\.\d\d", _main_rows(md)["a"]["mean ap"])
    assert "No intervals" in md and "Ranked plainly" in md
    assert not any(c.endswith(("_lo", "_hi")) for c in pd.read_csv(run / "leaderboard.csv").columns)
    assert (run / "leaderboard.html").is_file()


# --- the HTML page --------------------------------------------------------------------------

class _Tags(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags: list[tuple[str, dict]] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))


def _page_run(tmp_path: Path) -> Path:
    perts = ("none", "jpeg(quality=50)")
    rows = _scores({"strong": 2.5, "weak": 0.4}, perturbations=perts) + _scores(
        {"strong": 2.5, "weak": 0.4}, dataset="cameras", generators=(), n_real=40, perturbations=perts)
    run = _run(tmp_path, rows, trained_on={"strong": ["g1"]}, perturbations=perts)
    render_leaderboard(run)
    return run


def test_the_html_page_is_self_contained_and_reads_without_javascript(tmp_path):
    run = _page_run(tmp_path)
    text = (run / "leaderboard.html").read_text()
    tags = _Tags()
    tags.feed(text)
    sources = [a.get("src") or a.get("href") for t, a in tags.tags if a.get("src") or a.get("href")]
    assert sources and all(s.startswith("data:image/png;base64,") for s in sources)
    assert len([t for t, a in tags.tags if t == "img"]) == len(list(run.glob("*.png"))) == 2
    assert sum(t == "th" for t, _ in tags.tags) > 20 and sum(t == "table" for t, _ in tags.tags) >= 4
    assert "0123abc" in text and "config sha256" in text and "200 replicates" in text and "numpy" in text


def _browser() -> str:
    """Debian's chromium (or another Chromium on PATH, or one playwright installed itself)
    for playwright; skip when there is none."""
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install playwright)")
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        path = shutil.which(name)
        if path:
            return path
    with sync_api.sync_playwright() as p:
        bundled = p.chromium.executable_path
    if Path(bundled).is_file():
        return bundled
    pytest.skip("no Chromium browser found on PATH or installed by playwright (Debian: apt-get install chromium)")


def _column(page, table: str, index: int) -> list[str]:
    return page.eval_on_selector_all(f"#{table} tbody tr:not([hidden])",
                                     f"rows => rows.map(r => r.cells[{index}].getAttribute('data-v'))")


def test_the_html_page_in_a_browser_loads_sorts_and_filters(tmp_path):
    from playwright.sync_api import sync_playwright

    executable = _browser()
    run = _page_run(tmp_path)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=executable)
        page = browser.new_page()
        errors, requests = [], []
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.on("request", lambda r: requests.append(r.url))
        page.goto((run / "leaderboard.html").as_uri(), wait_until="load")
        widths = page.eval_on_selector_all("img", "imgs => imgs.map(i => i.complete ? i.naturalWidth : 0)")
        headers = page.eval_on_selector_all("#all-results thead th", "ths => ths.map(t => t.textContent)")
        auc = headers.index("auc")
        page.click(f"#all-results thead th:nth-child({auc + 1})")
        ascending = _column(page, "all-results", auc)
        page.click(f"#all-results thead th:nth-child({auc + 1})")
        descending = _column(page, "all-results", auc)
        total = len(_column(page, "all-results", 0))
        page.select_option("#filter-dataset", "cameras")
        cameras = page.eval_on_selector_all("#all-results tbody tr:not([hidden])",
                                            "rows => rows.map(r => r.dataset.dataset)")
        page.select_option("#filter-perturbation", "none")
        both = len(_column(page, "all-results", 0))
        browser.close()
    assert errors == []
    assert len(widths) == 2 and all(w > 0 for w in widths)
    assert [r for r in requests if not r.startswith(("file:", "data:"))] == []
    numbers = [float(v) for v in ascending if v]
    assert numbers == sorted(numbers) and ascending[len(numbers):] == [""] * (len(ascending) - len(numbers))
    assert [float(v) for v in descending if v] == sorted(numbers, reverse=True) and descending[-1] == ""
    assert cameras and set(cameras) == {"cameras"} and len(cameras) < total
    assert both == len(cameras) // 2


def test_robustness_plots_carry_interval_bands_and_heatmap_cells_their_intervals(tmp_path, monkeypatch):
    import matplotlib.axes

    from harness.leaderboard import plots
    from harness.leaderboard.outputs import read_outputs

    perts = ("none", "jpeg(quality=50)")
    run = _run(tmp_path, _scores({"a": 2.0, "b": 0.5}, perturbations=perts), perturbations=perts)
    bands, texts = [], []
    Axes = matplotlib.axes.Axes
    real_fill, real_text = Axes.fill_between, Axes.text
    monkeypatch.setattr(Axes, "fill_between", lambda ax, *a, **k: bands.append(a) or real_fill(ax, *a, **k))
    monkeypatch.setattr(Axes, "text", lambda ax, x, y, s, *a, **k: texts.append(s) or real_text(ax, x, y, s, *a, **k))
    made = plots._draw(read_outputs(run), LeaderboardSpec(), tmp_path)
    assert [p.name for p in made] == ["robustness_jpeg.png", "heatmap.png"]
    means = pd.read_csv(run / "means.csv").query("group == 'all' and detector == 'a'").set_index("perturbation")
    assert len(bands) == 2 and list(bands[0][1]) == pytest.approx(means.loc[list(perts), "ap_lo"].tolist())
    assert len(texts) == 4 and all(re.fullmatch(r"\d\.\d\d\n\[\d\.\d\d, \d\.\d\d\]", t) for t in texts)
