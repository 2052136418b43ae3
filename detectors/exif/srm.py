"""The 30 SRM high-pass filters of the spatial rich model (Fridrich and Kodovský, "Rich
Models for Steganalysis of Digital Images", IEEE TIFS 2012), in the normalised 5x5 form
used by the steganalysis CNNs that SDAIE builds on (Yedroudj-Net, Zhang et al.'s
covariance-pooling network) and by the SDAIE authors' ``srm_filter_kernel.py``.

Order (it fixes the meaning of the 30 channels, so it must not change): 8 first-order,
4 second-order (/2), 8 third-order (/3), 4 EDGE3x3 (/4), 4 EDGE5x5 (/12), SQUARE3x3 (/4),
SQUARE5x5 (/12). 3x3 kernels are zero-padded to 5x5.
"""
from __future__ import annotations

import numpy as np

__all__ = ["srm_filters"]

_FIRST = [  # a neighbour minus the centre, clockwise from the top-left corner (row-major)
    (0, 0), (0, 1), (0, 2), (1, 0), (1, 2), (2, 0), (2, 1), (2, 2),
]
_SECOND = [  # two opposite neighbours minus twice the centre
    ((0, 0), (2, 2)), ((0, 1), (2, 1)), ((0, 2), (2, 0)), ((1, 0), (1, 2)),
]
_EDGE3 = np.array([[-1, 2, -1], [2, -4, 2], [0, 0, 0]], dtype=np.float32)
_SQUARE3 = np.array([[-1, 2, -1], [2, -4, 2], [-1, 2, -1]], dtype=np.float32)
_SQUARE5 = np.array([[-1, 2, -2, 2, -1], [2, -6, 8, -6, 2], [-2, 8, -12, 8, -2],
                     [2, -6, 8, -6, 2], [-1, 2, -2, 2, -1]], dtype=np.float32)


def _first_order() -> list[np.ndarray]:
    out = []
    for r, c in _FIRST:
        k = np.zeros((3, 3), np.float32)
        k[1, 1], k[r, c] = -1, 1
        out.append(k)
    return out


def _second_order() -> list[np.ndarray]:
    out = []
    for (r1, c1), (r2, c2) in _SECOND:
        k = np.zeros((3, 3), np.float32)
        k[1, 1], k[r1, c1], k[r2, c2] = -2, 1, 1
        out.append(k / 2)
    return out


def _third_order() -> list[np.ndarray]:
    """-1, 3, -3, 1 along the 8 directions out of the centre (the centre holds -3)."""
    rays = [(-1, -1), (-1, 0), (-1, 1), (0, 1), (1, 1), (1, 0), (1, -1), (0, -1)]
    out = []
    for dr, dc in rays:
        k = np.zeros((5, 5), np.float32)
        k[2 + 2 * dr, 2 + 2 * dc], k[2 + dr, 2 + dc], k[2, 2], k[2 - dr, 2 - dc] = -1, 3, -3, 1
        out.append(k / 3)
    return out


def _rotations(kernel: np.ndarray) -> list[np.ndarray]:
    """The kernel's half-plane at the top, right, bottom, left (the SRM EDGE order)."""
    return [kernel, np.rot90(kernel, -1), np.rot90(kernel, 2), np.rot90(kernel, 1)]


def _edge5() -> np.ndarray:
    k = _SQUARE5.copy()
    k[3:] = 0
    return k


def _pad5(k: np.ndarray) -> np.ndarray:
    return np.pad(k, 1) if k.shape[0] == 3 else k


def srm_filters() -> np.ndarray:
    """The 30 normalised SRM kernels as a float32 array of shape (30, 5, 5)."""
    kernels = (_first_order() + _second_order() + _third_order()
               + [k / 4 for k in _rotations(_EDGE3)] + [k / 12 for k in _rotations(_edge5())]
               + [_SQUARE3 / 4, _SQUARE5 / 12])
    return np.stack([np.ascontiguousarray(_pad5(k)) for k in kernels]).astype(np.float32)
