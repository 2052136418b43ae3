"""Every baseline trains at its test configuration, writes a checkpoint that reloads, and
scores in batches exactly as one image at a time.

The data mimic the conformance kit: generated images are nearest-neighbour x2 upsamplings
of random content (the up-sampling trace NPR and CNNSpot learn), real ones are smooth
content plus sensor-like noise.
"""
from __future__ import annotations

import importlib.util
import json

import numpy as np
import pytest
import torch
from PIL import Image
from sklearn.metrics import roc_auc_score

from harness.api import CheckpointError, Sample
from harness.detector import TrainingSet
from harness.plugins import detectors

NAMES = ["cnnspot", "npr", pytest.param("univfd", marks=pytest.mark.skipif(
    importlib.util.find_spec("open_clip") is None, reason="univfd needs the optional dependency open_clip_torch"))]


def _image(label: int, rng: np.random.Generator, size: int = 64) -> Image.Image:
    small = Image.fromarray(rng.integers(0, 256, (size // 2, size // 2, 3), dtype=np.uint8))
    if label:
        return small.resize((size, size), Image.NEAREST)
    smooth = np.asarray(small.resize((size, size), Image.BILINEAR), dtype=np.float64)
    return Image.fromarray(np.clip(smooth + rng.normal(0, 12, smooth.shape), 0, 255).astype(np.uint8))


def _tiny_set(n: int, seed: int) -> TrainingSet:
    rng = np.random.default_rng(seed)
    images = {f"{seed}-{i}": _image(i % 2, rng) for i in range(n)}
    samples = [Sample(sample_id=k, path=k, label=i % 2, dataset="tiny", generator="nn-up" if i % 2 else "real",
                      family="synthetic") for i, k in enumerate(images)]
    return TrainingSet(samples, lambda s: images[s.sample_id])


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Tiny models gain nothing from more threads, and the test machine's cores are shared."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module", params=NAMES)
def trained(request, tmp_path_factory):
    name = request.param
    spec = detectors()[name]
    out = spec.create(**spec.test_params).fit(_tiny_set(16, seed=0), tmp_path_factory.mktemp(name), seed=0)
    return name, out


def test_training_reduces_the_loss(trained):
    _, out = trained
    losses = json.loads((out / "manifest.json").read_text())["extra"]["training"]["train_loss"]
    assert np.mean(losses[-2:]) < 0.5 * losses[0]


def test_checkpoint_reloads_and_separates_held_out_images(trained):
    name, out = trained
    spec = detectors()[name]
    det = spec.create(**spec.test_params, checkpoint=str(out))
    det.load("cpu")
    test = _tiny_set(20, seed=1)
    scores = det.score([test.image(i) for i in range(len(test))])
    assert roc_auc_score(test.labels, scores) > 0.8


def test_batched_scores_equal_one_at_a_time_across_sizes(trained):
    name, out = trained
    spec = detectors()[name]
    det = spec.create(**spec.test_params, checkpoint=str(out))
    det.load("cpu")
    rng = np.random.default_rng(5)
    images = [_image(i % 2, rng, size) for i, size in enumerate([64, 48, 64, 40, 48, 64])]
    batched = det.score_batch([det.preprocess(im) for im in images])
    single = np.concatenate([det.score_batch([det.preprocess(im)]) for im in images])
    np.testing.assert_allclose(batched, single, atol=1e-5)


def test_manifest_says_training_started_from_scratch(trained):
    name, out = trained
    extra = json.loads((out / "manifest.json").read_text())["extra"]
    if name == "univfd":
        assert extra["clip"]["random_seed"] == 0 and "testing only" in extra["clip"]["note"]
    else:
        assert extra["init"] == {"kind": "scratch"}


def test_training_from_a_checkpoint_records_it(trained, tmp_path):
    name, out = trained
    if name == "univfd":
        pytest.skip("univfd's backbone is frozen; its head always starts anew")
    spec = detectors()[name]
    again = spec.create(**{**spec.test_params, "epochs": 1}, init=str(out)).fit(_tiny_set(8, seed=2), tmp_path)
    init = json.loads((again / "manifest.json").read_text())["extra"]["init"]
    assert init["kind"] == "checkpoint" and init["sha256"] == json.loads((out / "manifest.json").read_text())["weights_sha256"]


def test_cnnspot_starts_from_an_imagenet_classifier_with_a_new_head(tmp_path):
    import torchvision

    torch.save(torchvision.models.resnet18(num_classes=1000).state_dict(), tmp_path / "imagenet.pth")
    spec = detectors()["cnnspot"]
    out = spec.create(**{**spec.test_params, "epochs": 1}, init=str(tmp_path / "imagenet.pth")).fit(
        _tiny_set(8, seed=3), tmp_path / "ckpt")
    assert json.loads((out / "manifest.json").read_text())["extra"]["init"]["kind"] == "imagenet-classifier"


def test_cnnspot_checkpoint_of_another_arch_is_refused_with_the_fix(trained):
    name, out = trained
    if name != "cnnspot":
        pytest.skip("arch is a cnnspot parameter")
    with pytest.raises(CheckpointError, match="arch='resnet18'"):
        detectors()["cnnspot"].create(checkpoint=str(out), arch="resnet50").load("cpu")
