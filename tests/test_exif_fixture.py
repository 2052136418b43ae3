"""The authors' released checkpoint formats load and reproduce their numbers (shared
parity fixture: ../shared/fixtures/sdaie, made by running the authors' code)."""
from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision
from PIL import Image
from scipy.ndimage import gaussian_filter

import harness
from harness.api import CheckpointError
from detectors.exif.srm import srm_filters
from detectors.exif.tiling import tile_image

FIXTURE = Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "sdaie"
#: set to 1 where the fixture must be present (CI): its absence then fails instead of skipping
REQUIRE = "EXIFBENCH_REQUIRE_SHARED"
TOL = 1e-4


@pytest.fixture(autouse=True, scope="module")
def parity_fixture_present():
    if (FIXTURE / "expected.pt").is_file():
        return
    if os.environ.get(REQUIRE) == "1":
        pytest.fail(f"SDAIE parity fixture not found at {FIXTURE} and {REQUIRE}=1: check out the shared "
                    f"folder beside the repository (../shared/fixtures/sdaie), or unset {REQUIRE} to skip",
                    pytrace=False)
    pytest.skip(f"SDAIE parity fixture not found at {FIXTURE} (set {REQUIRE}=1 to make this a failure)")


def _authors_perturbation(image: Image.Image, name: str) -> Image.Image:
    """The evaluation perturbations exactly as the authors' utils.py applies them."""
    if name == "jpeg95":
        buf = io.BytesIO()
        image.save(buf, format="jpeg", quality=95)
        return Image.fromarray(np.array(Image.open(buf)))
    if name == "resize0.5":
        return torchvision.transforms.Resize((int(image.height * 0.5), int(image.width * 0.5)))(image)
    if name == "blur1.0":
        arr = np.array(image)
        for c in range(3):
            gaussian_filter(arr[:, :, c], output=arr[:, :, c], sigma=1.0)
        return Image.fromarray(arr)
    return image


@pytest.fixture(scope="module")
def expected() -> dict:
    return torch.load(FIXTURE / "expected.pt", weights_only=True)


@pytest.fixture(scope="module")
def cases(expected) -> list[tuple[str, Image.Image, dict]]:
    out = []
    for key, value in expected.items():
        stem, pert = key.split("/")
        image = Image.open(FIXTURE / f"{stem}.png").convert("RGB")
        out.append((key, _authors_perturbation(image, pert), value))
    return out


def test_srm_bank_equals_the_checkpoints_fixed_filters():
    state = torch.load(FIXTURE / "backbone_checkpoint.pth", weights_only=True)["state_net"]
    assert np.array_equal(state["module.backbone.group1.hpf.weight"][:, 0].numpy(), srm_filters())


def test_official_tiling_reproduces_the_authors_tiles(cases):
    for key, image, want in cases:
        tiles = tile_image(image, 64, "official")
        assert tiles.shape == want["patches"].shape, key
        assert torch.allclose(tiles, want["patches"], atol=1e-6), key


def test_exif_bc_reproduces_the_authors_probabilities(cases):
    det = harness.load_detector("exif-bc", checkpoint=str(FIXTURE / "bc_checkpoint.pth"), tiling="official")
    scores = det.score([image for _, image, _ in cases])
    want = np.array([v["p_fake"] for _, _, v in cases])
    assert np.abs(scores - want).max() < TOL


def test_exif_oc_features_reproduce_the_authors_features(cases):
    det = harness.load_detector("exif-oc", backbone=str(FIXTURE / "backbone_checkpoint.pth"), tiling="official")
    feats = det.features([image for _, image, _ in cases])
    assert feats.shape == (len(cases), 528)
    for (key, _, want), got in zip(cases, feats):
        assert np.abs(got - want["f"].numpy()).max() < TOL, key


def test_backbone_intermediates_match_the_fixture(cases):
    from detectors.exif.weights import load_backbone

    backbone = load_backbone(FIXTURE / "backbone_checkpoint.pth").eval()
    with torch.no_grad():
        for key, _, want in [c for c in cases if c[0].endswith("/none")]:  # the reference path is slow
            f, f1, *_, f5 = backbone(want["patches"][None])
            assert torch.allclose(f5[0], want["f5"], atol=TOL), key
            assert torch.allclose(f1.mean(dim=(1, 2, 3)), want["f1_mean"], atol=TOL), key


def test_exif_oc_with_only_a_backbone_refuses_to_score(cases):
    det = harness.load_detector("exif-oc", backbone=str(FIXTURE / "backbone_checkpoint.pth"))
    with pytest.raises(CheckpointError, match="fit"):
        det.score([cases[0][1]])


def test_bc_checkpoint_given_as_backbone_is_rejected_with_key_names():
    with pytest.raises(CheckpointError, match=r"missing keys.*backbone\..*unexpected keys.*diffusionextractor"):
        harness.load_detector("exif-oc", backbone=str(FIXTURE / "bc_checkpoint.pth"))


def test_backbone_checkpoint_given_as_bc_is_rejected_with_key_names():
    with pytest.raises(CheckpointError, match=r"missing keys.*diffusionextractor.*unexpected keys.*backbone\."):
        harness.load_detector("exif-bc", checkpoint=str(FIXTURE / "backbone_checkpoint.pth"))


def test_harness_perturbations_equal_the_authors_evaluation_perturbations():
    image = Image.open(FIXTURE / "landscape_300x200.png").convert("RGB")
    for spec, name in (("jpeg(quality=95)", "jpeg95"), ("resize(scale=0.5)", "resize0.5"), ("blur(sigma=1.0)", "blur1.0")):
        ours, theirs = np.asarray(harness.perturb(spec, image)), np.asarray(_authors_perturbation(image, name))
        assert ours.shape == theirs.shape and np.array_equal(ours, theirs), spec
