"""UnivFD: the authors' head format loads strictly, CLIP weights load strictly, and the
detector trains as a linear probe.

Layout (github.com/WisconsinAIVision/UniversalFakeDetect): ``validate.py`` loads
``pretrained_weights/fc_weights.pth`` with ``model.fc.load_state_dict``, ``fc = Linear(768, 1)``,
so the file holds ``weight`` (1, 768) and ``bias`` (1,); ``networks/base_model.py`` saves
``{"model": model.state_dict(), "optimizer": ..., "total_steps": int}`` during training. The
CLIP here is the bundled ``tiny-test-clip`` config (embedding width 64) with random weights,
through the same open_clip code path as ViT-L/14.
"""
from __future__ import annotations

import pytest
import torch
from PIL import Image

from harness.api import CheckpointError
from harness.plugins import detectors

pytest.importorskip("open_clip", reason="univfd needs the optional dependency open_clip_torch")


def _image(size: int = 64, seed: int = 0) -> Image.Image:
    g = torch.Generator().manual_seed(seed)
    return Image.fromarray(torch.randint(0, 256, (size, size, 3), generator=g, dtype=torch.uint8).numpy())


TINY = {"clip_model": "tiny-test-clip", "crop": 32}


def _tiny_clip_file(tmp_path, visual_only: bool = False):
    from detectors.univfd.model import build_clip

    torch.manual_seed(3)
    state = build_clip("tiny-test-clip").state_dict()
    if visual_only:
        state = {k: v for k, v in state.items() if k.startswith("visual.")}
    torch.save(state, tmp_path / "clip.pt")
    return str(tmp_path / "clip.pt")


def test_univfd_loads_the_released_fc_weights_format(tmp_path):
    torch.save({"weight": torch.randn(1, 64), "bias": torch.randn(1)}, tmp_path / "fc_weights.pth")
    det = detectors()["univfd"].create(**TINY, clip_weights=_tiny_clip_file(tmp_path),
                                       checkpoint=str(tmp_path / "fc_weights.pth"))
    det.load("cpu")
    assert det.fc_.weight.shape == (1, 64) and 0.0 <= det.score([_image(40)])[0] <= 1.0


def test_univfd_takes_the_head_from_the_authors_training_save(tmp_path):
    save = {"model": {"model.visual.proj": torch.zeros(3), "fc.weight": torch.ones(1, 64), "fc.bias": torch.ones(1)},
            "optimizer": {"state": {}, "param_groups": []}, "total_steps": 9}
    torch.save(save, tmp_path / "model_epoch_best.pth")
    det = detectors()["univfd"].create(**TINY, clip_weights=_tiny_clip_file(tmp_path, visual_only=True),
                                       checkpoint=str(tmp_path / "model_epoch_best.pth"))
    det.load("cpu")
    assert torch.equal(det.fc_.weight, torch.ones(1, 64))


def test_univfd_refuses_a_head_of_the_wrong_width_naming_the_key(tmp_path):
    torch.save({"weight": torch.randn(1, 768), "bias": torch.randn(1)}, tmp_path / "fc_weights.pth")
    det = detectors()["univfd"].create(**TINY, clip_weights=_tiny_clip_file(tmp_path),
                                       checkpoint=str(tmp_path / "fc_weights.pth"))
    with pytest.raises(CheckpointError, match=r"weight: checkpoint \(1, 768\) vs model \(1, 64\)"):
        det.load("cpu")


def test_univfd_refuses_clip_weights_of_another_model_naming_the_keys(tmp_path):
    torch.save({"weight": torch.randn(1, 64), "bias": torch.randn(1)}, tmp_path / "fc.pth")
    torch.save({"visual.conv1.weight": torch.zeros(64, 3, 4, 4), "visual.extra": torch.zeros(1)}, tmp_path / "clip.pt")
    det = detectors()["univfd"].create(**TINY, clip_weights=str(tmp_path / "clip.pt"), checkpoint=str(tmp_path / "fc.pth"))
    with pytest.raises(CheckpointError, match=r"missing keys .*unexpected keys \['extra'\]"):
        det.load("cpu")


def test_univfd_without_clip_weights_says_what_to_give(tmp_path):
    torch.save({"weight": torch.randn(1, 64), "bias": torch.randn(1)}, tmp_path / "fc.pth")
    with pytest.raises(CheckpointError, match="needs clip_weights=PATH"):
        detectors()["univfd"].create(**TINY, checkpoint=str(tmp_path / "fc.pth")).load("cpu")
    with pytest.raises(CheckpointError, match="do not exist"):
        detectors()["univfd"].create(**TINY, clip_weights=str(tmp_path / "none.pt"),
                                     checkpoint=str(tmp_path / "fc.pth")).load("cpu")
