"""The authors' checkpoint layouts load strictly; wrong ones are refused with the key names.

Key names and shapes are built here from the authors' code, independently of our modules:
- CNNSpot (github.com/PeterWang512/CNNDetection, ``networks/resnet.py`` = torchvision's
  ResNet-50 with ``num_classes=1``; ``networks/base_model.py`` saves
  ``{"model": state_dict, "optimizer": ..., "total_steps": int}``);
- NPR (github.com/chuangchuangtan/NPR-DeepfakeDetection, ``networks/resnet.py``: 3x3 stride-2
  ``conv1``, ``layer1`` (3 Bottlenecks) and ``layer2`` (4), ``fc1 = Linear(512, 1)``; ``NPR.pth``
  is a bare state dict).
UnivFD's layout is tested in ``test_baseline_univfd.py`` (it needs the optional open_clip).
"""
from __future__ import annotations

import pytest
import torch
from PIL import Image

from harness.api import CheckpointError
from harness.plugins import detectors


def _bn(prefix: str, n: int) -> dict[str, tuple[int, ...]]:
    return {f"{prefix}.weight": (n,), f"{prefix}.bias": (n,), f"{prefix}.running_mean": (n,),
            f"{prefix}.running_var": (n,), f"{prefix}.num_batches_tracked": ()}


def _bottleneck_resnet_keys(stem: tuple[int, ...], layers: list[int], head: str, n_out: int) -> dict:
    """Key -> shape of a Bottleneck ResNet (expansion 4, stride on the 3x3 conv)."""
    keys = {"conv1.weight": stem, **_bn("bn1", 64)}
    inplanes = 64
    for li, (planes, blocks) in enumerate(zip((64, 128, 256, 512), layers), start=1):
        for b in range(blocks):
            p = f"layer{li}.{b}"
            keys.update({f"{p}.conv1.weight": (planes, inplanes, 1, 1), **_bn(f"{p}.bn1", planes),
                         f"{p}.conv2.weight": (planes, planes, 3, 3), **_bn(f"{p}.bn2", planes),
                         f"{p}.conv3.weight": (planes * 4, planes, 1, 1), **_bn(f"{p}.bn3", planes * 4)})
            if b == 0:
                keys.update({f"{p}.downsample.0.weight": (planes * 4, inplanes, 1, 1),
                             **_bn(f"{p}.downsample.1", planes * 4)})
            inplanes = planes * 4
    keys.update({f"{head}.weight": (1, n_out), f"{head}.bias": (1,)})
    return keys


CNNSPOT_KEYS = _bottleneck_resnet_keys((64, 3, 7, 7), [3, 4, 6, 3], "fc", 2048)
NPR_KEYS = _bottleneck_resnet_keys((64, 3, 3, 3), [3, 4], "fc1", 512)


