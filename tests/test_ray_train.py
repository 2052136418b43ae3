"""Data-parallel pretext training on Ray Train: 2 CPU workers (gloo) of a tiny preset.

One 2-worker run through the command line (module fixture) serves several tests; its first
step is checked against one process stepping on the union of the two workers' batches.
"""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from harness.api import ConfigError
from harness.cli import main
from harness.data.layouts import read_real_only
from harness.checkpoint import load_state_dict_strict, read_checkpoint
from harness.train.jobs import run_training, training_set
from detectors.exif.model import BackboneConfig, PretextNet
from detectors.exif.pretext import ExifBackboneTrainer, PairBatch, PhotoBank
from tests.helpers import exif_photo, write_train_config

SEED = 3
# one step, 2 pairs per worker, 2 crops of 16 px per photo: seconds of compute, the rest is Ray
PARAMS = {"preset": "cpu-small", "steps": 1, "batch_pairs": 4, "n_crops": 2, "width": 4, "patch_size": 16,
          "lr": 1e-3, "workers": 2}


def _write_photos(folder: Path, n: int = 8) -> Path:
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(n):
        exif_photo(folder / f"p{i}.jpg", rng, ["Canon", "Nikon"][i % 2], [2.8, 4.0, 8.0][i % 3], 100 * (1 + i % 4))
    return folder


def _config(path: Path, photos: Path, params: dict) -> Path:
    return write_train_config(path, run={"seed": SEED},
                              datasets=[{"name": "reals", "layout": "real-only", "root": photos}], params=params)


def _train(tmp: Path, photos: Path, params: dict, out: Path) -> Path:
    assert main(["train", "exif-backbone", "--config", str(_config(tmp / "train.toml", photos, params)),
                 "--out", str(out)]) == 0
    return out


@pytest.fixture(scope="module")
def two_workers(ray_session, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("ray_train")
    photos = _write_photos(tmp / "photos")
    return photos, _train(tmp, photos, PARAMS, tmp / "backbone")


def _single_process_step(photos: Path, pairs_per_worker: int, ranks=(0, 1)) -> tuple[PretextNet, dict]:
    """One process stepping once on the pairs that the workers ``ranks`` (of 2) drew."""
    trainer = ExifBackboneTrainer(**{**PARAMS, "workers": 1})
    cfg = trainer.config
    train = training_set(read_real_only(photos))
    parts = [trainer.draw_batch(PhotoBank(train, cfg.patch_size, cfg.cache_side, shard=(r, 2)),
                                np.random.default_rng((SEED, r)), pairs_per_worker) for r in ranks]
    batch = PairBatch.join(parts)
    # DDP's mean of per-worker means is the mean over all pairs only when the masks agree
    assert ((batch.mask == batch.mask[:1]).all()), "every photo must carry the same tags"
    torch.manual_seed(SEED)
    net = PretextNet(BackboneConfig(width=cfg.width, patch_size=cfg.patch_size))
    opt = torch.optim.Adam(net.parameters(), lr=cfg.lr)
    trainer.step(net, opt, batch, "cpu")
    return net, opt.state_dict()


@pytest.mark.ray
def test_two_workers_write_a_loadable_checkpoint_recording_them(two_workers):
    _, out = two_workers
    weights, manifest = read_checkpoint(out, "exif-backbone")
    load_state_dict_strict(PretextNet(BackboneConfig(width=4, patch_size=16)), weights)
    assert manifest["config"]["workers"] == 2 and manifest["config"]["batch_pairs"] == 4
    assert manifest["extra"]["where"] == {"workers": 2, "use_gpu": False, "backend": "gloo"}
    assert manifest["extra"]["n_photos"] == 8


@pytest.mark.ray
def test_two_workers_write_the_loss_curve(two_workers):
    _, out = two_workers
    header, *rows = (out / "loss.csv").read_text().splitlines()
    assert header.startswith("step,loss,head0_FocalLength") and len(rows) == 1
    assert (out / "loss.png").stat().st_size > 0


def _gradients(opt_state: dict, net: PretextNet) -> dict[str, torch.Tensor]:
    """The gradients of Adam's first step (its ``exp_avg`` is then 0.1 x gradient), by
    parameter name; the fixed SRM filters have none."""
    names = [n for n, _ in net.named_parameters()]
    return {names[i]: s["exp_avg"] / 0.1 for i, s in opt_state["state"].items()}


@pytest.mark.ray
def test_two_workers_of_b_pairs_step_like_one_process_of_2b_pairs(two_workers):
    photos, out = two_workers
    net, opt = _single_process_step(photos, pairs_per_worker=2)
    state = torch.load(out / "state.pt", weights_only=True)
    ddp, one = _gradients(state["opt"], net), _gradients(opt, net)
    assert ddp.keys() == one.keys()
    scale = max(float(g.abs().max()) for g in one.values())
    assert max(float((ddp[k] - one[k]).abs().max()) for k in one) < 1e-5 * scale
    # Adam's first update is lr * g / (|g| + eps), about lr * sign(g): where the true gradient is 0
    # (ranking-head biases cancel in s1 - s2) float noise of either side moves the weight by up to lr
    weights = net.state_dict()
    for name, g in one.items():
        moved = g.abs() > 1e-6 * scale
        assert torch.allclose(state["net"][name][moved], weights[name][moved], atol=1e-6), name
    half = _gradients(_single_process_step(photos, pairs_per_worker=2, ranks=(0,))[1], net)
    assert max(float((half[k] - one[k]).abs().max()) for k in one) > 1e-2 * scale  # the check can fail


@pytest.mark.slow
@pytest.mark.ray
def test_two_workers_resume_from_their_checkpoint(two_workers, tmp_path):
    photos, one_step = two_workers
    shutil.copytree(one_step, tmp_path / "resumed")
    resumed = _train(tmp_path, photos, {**PARAMS, "steps": 3}, tmp_path / "resumed")
    straight = _train(tmp_path, photos, {**PARAMS, "steps": 3}, tmp_path / "straight")
    wr = torch.load(resumed / "weights.pt", weights_only=True)
    ws = torch.load(straight / "weights.pt", weights_only=True)
    assert all(torch.allclose(wr[k], ws[k], atol=1e-6) for k in ws)
    assert (resumed / "loss.csv").read_text().splitlines()[1] == (one_step / "loss.csv").read_text().splitlines()[1]


def test_global_batch_must_split_evenly_over_the_workers():
    with pytest.raises(ConfigError, match="batch_pairs=5 is the global batch"):
        ExifBackboneTrainer(**{**PARAMS, "batch_pairs": 5})


def test_workers_above_one_refuse_to_train_in_one_process(tmp_path):
    with pytest.raises(ConfigError, match="workers=2 trains through Ray Train"):
        ExifBackboneTrainer(**PARAMS).fit(training_set([]), tmp_path / "x")


@pytest.mark.ray
def test_gpu_workers_beyond_the_clusters_gpus_are_refused_before_starting(ray_session, tmp_path):
    photos = _write_photos(tmp_path / "photos", n=4)
    with pytest.raises(ConfigError, match="workers=2 on GPUs needs 2 GPUs"):
        run_training("exif-backbone", {**PARAMS, "use_gpu": True}, read_real_only(photos), tmp_path / "out")


@pytest.mark.ray
def test_trainers_without_data_parallel_support_are_refused(ray_session, tmp_path):
    with pytest.raises(ConfigError, match="spectrum does not train data-parallel"):
        run_training("spectrum", {"workers": 2}, read_real_only(_write_photos(tmp_path / "p", n=2)),
                     tmp_path / "out")
