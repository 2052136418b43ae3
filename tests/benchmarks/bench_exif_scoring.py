"""Scoring throughput of ``exif-bc``: the authors' way against the batched fast path.

The authors' way (``bc_eval.py``): one image at a time, all its tiles as one set, plain
module calls in the default NCHW layout under ``torch.no_grad``. The fast path:
``ExifBinaryDetector.score_batch`` (composed SRM stem, channels-last, tiles of many images
batched, ``torch.inference_mode``). Both read the same weights (the parity fixture's
``bc_checkpoint.pth`` when present, else a seeded random paper-size network) and the same
tiles; only the model stage is timed (tiling is shared). Repeats are interleaved and the
fastest of each is kept, since a shared machine's load varies.

    .venv/bin/python tests/benchmarks/bench_exif_scoring.py [--images 24] [--repeats 3]
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


def _images(n: int, seed: int = 0) -> list[Image.Image]:
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        h, w = rng.integers(150, 330, size=2)
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=24)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--checkpoint", default=None, help="an authors' bc .pth (default: the fixture)")
    parser.add_argument("--tiling", default="official")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    import harness
    from detectors.exif.weights import load_binary

    ckpt = _checkpoint(args.checkpoint)
    det = harness.load_detector("exif-bc", checkpoint=ckpt, tiling=args.tiling)
    reference = load_binary(ckpt)[0].eval()  # its own NCHW copy of the same weights
    items = [det.preprocess(im) for im in _images(args.images)]
    n_tiles = sum(len(t) for t in items)

    slow, fast = [], []
    for _ in range(args.repeats):
        t = time.perf_counter()
        p_ref = authors_way(reference, items)
        slow.append(time.perf_counter() - t)
        t = time.perf_counter()
        p_fast = det.score_batch(items)
        fast.append(time.perf_counter() - t)
    diff = float(np.abs(p_ref - p_fast).max())
    print(f"weights: {Path(ckpt).name}; {args.images} images, {n_tiles} tiles of 64 px, "
          f"{torch.get_num_threads()} threads, tiling={args.tiling}")
    print(f"authors' way : {args.images / min(slow):7.2f} images/s ({min(slow):.2f} s; runs {np.round(slow, 2)})")
    print(f"exif-bc batch: {args.images / min(fast):7.2f} images/s ({min(fast):.2f} s; runs {np.round(fast, 2)})")
    print(f"throughput ratio: {min(slow) / min(fast):.2f}x   max |p_authors - p_exif-bc| = {diff:.2e}")


if __name__ == "__main__":
    main()
