"""The SDAIE feature extractor: SRM residuals -> LayerNorm CNN -> covariance pooling ->
set transformer over the tiles of an image.

Paper: Nan Zhong et al., "Self-Supervised AI-Generated Image Detection: A Camera Metadata
Perspective", IEEE TPAMI. Upstream: github.com/Ekko-zn/SDAIE (``Classifier/Net.py``,
``Classifier/vit.py``; covariance pooling from iSQRT-COV, Li et al., CVPR 2018).

Module and parameter names follow the authors' code, so their ``state_dict`` with the
prefix ``module.backbone.`` removed loads into :class:`SDAIEBackbone` with ``strict=True``.
``forward`` repeats the authors' computation step by step (it is the reference);
:meth:`SDAIEBackbone.tile_descriptors` and :meth:`SDAIEBackbone.aggregate` are the fast
inference path (see :mod:`detectors.exif.fast`), equal to it up to float rounding.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn

from detectors.exif.srm import srm_filters

__all__ = ["BackboneConfig", "PAPER", "SDAIEBackbone", "Transformer", "PretextNet", "AuthorsBinaryNet",
           "BinaryNet", "covpool", "sqrtm_newton_schulz", "triuvec", "N_HEADS", "HEAD_SIZES"]

#: the 14 pretext heads of the authors' ``backbone_train.py`` (``fc1`` ... ``fc14``)
N_HEADS = 14
HEAD_SIZES = (1, 7, 1, 1, 1, 6, 4, 1, 1, 6, 4, 2, 1, 5)


@dataclass(frozen=True)
class BackboneConfig:
    """Architecture hyper-parameters; the defaults are the paper's (528-d features)."""

    width: int = 32          # channels of the CNN; the feature has width*(width+1)/2 dims
    patch_size: int = 64     # tile side; LayerNorm shapes depend on it (multiple of 8)
    heads: int = 4
    dim_head: int = 16
    mlp_dim: int = 128
    depth: int = 2
    ns_iters: int = 5        # Newton-Schulz iterations of the matrix square root

    @property
    def dim(self) -> int:
        return self.width * (self.width + 1) // 2

    def as_dict(self) -> dict:
        return asdict(self)


PAPER = BackboneConfig()


# --- covariance pooling (iSQRT-COV, as MPNCOV.py of the authors) ------------------------
def covpool(x: torch.Tensor) -> torch.Tensor:
    """(B, C, H, W) -> (B, C, C) sample covariance, computed as x Î xᵀ like MPNCOV."""
    b, c, h, w = x.shape
    m = h * w
    x = x.reshape(b, c, m)
    i_hat = (-1.0 / m / m) * torch.ones(m, m, device=x.device) + (1.0 / m) * torch.eye(m, device=x.device)
    return x.matmul(i_hat.to(x.dtype)).bmm(x.transpose(1, 2))


def sqrtm_newton_schulz(x: torch.Tensor, iters: int = 5) -> torch.Tensor:
    """Matrix square root of SPD matrices by ``iters`` coupled Newton-Schulz steps,
    pre-normalised by the trace and post-compensated, in MPNCOV's order of operations."""
    dim = x.shape[1]
    i3 = 3.0 * torch.eye(dim, device=x.device, dtype=x.dtype).expand_as(x)
    norm_a = (1.0 / 3.0) * x.mul(i3).sum(dim=1).sum(dim=1)
    a = x.div(norm_a.view(-1, 1, 1))
    zy = 0.5 * (i3 - a)
    if iters < 2:
        yzy = a.bmm(zy)
    else:
        y, z = a.bmm(zy), zy
        for _ in range(1, iters - 1):
            zy = 0.5 * (i3 - z.bmm(y))
            y, z = y.bmm(zy), zy.bmm(z)
        yzy = 0.5 * y.bmm(i3 - z.bmm(y))
    return yzy * torch.sqrt(norm_a).view(-1, 1, 1)


def triuvec(x: torch.Tensor) -> torch.Tensor:
    """(B, C, C) -> (B, C(C+1)/2): the upper triangle, row by row."""
    c = x.shape[1]
    rows, cols = torch.triu_indices(c, c, device=x.device)
    return x[:, rows, cols]


# --- set transformer (vit.py of the authors: pre-norm, no positional encoding) ----------
class PreNorm(nn.Module):
    def __init__(self, dim: int, fn: nn.Module):
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.fn = fn

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fn(self.norm(x))


class FeedForward(nn.Module):
    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Dropout(0.0), nn.Linear(hidden, dim),
                                 nn.Dropout(0.0))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class Attention(nn.Module):
    def __init__(self, dim: int, heads: int, dim_head: int):
        super().__init__()
        self.heads = heads
        self.scale = dim_head ** -0.5
        self.to_qkv = nn.Linear(dim, heads * dim_head * 3, bias=False)
        self.to_out = nn.Sequential(nn.Linear(heads * dim_head, dim), nn.Dropout(0.0))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, _ = x.shape
        q, k, v = (t.reshape(b, n, self.heads, -1).transpose(1, 2) for t in self.to_qkv(x).chunk(3, dim=-1))
        attn = (q.matmul(k.transpose(-1, -2)) * self.scale).softmax(dim=-1)
        out = attn.matmul(v).transpose(1, 2).reshape(b, n, -1)
        return self.to_out(out)


