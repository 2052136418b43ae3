"""The prepared GPU check (tests/benchmarks/gpu_check.py), run end to end with ``--cpu``.

GPU time is short, so the check must work the first time it meets a GPU: every step runs
here at tiny sizes on the CPU, through the same code (the precision switch, the sweep
engine with per-detector actors, one-worker Ray Train), and its report is checked.
"""
from __future__ import annotations

import importlib.util
import math
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).parent / "benchmarks" / "gpu_check.py"


def _module():
    if "gpu_check" in sys.modules:
        return sys.modules["gpu_check"]
    spec = importlib.util.spec_from_file_location("gpu_check", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules["gpu_check"] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


@pytest.mark.ray
def test_gpu_check_cpu_mode_runs_every_step_and_reports(ray_session, tmp_path):
    check = _module()
    report, rows = check.run_check(check.CPU, tmp_path / "report.md", log=lambda _: None)
    assert (tmp_path / "report.md").read_text().strip() == report.strip()
    for heading in ("## 1. EXIF detectors", "## 2. Baselines", "## 3. Pretext training", "## 4. One sweep"):
        assert heading in report

    # 1: every detector x size has the authors' way and the three precisions
    exif = rows["exif"]
    assert len(exif) == 2 * len(check.CPU.sizes) * (1 + len(check.PRECISIONS))
    for det in ("exif-bc", "exif-oc"):
        for side in check.CPU.sizes:
            ways = {r[4] for r in exif if r[0] == det and r[1] == f"{side}²"}
            assert ways == {"authors' way (fp32)", *(f"{det} {p}" for p in check.PRECISIONS)}
    by_way = {(r[0], r[1], r[4]): r for r in exif}
    for side in check.CPU.sizes:
        # the batched fast path is the authors' arithmetic; on CPU tf32 is fp32
        bc = by_way[("exif-bc", f"{side}²", "exif-bc fp32")]
        assert bc[7] < 1e-4 and bc[10] == 0.0
        assert by_way[("exif-bc", f"{side}²", "exif-bc tf32")][7] == bc[7]
        oc = by_way[("exif-oc", f"{side}²", "exif-oc fp32")]
        assert oc[8] < 1e-3  # relative to the range of the authors' scores
    assert all(r[5] > 0 and math.isfinite(r[5]) for r in exif)
    assert all(0.0 <= r[9] <= 1.0 for r in exif)

    # 2: each baseline swept alone: every image scored, a model-busy time recorded
    assert [r[0] for r in rows["baselines"]] == ["cnnspot", "npr", "spectrum"]
    for name, cells, wall, *_ in rows["baselines"]:
        assert cells == 2 * check.CPU.sweep_images and wall > 0
    assert all("n/a" in r[-1] for r in rows["baselines"])  # no GPU to sample here

    # 3: one process and one Ray Train worker (gloo on CPU) both train and report pairs/s
    assert [r[0].split(",")[0] for r in rows["pretext"]] == ["one process", "Ray Train"]
    assert all(r[4] > 0 for r in rows["pretext"])
    assert rows["pretext"][1][6] == {"workers": 1, "use_gpu": False, "backend": "gloo"}

    # 4: the full sweep: 5 detectors x 2 perturbations x every image, time split recorded
    (cells, wall, load, prep, busy, *_), = rows["sweep"]
    assert cells == 5 * 2 * 2 * check.CPU.sweep_images
    assert wall > 0 and load > 0 and prep > 0 and busy > 0


def test_gpu_check_refuses_to_run_without_a_gpu_unless_asked(monkeypatch, capsys):
    check = _module()
    monkeypatch.setattr(check.torch.cuda, "is_available", lambda: False)
    with pytest.raises(SystemExit):
        check.main([])
    assert "--cpu" in capsys.readouterr().err


def test_numeric_precision_restores_torch_settings_and_is_validated():
    import torch

    from harness.api import ConfigError
    from harness.detector import check_precision, numeric_precision

    matmul, conv = torch.backends.cuda.matmul, torch.backends.cudnn.conv
    before = matmul.fp32_precision, conv.fp32_precision
    with numeric_precision("fp32", "cpu"):
        assert (matmul.fp32_precision, conv.fp32_precision) == ("ieee", "ieee")  # no TF32 convolutions on CUDA
    with numeric_precision("tf32", "cpu"):
        assert (matmul.fp32_precision, conv.fp32_precision) == ("tf32", "tf32")
    with numeric_precision("bf16", "cpu"):
        assert (torch.ones(2, 2) @ torch.ones(2, 2)).dtype == torch.bfloat16
    assert (matmul.fp32_precision, conv.fp32_precision) == before
    assert (torch.ones(2, 2) @ torch.ones(2, 2)).dtype == torch.float32
    with pytest.raises(ConfigError, match="fp16"):
        check_precision("exif-bc", "fp16")
