"""The shortcut probe's features, and its cross-validated test of a labelled dataset.

A benchmark whose real and generated images differ in processing history (file format,
JPEG quality, resizing, size) can be solved without looking at what a generator does.
The probe sees only that history, through a handful of low-level features of the decoded
pixels (:data:`FEATURES`):

- ``blockiness``: the JPEG 8x8 grid, measured with Fan and de Queiroz's cross difference
  ``|A - B - C + D|`` of each 2x2 square of luma ("Identification of bitmap compression
  history", IEEE TIP 2003), in which straight horizontal and vertical edges cancel: its
  mean per column (and row), the strongest of the eight phases over the median phase
  (log); 0 for an image without a grid. (The first version used the plain absolute
  difference over the mean phase; on the demo's zoo it scored the sparse axis-aligned edges
  of text and interiors as much as any grid: the same statistic at periods 6, 7, 9 and 10,
  where no codec has a grid, separated reals from previews as well.)
- ``jpeg_quality``: estimated from the pixels by recompression (the "JPEG ghost"): the
  luma is re-encoded at qualities 30, 35, ..., 100; an image last saved at quality Q is
  nearly unchanged by re-encoding at Q, so its error curve dips there. The estimate is the
  quality of the deepest dip (error under half the smaller of its neighbours' errors), 100
  when there is none (never JPEG-compressed, or above 95). The error is measured on the 8x8
  blocks without a clipped (0 or 255) RGB value, whose luma the decoder's clipping moved.
  With ``from_tables=True`` the file's own luminance table gives the IJG quality instead,
  where the image still carries it.
- ``hf_ratio``: the share of the luma's spectral energy above half the Nyquist frequency (log).
- ``resampling``: periodicity of the second derivative (Popescu and Farid's cue, in the
  simple form of Gallagher 2005): the absolute second difference along rows (and columns),
  averaged into one profile, whose spectrum's highest peak (away from the lowest
  frequencies) over its median (log), the larger of the two directions.
- ``width``, ``height`` (log).

Which source of the JPEG quality: the engine hands a detector decoded pixels after the
perturbation chain, whose ``pixels_only`` drops whatever Pillow carried (the quantisation
tables included), while training and ``data check`` decode files directly. A feature must
mean the same in training and scoring, so the probe estimates the quality from pixels by
default (``jpeg_quality_from = "pixels"``); ``"tables"`` uses a file's tables where they
reach the detector and the pixel estimate elsewhere.

:func:`probe_auc` runs the probe cross-validated (stratified k-fold logistic regression on
standardised features) on one row of real and generated images and gives the AUC of the
out-of-fold scores with a stratified bootstrap interval (:mod:`harness.stats`).
"""
from __future__ import annotations

import io
import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np
from PIL import Image

from harness.stats import Bootstrap, percentile_interval, replicate_metrics

__all__ = ["FEATURES", "probe_features", "ProbeAUC", "probe_auc", "separates"]

FEATURES = ("blockiness", "jpeg_quality", "hf_ratio", "resampling", "width", "height")
_GHOST_QUALITIES = tuple(range(30, 101, 5))
_MAX_SIDE = 256  # features on a centre crop of at most this side (cost bounded; size read before)


def _luma(image: Image.Image) -> np.ndarray:
    return np.asarray(image.convert("L"), dtype=np.float64)