class Transformer(nn.Module):
    def __init__(self, dim: int, depth: int, heads: int, dim_head: int, mlp_dim: int):
        super().__init__()
        self.layers = nn.ModuleList([
            nn.ModuleList([PreNorm(dim, Attention(dim, heads, dim_head)), PreNorm(dim, FeedForward(dim, mlp_dim))])
            for _ in range(depth)
        ])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for attn, ff in self.layers:
            x = attn(x) + x
            x = ff(x) + x
        return x


# --- the CNN ----------------------------------------------------------------------------
class HPF(nn.Module):
    """The 30 SRM filters as a fixed 1 -> 30 convolution (applied to each colour channel)."""

    def __init__(self):
        super().__init__()
        self.hpf = nn.Conv2d(1, 30, kernel_size=5, padding=2, bias=False)
        self.hpf.weight = nn.Parameter(torch.from_numpy(srm_filters()).view(30, 1, 5, 5), requires_grad=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.hpf(x)


def _conv_ln(width_in: int, width: int, size: int, act: nn.Module) -> list[nn.Module]:
    return [nn.Conv2d(width_in, width, kernel_size=3, padding=1), nn.LayerNorm([width, size, size]), act]


def _group(width: int, size: int, n_convs: int, pool: bool) -> nn.Sequential:
    layers: list[nn.Module] = []
    for _ in range(n_convs):
        layers += _conv_ln(width, width, size, nn.ReLU())
    if pool:
        layers.append(nn.AvgPool2d(kernel_size=3, padding=1, stride=2))
    return nn.Sequential(*layers)


class SDAIEBackbone(nn.Module):
    """The authors' ``base``; input (bs, n, 3, P, P): ``n`` normalised tiles per image.

    ``forward`` returns ``(f, f1, f2, f3, f4, f5)``: the feature (token 0 of the
    transformer), the outputs of the four CNN groups and the per-tile covariance vectors.
    """

    def __init__(self, config: BackboneConfig = PAPER):
        super().__init__()
        if config.patch_size % 8:
            raise ValueError(f"patch_size must be a multiple of 8, got {config.patch_size}")
        self.config = config
        c, p = config.width, config.patch_size
        self.transformer = Transformer(config.dim, config.depth, config.heads, config.dim_head, config.mlp_dim)
        self.patch_size = p
        self.group1 = HPF()
        self.group1_b = nn.Sequential(*_conv_ln(90, c, p, nn.Hardtanh(min_val=-5, max_val=5)))
        self.group2 = _group(c, p, 4, pool=True)
        self.group3 = _group(c, p // 2, 2, pool=True)
        self.group4 = _group(c, p // 4, 2, pool=True)
        self.group5 = _group(c, p // 8, 2, pool=False)

    def cnn(self, tiles: torch.Tensor, stem: torch.Tensor | None = None) -> tuple[torch.Tensor, ...]:
        """(T, 3, P, P) tiles -> (f1, f2, f3, f4, f5) per tile; ``stem`` = group1_b output if known."""
        if stem is None:
            t, c, h, w = tiles.shape
            res = self.group1(tiles.reshape(t * c, 1, h, w)).reshape(t, c * 30, h, w)
            stem = self.group1_b(res)
        f1 = self.group2(stem)
        f2 = self.group3(f1)
        f3 = self.group4(f2)
        f4 = self.group5(f3)
        return f1, f2, f3, f4, self.cnn_head(f4)

    def cnn_head(self, f4: torch.Tensor) -> torch.Tensor:
        """Covariance pooling: (T, C, h, w) -> (T, C(C+1)/2)."""
        return triuvec(sqrtm_newton_schulz(covpool(f4), self.config.ns_iters))

    def aggregate(self, f5: torch.Tensor) -> torch.Tensor:
        """(bs, n, D) tile descriptors -> (bs, D): token 0 of the transformer's output."""
        return self.transformer(f5)[:, 0, :]

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        bs, n = x.shape[:2]
        f1, f2, f3, f4, f5 = self.cnn(x.reshape(bs * n, *x.shape[2:]))
        f5 = f5.reshape(bs, n, -1)
        return self.aggregate(f5), f1, f2, f3, f4, f5


# --- heads and wrappers in the authors' key layout ---------------------------------------
class PretextNet(nn.Module):
    """The authors' ``diffextractor``: the backbone plus the 14 pretext heads fc1..fc14."""

    def __init__(self, config: BackboneConfig = PAPER):
        super().__init__()
        self.backbone = SDAIEBackbone(config)
        for i, k in enumerate(HEAD_SIZES, start=1):
            setattr(self, f"fc{i}", nn.Linear(config.dim, k))

    def heads(self, f: torch.Tensor) -> list[torch.Tensor]:
        return [getattr(self, f"fc{i}")(f) for i in range(1, N_HEADS + 1)]

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        return self.heads(self.backbone(x)[0])


class BinaryNet(nn.Module):
    """The binary detector: a backbone trained from scratch and a 2-way linear head."""

    def __init__(self, config: BackboneConfig = PAPER):
        super().__init__()
        self.extractor = SDAIEBackbone(config)
        self.fc = nn.Linear(config.dim, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.extractor(x)[0])


class AuthorsBinaryNet(nn.Module):
    """The key layout of the authors' ``combonet`` checkpoint (teacher, student, fc)."""

    def __init__(self, config: BackboneConfig = PAPER):
        super().__init__()
        self.diffusionextractor_pretrained = SDAIEBackbone(config)
        self.diffusionextractor_random = SDAIEBackbone(config)
        self.fc = nn.Linear(config.dim, 2)
