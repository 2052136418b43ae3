"""Memory bounded by design: detectors declare how their memory grows with the input, the
sweep's ``[run] memory_mib`` sets each one's largest input and a chunk's pixel budget, and
an image beyond a detector's limit gets the ``[run] oversize`` policy, recorded."""
from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from harness.api import ConfigError
from harness.config import load_sweep
from harness.engine.execute import chunk_work
from harness.engine.plan import CellGrid, HOLD_BYTES_PER_PIXEL, make_plan
from harness.engine.score_cache import cell_key
from harness.engine.work import SampleWork, detector_instance, fit_within, prepare, score_items, tiles_within
from harness.plugins import detectors, perturbations
from tests.helpers import spectrum_checkpoint, write_sweep_config

#: the built-in detectors that run on a CPU without downloaded weights
CPU_DETECTORS = ("spectrum", "probe", "cnnspot", "npr", "exif-oc", "exif-bc")
BIG = (6000, 4000)  # 24 Mpx, as today's cameras write
LARGE = (1350, 900)  # beyond spectrum's limit at the smallest budget (memory_mib = 64), yet fast


def _big_photo(path: Path, size=BIG) -> Path:
    """A JPEG of ``size``: smooth gradients plus a little noise."""
    w, h = size
    x = np.linspace(0, 255, w, dtype=np.float32)[None, :]
    y = np.linspace(0, 255, h, dtype=np.float32)[:, None]
    rgb = np.stack([x + 0 * y, y + 0 * x, (x + y) / 2], axis=-1)
    rgb += np.random.default_rng(0).normal(0, 3, (1, w, 1)).astype(np.float32)
    Image.fromarray(rgb.clip(0, 255).astype(np.uint8)).save(path, quality=85)
    return path


def _config(tmp_path: Path, detectors_: list[dict], size=BIG, **run):
    folder = tmp_path / "photos" / "gen" / "0_real"
    folder.mkdir(parents=True, exist_ok=True)
    _big_photo(folder / "big.jpg", size)
    Image.new("RGB", (64, 48), (90, 120, 30)).save(folder / "small.png")
    return load_sweep(write_sweep_config(tmp_path / "sweep.toml", run={"seed": 0, **run},
                                         datasets=[{"name": "p", "layout": "binary-folders",
                                                    "root": str(tmp_path / "photos")}],
                                         detectors=detectors_, grid=["none"]))


def test_every_built_in_detector_declares_its_memory_growth():
    for name in (*CPU_DETECTORS, "univfd"):
        spec = detectors()[name]
        base, per_pixel, squared = spec.memory_model({})
        assert base > 0 and per_pixel >= 0 and squared >= 0, name
    # a centre crop fixes the input: the memory no longer grows with the image
    assert detectors()["cnnspot"].memory_model({"crop": 224})[1] == 0
    paper, small = detectors()["cnnspot"].memory_model({}), detectors()["cnnspot"].memory_model({"preset": "cpu-small"})
    assert paper[0] > small[0] and paper[1] == small[1] > 0  # ResNet-50's weights; the first layers' activations


def test_a_squared_term_solves_its_quadratic_and_grows_the_exif_limit_with_its_tiles():
    """The EXIF detectors' set transformer attends over every pair of an image's tiles: their
    memory has a squared term, 32 bytes per pair of tiles; the largest input is the root of
    the quadratic, and it grows with the tile size (fewer tiles per pixel)."""
    from harness.engine.plan import max_pixels

    budget = 2048 * 2 ** 20
    base, per_pixel, squared = detectors()["exif-oc"].memory_model({"patch_size": 16})
    assert squared == pytest.approx(32 / 16 ** 4)
    n = max_pixels((base, per_pixel, squared), budget)
    used = base + (per_pixel + HOLD_BYTES_PER_PIXEL) * n + squared * n * n
    assert used <= budget < base + (per_pixel + HOLD_BYTES_PER_PIXEL) * (n + 1000) + squared * (n + 1000) ** 2
    assert 1.5e6 < n < 2.5e6  # 16-px tiles: under 2 Mpx at 2 GiB (7.5 GiB measured at 4 Mpx)
    paper = max_pixels(detectors()["exif-oc"].memory_model({}), budget)  # 64-px tiles
    assert paper > 5 * n
    assert max_pixels((base, per_pixel, 0.0), budget) == int((budget - base) / (per_pixel + HOLD_BYTES_PER_PIXEL))