def _state(keys: dict[str, tuple[int, ...]], seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    state = {}
    for k, shape in keys.items():
        if k.endswith("num_batches_tracked"):
            state[k] = torch.tensor(7)
        elif k.endswith("running_var"):
            state[k] = torch.rand(shape, generator=g) + 0.5
        else:
            state[k] = torch.randn(shape, generator=g) * 0.05
    return state


def _image(size: int = 64, seed: int = 0) -> Image.Image:
    g = torch.Generator().manual_seed(seed)
    return Image.fromarray(torch.randint(0, 256, (size, size, 3), generator=g, dtype=torch.uint8).numpy())


def test_layouts_stated_here_have_the_authors_sizes():
    assert len(CNNSPOT_KEYS) == 320 and CNNSPOT_KEYS["layer4.2.bn3.weight"] == (2048,)
    assert len(NPR_KEYS) == 146 and NPR_KEYS["layer2.0.downsample.0.weight"] == (512, 256, 1, 1)


def test_cnnspot_loads_the_authors_model_entry_strictly(tmp_path):
    state = _state(CNNSPOT_KEYS)
    torch.save({"model": state, "optimizer": {"state": {}, "param_groups": []}, "total_steps": 3}, tmp_path / "w.pth")
    det = detectors()["cnnspot"].create(checkpoint=str(tmp_path / "w.pth"))
    det.load("cpu")
    assert all(torch.equal(det.model_.state_dict()[k], v) for k, v in state.items())
    assert 0.0 <= det.score([_image()])[0] <= 1.0


def test_cnnspot_accepts_a_bare_state_dict_with_module_prefix_and_no_batch_counters(tmp_path):
    state = {f"module.{k}": v for k, v in _state(CNNSPOT_KEYS).items() if not k.endswith("num_batches_tracked")}
    torch.save(state, tmp_path / "w.pth")
    det = detectors()["cnnspot"].create(checkpoint=str(tmp_path / "w.pth"))
    det.load("cpu")
    assert torch.equal(det.model_.state_dict()["fc.bias"], state["module.fc.bias"])


def test_cnnspot_refuses_a_two_class_head_naming_the_key(tmp_path):
    state = _state(CNNSPOT_KEYS)
    state["fc.weight"], state["fc.bias"] = torch.zeros(2, 2048), torch.zeros(2)
    torch.save({"model": state}, tmp_path / "w.pth")
    with pytest.raises(CheckpointError, match=r"fc\.weight: checkpoint \(2, 2048\)"):
        detectors()["cnnspot"].create(checkpoint=str(tmp_path / "w.pth")).load("cpu")


def test_cnnspot_refuses_an_npr_checkpoint_naming_missing_and_unexpected_keys(tmp_path):
    torch.save(_state(NPR_KEYS), tmp_path / "npr.pth")
    with pytest.raises(CheckpointError, match=r"missing keys \[.*layer3.*unexpected keys \['fc1\.bias'"):
        detectors()["cnnspot"].create(checkpoint=str(tmp_path / "npr.pth")).load("cpu")


def test_npr_loads_the_released_bare_state_dict_strictly(tmp_path):
    state = _state(NPR_KEYS)
    torch.save(state, tmp_path / "NPR.pth")
    det = detectors()["npr"].create(checkpoint=str(tmp_path / "NPR.pth"))
    det.load("cpu")
    assert all(torch.equal(det.model_.state_dict()[k], v) for k, v in state.items())


def test_npr_drops_only_the_unused_fc_head_their_trainer_attaches(tmp_path):
    state = {**_state(NPR_KEYS), "fc.weight": torch.zeros(1, 2048), "fc.bias": torch.zeros(1)}
    torch.save(state, tmp_path / "trained.pth")
    detectors()["npr"].create(checkpoint=str(tmp_path / "trained.pth")).load("cpu")
    state["fc.weight"] = torch.zeros(1, 512)
    torch.save(state, tmp_path / "odd.pth")
    with pytest.raises(CheckpointError, match=r"unexpected keys \['fc\.bias', 'fc\.weight'\]"):
        detectors()["npr"].create(checkpoint=str(tmp_path / "odd.pth")).load("cpu")


def test_npr_refuses_a_cnnspot_checkpoint_naming_the_keys(tmp_path):
    torch.save({"model": _state(CNNSPOT_KEYS)}, tmp_path / "cnnspot.pth")
    with pytest.raises(CheckpointError, match=r"missing keys \['fc1\.bias', 'fc1\.weight'\].*conv1\.weight"):
        detectors()["npr"].create(checkpoint=str(tmp_path / "cnnspot.pth")).load("cpu")


def test_a_missing_checkpoint_is_an_error_not_random_weights(tmp_path):
    for name in ("cnnspot", "npr"):
        with pytest.raises(CheckpointError, match="does not exist"):
            detectors()[name].create(checkpoint=str(tmp_path / "nope.pth")).load("cpu")
        with pytest.raises(CheckpointError, match="needs `checkpoint = PATH`"):
            detectors()[name].create().load("cpu")