def _centre(arr: np.ndarray) -> np.ndarray:
    """A centre crop of at most ``_MAX_SIDE``, its offset a multiple of 8 (keeps the JPEG grid)."""
    h, w = arr.shape
    top, left = max(0, (h - _MAX_SIDE) // 2) // 8 * 8, max(0, (w - _MAX_SIDE) // 2) // 8 * 8
    return arr[top:top + _MAX_SIDE, left:left + _MAX_SIDE]


def blockiness(y: np.ndarray) -> float:
    """The 8x8 grid's strength along columns and rows, averaged (see the module)."""
    scores = []
    for arr in (y, y.T):  # vertical grid lines (between columns), then horizontal ones
        if arr.shape[0] < 2:
            continue
        cross = np.abs(np.diff(np.diff(arr, axis=1), axis=0)).mean(axis=0)  # |A - B - C + D| per column
        if len(cross) < 16:
            continue
        phases = np.array([cross[p::8].mean() for p in range(8)])
        scores.append(math.log((phases.max() + 1e-6) / (np.median(phases) + 1e-6)))
    return float(np.mean(scores)) if scores else 0.0


def _unclipped_blocks(clipped: np.ndarray) -> np.ndarray:
    """Which 8x8 blocks hold no clipped pixel; all of them when fewer than 16 do."""
    h, w = clipped.shape[0] // 8 * 8, clipped.shape[1] // 8 * 8
    ok = ~clipped[:h, :w].reshape(h // 8, 8, w // 8, 8).any(axis=(1, 3))
    return ok if ok.sum() >= 16 else np.ones_like(ok)


def ghost_quality(y: np.ndarray, clipped: np.ndarray | None = None) -> float:
    """The JPEG ghost's quality of luma ``y``, its error measured on the 8x8 blocks where no
    pixel of ``clipped`` (a mask of ``y``'s shape) is set: a decoder clips each RGB channel to
    [0, 255], and a clipped pixel's luma no longer lies where the quantisation put it, so an
    image with many saturated colours loses its dip (it read 100 for a quality of 90)."""
    grey = Image.fromarray(np.clip(np.rint(y), 0, 255).astype(np.uint8), "L")
    keep = _unclipped_blocks(np.zeros(y.shape, bool) if clipped is None else clipped)
    h, w = keep.shape[0] * 8, keep.shape[1] * 8
    if h == 0 or w == 0:  # smaller than one block: the whole image
        h, w, keep = y.shape[0], y.shape[1], None
    errors = []
    for q in _GHOST_QUALITIES:
        buf = io.BytesIO()
        grey.save(buf, format="JPEG", quality=q)
        buf.seek(0)
        sq = (np.asarray(Image.open(buf), dtype=np.float64)[:h, :w] - y[:h, :w]) ** 2
        if keep is not None:
            sq = sq.reshape(h // 8, 8, w // 8, 8).mean(axis=(1, 3))[keep]
        errors.append(float(sq.mean()))
    dips = [(errors[i] / (min(errors[i - 1], errors[i + 1]) + 1e-9), q)
            for i, q in enumerate(_GHOST_QUALITIES[:-1]) if i > 0]
    ratio, quality = min(dips)
    return float(quality if ratio < 0.5 else 100)


#: the IJG (libjpeg) base luminance table, in Pillow's order (libjpeg's natural order)
_IJG_LUMA = np.array([16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55, 14, 13, 16, 24, 40, 57, 69, 56,
                      14, 17, 22, 29, 51, 87, 80, 62, 18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81, 104, 113,
                      92, 49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99], dtype=np.int64)


def _ijg_table(q: int) -> np.ndarray:
    scale = 5000 // q if q < 50 else 200 - 2 * q
    return np.clip((_IJG_LUMA * scale + 50) // 100, 1, 255)


def table_quality(image: Image.Image) -> float | None:
    """The IJG quality whose scaled luminance table is closest to the image's own, or None
    when the image carries no quantisation table."""
    tables = getattr(image, "quantization", None)
    if not tables or 0 not in tables:
        return None
    table = np.asarray(list(tables[0]), dtype=np.int64)
    return float(min(range(1, 101), key=lambda q: (int(np.abs(_ijg_table(q) - table).sum()), -q)))


def hf_ratio(y: np.ndarray) -> float:
    h, w = y.shape
    power = np.abs(np.fft.rfft2(y - y.mean())) ** 2
    fy = np.abs(np.fft.fftfreq(h))[:, None]
    fx = np.fft.rfftfreq(w)[None, :]
    radius = np.hypot(fx, fy) / 0.5          # 1 = Nyquist
    total = power.sum()
    return float(math.log((power[radius > 0.5].sum() + 1e-9) / (total + 1e-9)))


def resampling(y: np.ndarray) -> float:
    scores = []
    for axis in (1, 0):
        d2 = np.abs(np.diff(y, n=2, axis=axis)).mean(axis=1 - axis)
        if len(d2) < 32:
            continue
        spectrum = np.abs(np.fft.rfft(d2 - d2.mean()))[len(d2) // 32 + 1:]
        scores.append(math.log((spectrum.max() + 1e-9) / (np.median(spectrum) + 1e-9)))
    return float(max(scores)) if scores else 0.0


def probe_features(image: Image.Image, jpeg_quality_from: str = "pixels") -> np.ndarray:
    """The :data:`FEATURES` of one image, as float64."""
    if jpeg_quality_from not in ("pixels", "tables"):
        raise ValueError(f"jpeg_quality_from must be 'pixels' or 'tables', not {jpeg_quality_from!r}")
    width, height = image.size
    y = _centre(_luma(image))
    quality = table_quality(image) if jpeg_quality_from == "tables" else None
    if quality is None:
        rgb = np.asarray(image.convert("RGB"))
        quality = ghost_quality(y, _centre(((rgb == 0) | (rgb == 255)).any(axis=2)))
    return np.array([blockiness(y), quality, hf_ratio(y), resampling(y), math.log(width), math.log(height)])


@dataclass(frozen=True)
class ProbeAUC:
    """Cross-validated AUC of the probe on one row, with its bootstrap interval."""

    auc: float
    lo: float
    hi: float
    n_real: int
    n_fake: int
    folds: int

    def text(self) -> str:
        return f"{self.auc:.2f} [{self.lo:.2f}, {self.hi:.2f}] (n = {self.n_real} real, {self.n_fake} generated)"


def out_of_fold_scores(x: np.ndarray, y: np.ndarray, folds: int = 5, seed: int = 0, C: float = 1.0) -> np.ndarray:
    """Out-of-fold P(generated) of a standardised logistic regression (stratified k-fold)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    k = min(folds, int(np.bincount(y).min()))
    if k < 2:
        raise ValueError("the probe's cross-validation needs at least 2 images of each class")
    scores = np.empty(len(y))
    for train, test in StratifiedKFold(k, shuffle=True, random_state=seed).split(x, y):
        model = make_pipeline(StandardScaler(), LogisticRegression(C=C, max_iter=5000))
        scores[test] = model.fit(x[train], y[train]).predict_proba(x[test])[:, 1]
    return scores


def probe_auc(real: Sequence[np.ndarray], fake: Sequence[np.ndarray], folds: int = 5, seed: int = 0,
              bootstrap: Bootstrap = Bootstrap(), stratum: str = "") -> ProbeAUC:
    """The probe's cross-validated AUC on one row: real and generated feature vectors."""
    x = np.vstack([np.asarray(real), np.asarray(fake)])
    y = np.r_[np.zeros(len(real), int), np.ones(len(fake), int)]
    scores = out_of_fold_scores(x, y, folds, seed)
    r, f = scores[y == 0], scores[y == 1]
    point = replicate_metrics(r, f, np.ones((1, len(r))), np.ones((1, len(f))), 0.5)["auc"][0]
    reps = replicate_metrics(r, f, bootstrap.weights(f"{stratum}|real", len(r)),
                             bootstrap.weights(f"{stratum}|fake", len(f)), 0.5)["auc"]
    lo, hi = percentile_interval(reps, bootstrap.ci)
    return ProbeAUC(float(point), lo, hi, len(r), len(f), min(folds, len(r), len(f)))


def separates(result: ProbeAUC) -> bool:
    """The warning rule: the interval lies above chance (its lower bound above 0.5)."""
    return result.lo > 0.5


def _features_or_none(path: str) -> np.ndarray | None:
    from harness.data.decode import load_image

    try:
        return probe_features(load_image(path))
    except Exception:  # noqa: BLE001 - an unreadable file is reported by the caller (and by data check)
        return None


def _subsample(paths: Sequence[str], limit: int, seed: int) -> list[str]:
    """At most ``limit`` paths, chosen by a seeded hash of the path (stable across runs)."""
    import hashlib

    paths = sorted(set(paths))
    if limit <= 0 or len(paths) <= limit:
        return paths
    return sorted(paths, key=lambda p: hashlib.sha256(f"{seed}|{p}".encode()).hexdigest())[:limit]


@dataclass(frozen=True)
class ProbeRow:
    """The probe on one generator row: its result, or why there is none."""

    generator: str
    result: ProbeAUC | None
    unreadable: int = 0
    reason: str = ""


def probe_rows(rows: dict[str, tuple[Sequence[str], Sequence[str]]], max_per_class: int = 200, seed: int = 0,
               folds: int = 5, workers: int = 1, bootstrap: Bootstrap = Bootstrap()) -> list[ProbeRow]:
    """The probe cross-validated on each row ``generator -> (real paths, generated paths)``;
    at most ``max_per_class`` images of each class per row (a seeded choice); each file's
    features are computed once, however many rows share it."""
    chosen = {g: (_subsample(r, max_per_class, seed), _subsample(f, max_per_class, seed))
              for g, (r, f) in rows.items()}
    paths = sorted({p for r, f in chosen.values() for p in (*r, *f)})
    if workers > 1 and len(paths) >= 64:
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(max_workers=workers) as pool:
            feats = dict(zip(paths, pool.map(_features_or_none, paths, chunksize=16)))
    else:
        feats = {p: _features_or_none(p) for p in paths}
    out = []
    for gen, (real, fake) in sorted(chosen.items()):
        xr = [feats[p] for p in real if feats[p] is not None]
        xf = [feats[p] for p in fake if feats[p] is not None]
        bad = len(real) + len(fake) - len(xr) - len(xf)
        if min(len(xr), len(xf)) < 2:
            out.append(ProbeRow(gen, None, bad, f"{len(xr)} real and {len(xf)} generated images readable; "
                                                 "the probe needs at least 2 of each"))
            continue
        out.append(ProbeRow(gen, probe_auc(xr, xf, folds, seed, bootstrap, stratum=gen), bad))
    return out
