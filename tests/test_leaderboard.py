from __future__ import annotations

import json

import pandas as pd
import pytest

from harness.api import ConfigError
from harness.leaderboard import load_spec, render_leaderboard
from harness.metrics import METRIC_COLUMNS


def _metrics(tmp_path, rows):
    frame = pd.DataFrame(rows)
    for col in METRIC_COLUMNS:
        frame[col] = frame.get(col, 0.5)
    frame.to_csv(tmp_path / "metrics.csv", index=False)
    (tmp_path / "run.json").write_text(json.dumps({"run_id": "r", "perturbations": [
        {"spec": "none"}, {"spec": "jpeg(quality=90)"}, {"spec": "jpeg(quality=50)"}]}))


def _row(det, gen, pert, ap):
    return {"detector": det, "dataset": "d", "generator": gen, "perturbation": pert, "n_real": 5, "n_fake": 5, "ap": ap}


def test_detectors_are_ranked_by_the_mean_over_generators_which_are_listed(tmp_path):
    _metrics(tmp_path, [_row("weak", "g1", "none", 0.6), _row("weak", "g2", "none", 0.6),
                        _row("strong", "g1", "none", 0.9), _row("strong", "g2", "none", 0.8)])
    md = render_leaderboard(tmp_path).read_text()
    assert md.index("| strong") < md.index("| weak")
    assert "over 2 generators at perturbation `none`: g1, g2" in md
    table = pd.read_csv(tmp_path / "leaderboard.csv")
    assert table.loc[table["detector"] == "strong", "mean ap"].item() == pytest.approx(0.85)


def test_robustness_columns_follow_the_grid_order_and_plots_are_written(tmp_path):
    _metrics(tmp_path, [_row("a", "g", p, v) for p, v in
                        [("jpeg(quality=50)", 0.5), ("none", 0.9), ("jpeg(quality=90)", 0.7)]])
    md = render_leaderboard(tmp_path).read_text()
    header = next(l for l in md.splitlines() if l.startswith("| detector") and "none" in l)
    assert header.index("none") < header.index("quality=90") < header.index("quality=50")
    assert (tmp_path / "robustness_jpeg.png").stat().st_size > 1000
    assert (tmp_path / "heatmap.png").is_file()
    html = (tmp_path / "leaderboard.html").read_text()
    assert "data:image/png;base64," in html and "<table" in html


def test_a_spec_with_an_unknown_metric_is_refused(tmp_path):
    (tmp_path / "s.toml").write_text('[leaderboard]\nrank_by = "accuracy"\n')
    with pytest.raises(ConfigError, match="unknown metric 'accuracy'"):
        load_spec(tmp_path / "s.toml")


def test_the_default_spec_file_matches_the_built_in_defaults():
    from harness.leaderboard.render import DEFAULT_SPEC_PATH, LeaderboardSpec

    assert load_spec(DEFAULT_SPEC_PATH) == LeaderboardSpec()
    assert LeaderboardSpec().intervals  # intervals are shown unless a spec turns them off


def test_plots_of_unchanged_metrics_come_from_the_cache_and_changed_metrics_are_redrawn(tmp_path, monkeypatch):
    from harness.leaderboard import plots

    rows = [_row("a", "g", p, v) for p, v in [("none", 0.9), ("jpeg(quality=90)", 0.7), ("jpeg(quality=50)", 0.5)]]
    first, second, changed = (tmp_path / n for n in ("first", "second", "changed"))
    for folder in (first, second, changed):
        folder.mkdir()
    _metrics(first, rows)
    render_leaderboard(first)
    _metrics(second, rows)
    drawn = []
    monkeypatch.setattr(plots, "_draw", lambda *a: drawn.append(a) or [])
    render_leaderboard(second)  # the same metrics: nothing drawn, the files copied
    assert drawn == []
    for name in ("heatmap.png", "robustness_jpeg.png"):
        assert (second / name).read_bytes() == (first / name).read_bytes()
    _metrics(changed, rows[:2] + [_row("a", "g", "jpeg(quality=50)", 0.4)])
    render_leaderboard(changed)
    assert len(drawn) == 1


def test_re_rendering_with_cached_plots_imports_no_matplotlib_or_scikit_learn(tmp_path):
    import subprocess
    import sys

    _metrics(tmp_path, [_row("a", "g", p, v) for p, v in [("none", 0.9), ("jpeg(quality=90)", 0.7)]])
    render_leaderboard(tmp_path)
    code = (f"import sys; from harness.leaderboard import render_leaderboard; render_leaderboard({str(tmp_path)!r}); "
            "print(sorted(m for m in ('torch', 'sklearn', 'matplotlib') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_a_spec_sets_intervals_decimals_and_alpha_and_a_wrong_value_is_refused(tmp_path):
    (tmp_path / "s.toml").write_text('[leaderboard]\nintervals = false\ndecimals = 3\nalpha = 0.01\n')
    spec = load_spec(tmp_path / "s.toml")
    assert (spec.intervals, spec.decimals, spec.alpha) == (False, 3, 0.01)
    (tmp_path / "bad.toml").write_text('[leaderboard]\nintervals = "yes"\n')
    with pytest.raises(ConfigError, match="intervals must be true or false"):
        load_spec(tmp_path / "bad.toml")