def test_limits_follow_the_budget_and_only_oversized_keys_change(tmp_path):
    ckpt = spectrum_checkpoint(tmp_path / "s", n_bins=16)
    config = _config(tmp_path, [{"name": "spectrum", "checkpoint": ckpt, "n_bins": 16}], LARGE, memory_mib=64)
    plan = make_plan(config)
    d = plan.detectors[0]
    base, per_pixel, _ = d.memory
    assert d.max_pixels == int((64 * 2 ** 20 - base) / (per_pixel + HOLD_BYTES_PER_PIXEL)) < LARGE[0] * LARGE[1]
    assert plan.pixels_per_chunk == int(64 * 2 ** 20 / (HOLD_BYTES_PER_PIXEL + per_pixel))
    reg = perturbations()
    chain = plan.chains[0]
    keys = {c.sample.width: c.key for c in plan.cells}
    plain = {c.sample.width: cell_key(d.key, c.sample.sample_id, chain.spec, chain.version(reg), None)
             for c in plan.cells}
    assert keys[64] == plain[64]                 # within the limit: the key of every sweep
    assert keys[LARGE[0]] != plain[LARGE[0]]     # beyond: the policy and limit are in the key
    for other in (replace(config, run=replace(config.run, oversize="tile")),
                  replace(config, run=replace(config.run, memory_mib=96))):
        again = {c.sample.width: c.key for c in make_plan(other).cells}
        assert again[64] == keys[64] and again[LARGE[0]] != keys[LARGE[0]]
    big = make_plan(replace(config, run=replace(config.run, memory_mib=1024)))
    assert {c.sample.width: c.key for c in big.cells}[LARGE[0]] == plain[LARGE[0]]  # fits: no policy


def test_the_oversize_policies_on_a_large_image(tmp_path):
    """Plain loop (the engine's own functions, no Ray): "error" gives an error row that
    names the limit, "centre-crop" scores the centre, "tile" the mean of its tiles; the
    chunk of the big image holds it alone."""
    ckpt = spectrum_checkpoint(tmp_path / "s", n_bins=16)
    config = _config(tmp_path, [{"name": "spectrum", "checkpoint": ckpt, "n_bins": 16}], LARGE, memory_mib=64)
    plan = make_plan(config)
    limit = plan.detectors[0].max_pixels
    defs = [(d.name, dict(d.params)) for d in plan.detectors]
    model = detector_instance(*defs[0])
    model.load("cpu")
    chunks = chunk_work(plan.cells, 32, plan.pixels_per_chunk)
    assert [[w.width for w in chunk] for chunk in chunks] == [[64], [LARGE[0]]]
    big = chunks[1]
    key = big[0].jobs[0][1][0][1]
    image = Image.open(big[0].path).convert("RGB")
    outcomes = {}
    for policy in ("error", "centre-crop", "tile"):
        *per_det, errors = prepare(big, 0, defs, limits=[limit], oversize=policy)
        outcomes[policy] = [(k, None, e) for k, e in errors] + score_items(model, *per_det[0])
    ((k, score, error),) = outcomes["error"]
    assert k == key and score is None and error.startswith("oversize: 1350x900 px") and str(limit) in error
    crop = fit_within(image, limit)
    assert crop.size[0] * crop.size[1] <= limit and abs(crop.size[0] / crop.size[1] - 1.5) < 0.01
    assert outcomes["centre-crop"] == [(key, pytest.approx(float(model.score([crop])[0])), None)]
    tiles = tiles_within(image, limit)
    assert len(tiles) > 1 and all(t.size[0] * t.size[1] <= limit for t in tiles)
    assert sum(t.size[0] * t.size[1] for t in tiles) == LARGE[0] * LARGE[1]
    assert outcomes["tile"] == [(key, pytest.approx(float(np.mean(model.score(tiles)))), None)]


