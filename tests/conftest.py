"""Shared fixtures: an isolated cache folder, tiny generated datasets, one Ray session."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from harness.testing import synthetic_pair_images


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path_factory, monkeypatch):
    """Every test gets its own cache folder, so no test sees another's cached scores."""
    monkeypatch.setenv("EXIFBENCH_CACHE", str(tmp_path_factory.mktemp("cache")))


def write_binary_folders(root: Path, generators=("gana", "ganb"), n: int = 6, seed: int = 0) -> Path:
    """``root/<gen>/{0_real,1_fake}/*.png`` from the conformance kit's synthetic images."""
    for g, gen in enumerate(generators):
        images, labels = synthetic_pair_images(n, size=64, seed=seed + g)
        for i, (img, label) in enumerate(zip(images, labels)):
            folder = root / gen / ("1_fake" if label else "0_real")
            folder.mkdir(parents=True, exist_ok=True)
            img.save(folder / f"{i:03d}.png")
    return root


@pytest.fixture
def tiny_dataset(tmp_path) -> Path:
    return write_binary_folders(tmp_path / "data")


@pytest.fixture(scope="session")
def ray_session():
    """One local Ray for the whole test session (starting Ray costs seconds)."""
    from harness.runtime import ensure_ray, shutdown

    os.environ.pop("RAY_ADDRESS", None)
    ray = ensure_ray(num_cpus=2)
    yield ray
    shutdown()


def solid(color=(10, 200, 30), size=(32, 24), mode="RGB") -> Image.Image:
    return Image.new(mode, size, color)


def noise_image(size=(80, 60), seed=0) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8))


def spectrum_checkpoint(folder: Path, n_bins: int = 32, n: int = 8, seed: int = 0) -> str:
    """A `spectrum` checkpoint trained on the conformance kit's synthetic images (seconds)."""
    from harness.testing import synthetic_training_set
    from harness.train.jobs import fit_locally

    train = synthetic_training_set(folder / "train", n=n, seed=seed)
    return fit_locally("spectrum", {"n_bins": n_bins}, train.samples, folder / "ckpt")
