"""The DCGAN generator of Radford et al., ICLR 2016, in the standard layout of the PyTorch
DCGAN tutorial (latent 100 -> 64x64 RGB), used to sample GAN fakes for the offline zoo.

The weights come from the PyPI package ``gan-face-generate`` (MIT; file
``gan_face_generate/weights.tar``, key ``netG_state_dict``), read directly from the wheel
without installing that package or its dependencies.

Sample ``i`` is the ``i``-th latent of a seeded draw, the same on every machine; its pixels
are float computations and may differ slightly by CPU (vectorised kernels round
differently), so the zoo identifies a face by its index, never by its pixels.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import nn

from harness.api import CheckpointError
from harness.checkpoint import load_state_dict_strict

__all__ = ["DCGANGenerator", "load_generator", "sample_images"]


def _up(cin: int, cout: int, first: bool = False) -> list[nn.Module]:
    conv = nn.ConvTranspose2d(cin, cout, 4, 1 if first else 2, 0 if first else 1, bias=False)
    return [conv, nn.BatchNorm2d(cout), nn.ReLU(True)]


class DCGANGenerator(nn.Module):
    def __init__(self, nz: int = 100, ngf: int = 64, nc: int = 3):
        super().__init__()
        self.nz = nz
        self.main = nn.Sequential(
            *_up(nz, ngf * 8, first=True), *_up(ngf * 8, ngf * 4), *_up(ngf * 4, ngf * 2), *_up(ngf * 2, ngf),
            nn.ConvTranspose2d(ngf, nc, 4, 2, 1, bias=False), nn.Tanh(),
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.main(z)


def load_generator(path: str | Path) -> DCGANGenerator:
    checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(checkpoint, dict) or "netG_state_dict" not in checkpoint:
        raise CheckpointError(f"{path}: expected a dict with key 'netG_state_dict' (gan-face-generate format)")
    model = DCGANGenerator()
    load_state_dict_strict(model, checkpoint["netG_state_dict"], str(path))
    return model.eval()


@torch.inference_mode()
def sample_images(model: DCGANGenerator, n: int, seed: int = 0) -> list[Image.Image]:
    """``n`` 64x64 RGB faces from latents drawn with a seeded generator."""
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(n, model.nz, 1, 1, generator=g)
    out = model(z).clamp(-1, 1).add(1).mul(127.5).round().to(torch.uint8)
    return [Image.fromarray(np.ascontiguousarray(x.permute(1, 2, 0).numpy())) for x in out]