def test_the_config_names_a_bad_policy_or_budget(tmp_path):
    for run in ({"oversize": "shrink"}, {"memory_mib": 8}):
        path = write_sweep_config(tmp_path / "bad.toml", run=run, datasets=[{"name": "p", "layout": "binary-folders",
                                                                           "root": str(tmp_path)}],
                                  detectors=[{"name": "spectrum"}])
        with pytest.raises(ConfigError, match=r"\[run\]"):
            load_sweep(path)


CHILD = r"""
import json, resource, sys
from harness.config import load_sweep
from harness.engine.plan import make_plan
from harness.engine.execute import chunk_work
from harness.engine.work import prepare, score_items, detector_instance

def rss():
    return int(next(l for l in open("/proc/self/status") if l.startswith("VmRSS")).split()[1]) / 1024

plan = make_plan(load_sweep(sys.argv[1]))
defs = [(d.name, dict(d.params)) for d in plan.detectors]
models = [detector_instance(*d) for d in defs]
for m in models:
    m.load("cpu")
limits = [d.max_pixels for d in plan.detectors]
from PIL import Image
warm = Image.new("RGB", (64, 48), (90, 120, 30))
for m in models:  # a first forward pass allocates the math library's workspaces: part of the model
    m.score_batch([m.preprocess(warm)])
base = rss()
rows = []
for chunk in chunk_work(plan.cells, 32, plan.pixels_per_chunk):
    *per_det, errors = prepare(chunk, 0, defs, limits=limits, oversize=plan.oversize)
    rows += [(k, None, e) for k, e in errors]
    for i, m in enumerate(models):
        rows += score_items(m, *per_det[i])
by_key = {c.key: (plan.detectors[c.detector].display_name, c.sample.width) for c in plan.cells}
# VmHWM, not ru_maxrss: Linux carries ru_maxrss over exec from the parent (pytest's own size)
peak = int(next(l for l in open("/proc/self/status") if l.startswith("VmHWM")).split()[1]) / 1024
print(json.dumps({"base_mib": base, "peak_mib": peak,
                  "limits": limits, "rows": [[*by_key[k], s, e] for k, s, e in rows]}))
"""


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    from harness.testing import synthetic_training_set
    from harness.train.jobs import fit_locally

    tmp = tmp_path_factory.mktemp("ckpts")
    train = synthetic_training_set(tmp / "train", n=8)
    return {name: fit_locally(name, dict(detectors()[name].test_params), train.samples, tmp / name)
            for name in CPU_DETECTORS}


@pytest.mark.slow
@pytest.mark.parametrize("policy", ["error", "centre-crop"])
def test_a_24_mpx_image_with_every_cpu_detector_stays_within_the_memory_cap(tmp_path, checkpoints, policy):
    """Every built-in CPU detector at native size (no centre crop), one 24 Mpx photograph, a
    512 MiB budget: each cell is a score or the policy's recorded outcome, and the process's
    peak memory above its models (after a first forward pass) stays within the budget plus
    the source image and its perturbed copy."""
    budget = 512
    dets = [{"name": n, **dict(detectors()[n].test_params), "checkpoint": checkpoints[n],
             **({"crop": None} if n in ("cnnspot", "npr") else {})} for n in CPU_DETECTORS]
    dets = [{k: v for k, v in d.items() if v is not None} for d in dets]
    config = _config(tmp_path, dets, memory_mib=budget, oversize=policy)
    out = subprocess.run([sys.executable, "-c", CHILD, str(config.source)], capture_output=True, text=True,
                         timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    got = json.loads(out.stdout.strip().splitlines()[-1])
    limits = dict(zip(CPU_DETECTORS, got["limits"]))
    assert limits["cnnspot"] is not None and limits["cnnspot"] < BIG[0] * BIG[1]
    for name, width, score, error in got["rows"]:
        over = limits[name] is not None and width * (4000 if width == BIG[0] else 48) > limits[name]
        if over and policy == "error":
            assert score is None and error.startswith("oversize:"), (name, error)
        else:
            assert error is None and np.isfinite(score), (name, width, error)
    # besides the budget: the source image, decoded, and its perturbed copy (the chain runs on
    # the whole image before a policy crops it), 69 MiB each at 24 Mpx
    decoded = BIG[0] * BIG[1] * 3 / 2 ** 20
    assert got["peak_mib"] - got["base_mib"] <= budget + 2 * decoded, got
