"""Pretext training throughput (pairs of photos per second) of ``exif-backbone``.

Photos are generated JPEGs with EXIF (decoded once, as in training); each step is the
trainer's own ``train_step`` (crops, forward of both photos, loss, backward, Adam).

    .venv/bin/python tests/benchmarks/bench_exif_pretext.py --preset cpu-small
    .venv/bin/python tests/benchmarks/bench_exif_pretext.py --preset paper --batch-pairs 4 --steps 2
    .venv/bin/python tests/benchmarks/bench_exif_pretext.py --preset paper --device cuda
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image


def _photos(folder: Path, n: int, size: tuple[int, int]) -> list[Path]:
    rng = np.random.default_rng(0)
    paths = []
    for i in range(n):
        arr = np.clip(120 + rng.normal(0, 10 + 5 * (i % 3), (size[1], size[0], 3)), 0, 255).astype(np.uint8)
        exif = Image.Exif()
        exif[0x010F], exif[0x0110] = ["Canon", "Nikon", "Sony"][i % 3], f"M{i % 5}"
        ifd = exif.get_ifd(0x8769)
        ifd[0x829D], ifd[0x8827], ifd[0x920A] = [2.8, 4.0, 8.0][i % 3], 100 * (1 + i % 4), 24.0 + i
        paths.append(folder / f"p{i}.jpg")
        Image.fromarray(arr).save(paths[-1], quality=95, exif=exif)
    return paths


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="cpu-small", choices=["paper", "cpu-small"])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--batch-pairs", type=int, default=None, help="default: the preset's")
    parser.add_argument("--photos", type=int, default=16)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    from harness.api import Sample
    from harness.detector import TrainingSet
    from detectors.exif.model import BackboneConfig, PretextNet
    from detectors.exif.pretext import ExifBackboneTrainer, PhotoBank

    overrides = {"batch_pairs": args.batch_pairs} if args.batch_pairs else {}
    trainer = ExifBackboneTrainer(preset=args.preset, **overrides)
    cfg = trainer.config
    paths = _photos(Path(tempfile.mkdtemp()), args.photos, (512, 384))
    samples = [Sample(sample_id=str(i), path=str(p), label=0, dataset="b", generator="real", family="camera")
               for i, p in enumerate(paths)]
    bank = PhotoBank(TrainingSet(samples, lambda s: Image.open(s.path).convert("RGB")), cfg.patch_size,
                     cfg.cache_side)
    net = PretextNet(BackboneConfig(width=cfg.width, patch_size=cfg.patch_size)).to(args.device)
    opt = torch.optim.Adam(net.parameters(), lr=cfg.lr)
    rng = np.random.default_rng(0)
    trainer.train_step(net, opt, bank, rng, args.device)  # warm-up
    if args.device.startswith("cuda"):
        torch.cuda.synchronize()
    t = time.perf_counter()
    for _ in range(args.steps):
        trainer.train_step(net, opt, bank, rng, args.device)
    if args.device.startswith("cuda"):
        torch.cuda.synchronize()
    seconds = time.perf_counter() - t
    print(f"preset={args.preset} width={cfg.width} patch={cfg.patch_size} batch_pairs={cfg.batch_pairs} "
          f"crops={cfg.n_crops} device={args.device} threads={torch.get_num_threads()}")
    print(f"{args.steps * cfg.batch_pairs / seconds:.2f} pairs/s ({seconds / args.steps:.3f} s/step)")


if __name__ == "__main__":
    main()
