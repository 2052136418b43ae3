"""Fast, exact-up-to-rounding inference for :class:`~detectors.exif.model.SDAIEBackbone`.

Three changes, none of which alters the arithmetic beyond float rounding:

1. The fixed SRM stage and the first 3x3 convolution are both linear, so they compose
   into one 3 -> width 7x7 convolution (25 x fewer multiply-adds for that stage). The
   composition differs from the original only on the one-pixel frame of each tile, where
   the original zero-pads the 90 residual maps; there the composed kernel adds the
   contribution of residuals just outside the tile, which is computed from the tile's
   outer two pixels and subtracted, so the result is the original's everywhere.
2. Activations are kept channels-last, which oneDNN convolves much faster on CPU; the
   LayerNorms over (C, H, W) run on the (H, W, C) view of the same memory (same
   statistics, same affine map), so no layout conversion happens between layers.
3. Tiles of many images go through the CNN together in chunks; the set transformer then
   runs on images grouped by tile count (no padding, so no masking is needed).
"""
from __future__ import annotations

from collections import defaultdict
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from detectors.exif.model import SDAIEBackbone

__all__ = ["FastExtractor", "compose_stem"]


def compose_stem(hpf: torch.Tensor, conv_w: torch.Tensor) -> torch.Tensor:
    """The 7x7 kernel of ``conv(conv_per_channel(x, hpf), conv_w)`` (in float64, then float32).

    ``hpf`` is (30, 1, 5, 5) applied to each of the 3 colour channels; ``conv_w`` is
    (width, 90, 3, 3) over channels ordered colour-major (channel c*30 + k).
    """
    h = hpf[:, 0].double()
    w = conv_w.double().reshape(conv_w.shape[0], 3, h.shape[0], 3, 3)
    k = torch.zeros(conv_w.shape[0], 3, 7, 7, dtype=torch.float64, device=conv_w.device)
    for qy in range(3):
        for qx in range(3):
            k[:, :, qy:qy + 5, qx:qx + 5] += torch.einsum("ock,kyx->ocyx", w[..., qy, qx], h)
    return k.float()


class FastExtractor(nn.Module):
    """Wraps a backbone (sharing its weights) for batched inference; build it after
    loading the weights, since the composed stem is computed once here."""

    def __init__(self, backbone: SDAIEBackbone, chunk: int = 64):
        super().__init__()
        self.backbone = backbone.eval()
        self.chunk = chunk
        conv = backbone.group1_b[0]
        hpf = backbone.group1.hpf.weight
        self.register_buffer("stem_w", compose_stem(hpf, conv.weight).contiguous(memory_format=torch.channels_last))
        self.register_buffer("hpf3", hpf.repeat(3, 1, 1, 1))
        self.backbone.to(memory_format=torch.channels_last)
        # LayerNorm affine maps in (H, W, C) order, made once instead of at every call
        self._ln_hwc = {id(m): (m.weight.detach().permute(1, 2, 0).contiguous(),
                                m.bias.detach().permute(1, 2, 0).contiguous())
                        for m in backbone.modules() if isinstance(m, nn.LayerNorm) and m.weight.dim() == 3}

    def _outside_rows(self, x: torch.Tensor, hpf: torch.Tensor, weight: torch.Tensor,
                      corners: bool) -> tuple[torch.Tensor, torch.Tensor]:
        """What the composed convolution wrongly adds to output rows 0 and P-1: the
        contributions of the residual rows -1 and P, which the original pads with zeros.
        ``corners=False`` leaves out their end points (counted once, by the other axis)."""
        p = x.shape[2]
        res = F.conv2d(torch.cat([F.pad(x[:, :, :2], (0, 0, 3, 0)), F.pad(x[:, :, p - 2:], (0, 0, 0, 3))]),
                       hpf, padding=(0, 3), groups=3)  # residual rows -1 and P, columns -1..P
        if not corners:
            res[..., 0], res[..., -1] = 0, 0
        t = x.shape[0]
        return F.conv2d(res[:t], weight[:, :, :1]), F.conv2d(res[t:], weight[:, :, 2:])

    def stem_conv(self, x: torch.Tensor) -> torch.Tensor:
        """group1 + the first convolution of group1_b, for (T, 3, P, P) tiles."""
        conv = self.backbone.group1_b[0]
        out = F.conv2d(x, self.stem_w, conv.bias, padding=3)
        top, bottom = self._outside_rows(x, self.hpf3, conv.weight, corners=True)
        # columns are rows of the transposed tile convolved with transposed kernels
        left, right = self._outside_rows(x.transpose(2, 3), self.hpf3.transpose(2, 3),
                                         conv.weight.transpose(2, 3), corners=False)
        out[:, :, :1] -= top
        out[:, :, -1:] -= bottom
        out[..., :1] -= left.transpose(2, 3)
        out[..., -1:] -= right.transpose(2, 3)
        return out

    def tile_descriptors(self, tiles: torch.Tensor) -> torch.Tensor:
        """(T, 3, P, P) -> (T, D) covariance vectors, in chunks of ``self.chunk`` tiles."""
        out = []
        for part in tiles.split(self.chunk):
            x = self.stem_conv(part.contiguous(memory_format=torch.channels_last))
            for layer in list(self.backbone.group1_b)[1:] + self._cnn_layers():
                x = _apply_channels_last(layer, x, self._ln_hwc)
            out.append(self.backbone.cnn_head(x))
        return torch.cat(out)

    def _cnn_layers(self) -> list[nn.Module]:
        b = self.backbone
        return [*b.group2, *b.group3, *b.group4, *b.group5]


    def forward(self, images: Sequence[torch.Tensor]) -> torch.Tensor:
        """A list of (n_i, 3, P, P) tile sets -> (len(images), D) features."""
        device = self.stem_w.device
        counts = [len(t) for t in images]
        desc = self.tile_descriptors(torch.cat(list(images)).to(device)).split(counts)
        groups: dict[int, list[int]] = defaultdict(list)
        for i, n in enumerate(counts):
            groups[n].append(i)
        feats = torch.empty(len(images), desc[0].shape[1], device=device, dtype=desc[0].dtype)
        for idx in groups.values():
            feats[idx] = self.backbone.aggregate(torch.stack([desc[i] for i in idx]))
        return feats


def _apply_channels_last(layer: nn.Module, x: torch.Tensor, ln_hwc: dict) -> torch.Tensor:
    if isinstance(layer, nn.LayerNorm):
        w, b = ln_hwc[id(layer)]
        y = F.layer_norm(x.permute(0, 2, 3, 1), w.shape, w, b, layer.eps)
        return y.permute(0, 3, 1, 2)
    if isinstance(layer, nn.ReLU):
        return x.relu_()
    if isinstance(layer, nn.Hardtanh):
        return x.clamp_(layer.min_val, layer.max_val)
    return layer(x)
