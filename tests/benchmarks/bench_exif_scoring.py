"""Scoring throughput of ``exif-bc``: the authors' way against the batched fast path.

The authors' way (``bc_eval.py``): one image at a time, all its tiles as one set, plain
module calls in the default NCHW layout under ``torch.no_grad``. The fast path:
``ExifBinaryDetector.score_batch`` (composed SRM stem, channels-last, tiles of many images
batched, ``torch.inference_mode``). Both read the same weights (the parity fixture's
``bc_checkpoint.pth`` when present, else a seeded random paper-size network) and the same
tiles; only the model stage is timed (tiling is shared). Repeats are interleaved and the
fastest of each is kept, since a shared machine's load varies.

    .venv/bin/python tests/benchmarks/bench_exif_scoring.py [--sizes 256x256,1024x1024] [--chunks 8,16,64]

The ratio depends on image size: the authors' way runs all tiles of an image as one batch
through a 90-channel full-resolution stage, whose memory traffic outgrows the cache as
images grow, while exif-bc streams fixed-size chunks of tiles; so the benchmark reports
each size separately.
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

FIXTURE = Path(__file__).resolve().parents[3] / "shared" / "fixtures" / "sdaie" / "bc_checkpoint.pth"


def _images(n: int, size: tuple[int, int] | None = None, seed: int = 0) -> list[Image.Image]:
    """Structured noise images, ``size`` = (height, width) or random sides 150-330."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        h, w = size if size else rng.integers(150, 330, size=2)
        y, x = np.mgrid[0:h, 0:w]
        base = np.stack([(x * 2 + y) % 256, (y * 3) % 256, (x + y // 2) % 256], -1).astype(np.float64)
        out.append(Image.fromarray(np.clip(base + rng.normal(0, 12, base.shape), 0, 255).astype(np.uint8)))
    return out


def _checkpoint(path: str | None) -> str:
    if path:
        return path
    if FIXTURE.is_file():
        return str(FIXTURE)
    from detectors.exif.model import AuthorsBinaryNet

    torch.manual_seed(0)
    target = Path(tempfile.mkdtemp()) / "random_bc.pth"
    torch.save({"state_net": {f"module.{k}": v for k, v in AuthorsBinaryNet().state_dict().items()}}, target)
    return str(target)


def authors_way(net, items: list[torch.Tensor]) -> np.ndarray:
    out = []
    with torch.no_grad():
        for tiles in items:
            logits = net.fc(net.extractor(tiles[None])[0])
            out.append(float(1 - torch.softmax(logits, dim=1)[0, 0]))
    return np.array(out)


def _measure(det, reference, items, repeats: int) -> tuple[float, float, float]:
    slow, fast = [], []
    for _ in range(repeats):
        t = time.perf_counter()
        p_ref = authors_way(reference, items)
        slow.append(time.perf_counter() - t)
        t = time.perf_counter()
        p_fast = det.score_batch(items)
        fast.append(time.perf_counter() - t)
    return min(slow), min(fast), float(np.abs(p_ref - p_fast).max())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=0,
                        help="images per size (default: enough for about 200 tiles)")
    parser.add_argument("--sizes", default="256x256,384x512,512x512,1024x1024",
                        help="comma-separated HxW image sizes, or 'random' (sides 150-330)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--chunks", default="", help="comma-separated tiles per CNN pass to compare "
                        "(default: the detector's own default)")
    parser.add_argument("--checkpoint", default=None, help="an authors' bc .pth (default: the fixture)")
    parser.add_argument("--tiling", default="official")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    import harness
    from detectors.exif.weights import load_binary

    ckpt = _checkpoint(args.checkpoint)
    det = harness.load_detector("exif-bc", checkpoint=ckpt, tiling=args.tiling)
    reference = load_binary(ckpt)[0].eval()  # its own NCHW copy of the same weights
    chunks = [int(c) for c in args.chunks.split(",") if c] or [det._extractor.chunk]
    print(f"weights: {Path(ckpt).name}; {torch.get_num_threads()} threads, tiling={args.tiling}; "
          f"fastest of {args.repeats} interleaved repeats; model stage only")
    rows = []
    for size in args.sizes.split(","):
        shape = None if size == "random" else tuple(int(v) for v in size.split("x"))
        probe = det.preprocess(_images(1, shape)[0])
        n = args.images or max(2, -(-200 // len(probe)))
        items = [det.preprocess(im) for im in _images(n, shape)]
        n_tiles = sum(len(t) for t in items)
        for chunk in chunks:
            det._extractor.chunk = chunk
            slow, fast, diff = _measure(det, reference, items, args.repeats)
            rows.append((size, n, n_tiles, chunk, n / slow, n / fast, slow / fast, diff))
            print(f"{size:>9}: {n:3d} images, {n_tiles:4d} tiles, chunk {chunk:3d} | authors' way "
                  f"{n / slow:6.2f} images/s | exif-bc {n / fast:6.2f} images/s | "
                  f"ratio {slow / fast:4.2f}x | max |dp| {diff:.1e}", flush=True)
    worst = max(r[-1] for r in rows)
    print(f"ratios: min {min(r[6] for r in rows):.2f}x, max {max(r[6] for r in rows):.2f}x; "
          f"largest score difference {worst:.1e}")


if __name__ == "__main__":
    main()
