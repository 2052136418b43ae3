"""The shortcut probe: its features measure processing history, its cross-validated AUC
warns in `data check` when history separates the classes, and the leaderboard shows it as
a labelled control row."""
from __future__ import annotations

import io
import json

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from harness.data.check import check_dataset
from harness.data.shortcut import _centre, _luma, ghost_quality, probe_auc, probe_features, separates, table_quality
from harness.plugins import detectors
from tests.test_check import _entry


def _scene(seed: int, size=(320, 240), factor: int = 4) -> Image.Image:
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (size[1] // factor, size[0] // factor, 3), dtype=np.uint8)
    return Image.fromarray(small).resize(size, Image.Resampling.BICUBIC)


def _jpeg(img: Image.Image, quality: int) -> Image.Image:
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=quality)
    buf.seek(0)
    return Image.open(buf)


@pytest.mark.parametrize("quality", [50, 75, 90])
def test_jpeg_quality_from_pixels_and_from_tables(quality):
    img = _jpeg(_scene(0), quality)
    assert table_quality(img) == quality
    assert probe_features(img.convert("RGB"))[1] == quality                           # pixels only
    assert probe_features(img, jpeg_quality_from="tables")[1] == quality
    assert probe_features(_scene(0))[1] == 100 and table_quality(_scene(0)) is None   # never compressed


def test_jpeg_quality_from_pixels_of_an_image_with_saturated_colours():
    """Part of the picture pushed past the gamut: the decoder clips its RGB values, whose luma
    then leaves the quantisation lattice; without those blocks the ghost still dips at 90."""
    for seed in range(3):
        a = np.asarray(_scene(seed)).astype(np.float64)
        a[:, :200] = np.clip((a[:, :200] - 128) * 3 + 128, 0, 255)
        img = _jpeg(Image.fromarray(a.astype(np.uint8)), 90).convert("RGB")
        assert ghost_quality(_centre(_luma(img))) == 100  # every block: no dip
        assert probe_features(img)[1] == 90


def test_features_see_the_jpeg_grid_upsampling_and_size():
    smooth, sharp = _scene(1), _scene(1, factor=1)
    assert probe_features(_jpeg(smooth, 50).convert("RGB"))[0] > probe_features(smooth)[0] + 0.05  # blockiness
    png = probe_features(sharp)
    upsampled = probe_features(sharp.resize((80, 60)).resize((320, 240), Image.Resampling.BILINEAR))
    assert upsampled[2] < png[2] - 1.0                   # less high-frequency energy
    assert upsampled[3] > png[3]                         # periodic second derivative
    assert np.allclose(png[4:], np.log([320, 240]))


def _bars(seed: int, size=(320, 240)) -> Image.Image:
    """Uncompressed "interiors": long sharp horizontal and vertical strokes at random places
    (frames, shelves, the edges of furniture)."""
    rng = np.random.default_rng(seed)
    img = np.full((size[1], size[0]), 200, np.uint8)
    for _ in range(12):
        x, y = int(rng.integers(0, size[0] - 8)), int(rng.integers(0, size[1] - 8))
        thick, long = int(rng.integers(2, 8)), int(rng.integers(100, 240))
        tone = int(rng.integers(0, 120))
        if rng.uniform() < 0.5:
            img[y:y + long, x:x + thick] = tone
        else:
            img[y:y + thick, x:x + long] = tone
    noisy = img + rng.normal(0.0, 3.0, img.shape)  # a photo's noise
    return Image.fromarray(np.clip(np.rint(noisy), 0, 255).astype(np.uint8)).convert("RGB")


def test_blockiness_sees_the_jpeg_grid_not_straight_edges():
    """Axis-aligned edges at random positions pile up on one phase of a plain difference;
    the cross difference cancels them, so they read as no grid while a JPEG's grid does not."""
    edges = [probe_features(_bars(i))[0] for i in range(6)]  # the first version: 0.27-0.47 on these
    grids = [probe_features(_jpeg(_scene(i), 75).convert("RGB"))[0] for i in range(6)]
    jpeg_edges = [probe_features(_jpeg(_bars(i), 75).convert("RGB"))[0] for i in range(6)]
    assert max(edges) < 0.1 and min(grids + jpeg_edges) > 0.4, (edges, grids, jpeg_edges)


def test_probe_auc_separates_histories_and_covers_chance_for_one_history():
    reals = [probe_features(_jpeg(_scene(i), 60).convert("RGB")) for i in range(16)]
    fakes = [probe_features(_scene(100 + i)) for i in range(16)]
    apart = probe_auc(reals, fakes)
    assert apart.auc > 0.9 and separates(apart) and (apart.n_real, apart.n_fake) == (16, 16)
    same = probe_auc(reals[:8], reals[8:])
    assert same.lo <= 0.5 <= same.hi and not separates(same)


def test_data_check_warns_when_the_probe_separates_real_from_generated(tmp_path):
    root = tmp_path / "data"
    for g, gen in enumerate(("gana", "ganb", "ganc")):
        for i in range(6):
            for cls, img in (("0_real", _jpeg(_scene(10 * g + i), 60).convert("RGB")), ("1_fake", _scene(90 + i))):
                (root / gen / cls).mkdir(parents=True, exist_ok=True)
                img.save(root / gen / cls / f"{i}.png")
    report = check_dataset(_entry(tmp_path), root, probe=200)
    assert {r.generator for r in report.probe} == {"gana", "ganb", "ganc"}
    shortcut = [f for f in report.findings if f.code == "shortcut"]
    assert len(shortcut) == 3 and all("cross-validated AUC" in f.message and "[" in f.message for f in shortcut)
    assert "shortcut probe" in report.render()
    assert not check_dataset(_entry(tmp_path), root).probe          # the API runs it when asked; the CLI by default


def test_probe_is_registered_as_a_trainable_control():
    spec = detectors()["probe"]
    assert spec.trainable and spec.control and spec.score_is_probability


def test_leaderboard_shows_a_control_as_a_labelled_row_outside_the_ranking(tmp_path):
    from harness.leaderboard import render_leaderboard
    from harness.metrics import METRIC_COLUMNS

    rows = [{"detector": d, "dataset": "d", "generator": g, "perturbation": "none", "n_real": 5, "n_fake": 5,
             "ap": ap} for d, ap in (("a", 0.7), ("probe", 0.95), ("b", 0.6)) for g in ("g1", "g2")]
    frame = pd.DataFrame(rows)
    for col in METRIC_COLUMNS:
        frame[col] = frame.get(col, 0.5)
    frame.to_csv(tmp_path / "metrics.csv", index=False)
    (tmp_path / "run.json").write_text(json.dumps({"run_id": "r", "perturbations": [{"spec": "none"}], "detectors": [
        {"display_name": "probe", "control": "shortcut probe"}, {"display_name": "a"}, {"display_name": "b"}]}))
    md = render_leaderboard(tmp_path).read_text()
    assert md.index("| a ") < md.index("| b ") < md.index("probe [control]")   # ranked first, the control below
    assert "| control | probe [control]" in md and "probe: shortcut probe" in md
    table = pd.read_csv(tmp_path / "leaderboard.csv")
    assert table.loc[table["detector"] == "probe [control]", "control"].item() == "shortcut probe"
