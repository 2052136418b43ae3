"""Training and checkpoints of the EXIF detectors at tiny sizes (seconds on a CPU)."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from harness.api import CheckpointError, Sample
from harness.detector import TrainingSet
from harness.plugins import detectors, trainers
from detectors.exif.fast import FastExtractor
from detectors.exif.model import BackboneConfig, SDAIEBackbone
from detectors.exif.tiling import tile_image
from tests.helpers import exif_photo

TINY = {"width": 4, "patch_size": 16}


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Tiny networks are dominated by per-op overhead: one thread is faster and steadier."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _set(paths: list[Path], labels: list[int]) -> TrainingSet:
    samples = [Sample(sample_id=f"{i:04d}", path=str(p), label=l, dataset="t", generator="g", family="f")
               for i, (p, l) in enumerate(zip(paths, labels))]
    return TrainingSet(samples, lambda s: Image.open(s.path).convert("RGB"))


@pytest.fixture(scope="module")
def photos(tmp_path_factory) -> TrainingSet:
    rng = np.random.default_rng(0)
    folder = tmp_path_factory.mktemp("photos")
    paths = [exif_photo(folder / f"p{i}.jpg", rng, ["Canon", "Nikon"][i % 2], [2.8, 4.0, 8.0][i % 3], 100 * (1 + i % 4))
             for i in range(8)]
    return _set(paths, [0] * len(paths))


def test_tiny_pretext_run_lowers_the_loss_and_writes_its_curve(photos, tmp_path):
    trainer = trainers()["exif-backbone"].create(preset="cpu-small", steps=20, batch_pairs=4, n_crops=4, lr=3e-3,
                                                 **TINY)
    out = trainer.fit(photos, tmp_path / "bb", seed=0)
    rows = (out / "loss.csv").read_text().splitlines()[1:]
    losses = [float(r.split(",")[1]) for r in rows]
    assert np.mean(losses[-5:]) < np.mean(losses[:5])
    assert (out / "loss.png").stat().st_size > 0 and (out / "state.pt").is_file()
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["extra"]["vocabulary"]["Make"][:2] == ["Canon", "Nikon"]


def test_pretext_resumes_from_its_state(photos, tmp_path):
    make = lambda steps: trainers()["exif-backbone"].create(preset="cpu-small", steps=steps, batch_pairs=2,
                                                            n_crops=2, save_every=3, **TINY)
    straight = make(6).fit(photos, tmp_path / "a", seed=1)
    make(3).fit(photos, tmp_path / "b", seed=1)
    resumed = make(6).fit(photos, tmp_path / "b", seed=1)
    wa = torch.load(straight / "weights.pt", weights_only=True)
    wb = torch.load(resumed / "weights.pt", weights_only=True)
    assert all(torch.allclose(wa[k], wb[k], atol=1e-6) for k in wa)


def test_backbone_folder_feeds_exif_oc(photos, tmp_path):
    out = trainers()["exif-backbone"].create(preset="cpu-small", steps=2, batch_pairs=2, n_crops=2, **TINY) \
        .fit(photos, tmp_path / "bb")
    det = detectors()["exif-oc"].create(backbone=str(out), **TINY)
    det.load("cpu")
    assert det.features([photos.image(0)]).shape == (1, 10)


def _images(rng: np.random.Generator, n: int, noisy: bool) -> list[Image.Image]:
    out = []
    for _ in range(n):
        h, w = rng.integers(32, 72, size=2)
        y, x = np.mgrid[0:h, 0:w]
        smooth = np.stack([(x * 3 + y) % 256, (y * 2) % 256, (x + 40) % 256], -1).astype(np.float64)
        img = rng.integers(0, 256, (h, w, 3)) if noisy else smooth + rng.normal(0, 1.0, smooth.shape)
        out.append(Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)))
    return out


def _memory_set(images: list[Image.Image], labels: list[int]) -> TrainingSet:
    samples = [Sample(sample_id=str(i), path=f"mem{i}", label=l, dataset="t", generator="g", family="f")
               for i, l in enumerate(labels)]
    return TrainingSet(samples, lambda s: images[int(s.sample_id)])


def test_exif_oc_flags_planted_outliers_and_round_trips(tmp_path):
    rng = np.random.default_rng(3)
    reals, outliers = _images(rng, 24, noisy=False), _images(rng, 4, noisy=True)
    params = {**detectors()["exif-oc"].test_params, "n_components": 2}
    det = detectors()["exif-oc"].create(**params)
    folder = det.fit(_memory_set(reals, [0] * len(reals)), tmp_path / "oc")
    loaded = detectors()["exif-oc"].create(**params, checkpoint=str(folder))
    loaded.load("cpu")
    scores_out = loaded.score(outliers)
    assert (scores_out > loaded.threshold).all()
    assert np.mean(loaded.score(reals) > loaded.threshold) <= 0.1  # ~2 % of training reals by construction
    again = detectors()["exif-oc"].create(**params, checkpoint=str(folder))
    again.load("cpu")
    assert np.allclose(again.score(outliers), scores_out)


def test_exif_bc_fits_and_round_trips(tmp_path):
    rng = np.random.default_rng(4)
    images = _images(rng, 4, noisy=False) + _images(rng, 4, noisy=True)
    params = detectors()["exif-bc"].test_params
    folder = detectors()["exif-bc"].create(**params).fit(_memory_set(images, [0] * 4 + [1] * 4), tmp_path / "bc")
    assert (folder / "loss.csv").is_file()
    scores = []
    for _ in range(2):
        det = detectors()["exif-bc"].create(**params, checkpoint=str(folder))
        det.load("cpu")
        scores.append(det.score(images))
    assert np.allclose(scores[0], scores[1]) and ((scores[0] >= 0) & (scores[0] <= 1)).all()


def test_checkpoint_of_another_detector_is_rejected(tmp_path):
    rng = np.random.default_rng(5)
    images = _images(rng, 4, noisy=False)
    params = {**detectors()["exif-oc"].test_params, "n_components": 1}
    folder = detectors()["exif-oc"].create(**params).fit(_memory_set(images, [0] * 4), tmp_path / "oc")
    with pytest.raises(CheckpointError, match="exif-oc"):
        detectors()["exif-bc"].create(**detectors()["exif-bc"].test_params, checkpoint=str(folder)).load("cpu")


def test_authors_format_with_wrong_keys_is_rejected_naming_them(tmp_path):
    state = {f"module.backbone.{k}": v for k, v in SDAIEBackbone(BackboneConfig(**TINY)).state_dict().items()}
    state["module.extra.weight"] = torch.zeros(1)
    torch.save({"state_net": state}, tmp_path / "bad.pth")
    with pytest.raises(CheckpointError, match=r"missing keys \['fc1\.bias'.*unexpected keys \['extra\.weight'\]"):
        detectors()["exif-oc"].create(backbone=str(tmp_path / "bad.pth"), **TINY).load("cpu")


def test_batched_scoring_equals_one_image_at_a_time():
    torch.manual_seed(0)
    backbone = SDAIEBackbone(BackboneConfig(width=8, patch_size=32)).eval()
    rng = np.random.default_rng(6)
    tiles = [tile_image(im, 32, "official") for im in _images(rng, 5, noisy=True) + _images(rng, 3, noisy=False)]
    fast = FastExtractor(backbone)
    with torch.inference_mode():
        batched = fast(tiles)
        single = torch.cat([fast([t]) for t in tiles])
        reference = torch.cat([SDAIEBackbone.forward(fast.backbone, t[None])[0] for t in tiles])
    assert len({len(t) for t in tiles}) > 1  # variable tile counts are part of the test
    assert (batched - single).abs().max() < 1e-5
    assert (batched - reference).abs().max() < 1e-5
