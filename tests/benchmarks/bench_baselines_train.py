"""Training throughput (training images per second) of the baselines at their CPU presets.

Each baseline's own ``fit`` runs on generated 256 x 256 JPEG images (half of them
nearest-neighbour x2 up-samplings, half smooth content with noise): decoding once, the
authors' augmentation, forward, backward, optimiser, BatchNorm re-estimation where the
preset asks for it. Throughput = images seen by the optimiser / wall time of ``fit``
(decode and validation included, so it is what a demo run waits for).

``univfd``'s cost is the frozen CLIP ViT-L/14 forward pass over the training crops (the
linear probe itself takes milliseconds); with no CLIP weights here, the benchmark builds
the same architecture with random weights (``random_clip_seed``), which costs the same.

    .venv/bin/python tests/benchmarks/bench_baselines_train.py
    .venv/bin/python tests/benchmarks/bench_baselines_train.py --only npr --images 200 --threads 1
    .venv/bin/python tests/benchmarks/bench_baselines_train.py --only cnnspot --preset paper --images 16 --epochs 1
    .venv/bin/python tests/benchmarks/bench_baselines_train.py --preset paper --epochs 2 --device cuda
"""
from __future__ import annotations

import argparse
import io
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image


def _jpeg(label: int, rng: np.random.Generator, size: int) -> Image.Image:
    small = Image.fromarray(rng.integers(0, 256, (size // 8, size // 8, 3), dtype=np.uint8)).resize(
        (size // 2, size // 2), Image.BILINEAR)
    if label:
        img = small.resize((size, size), Image.NEAREST)
    else:
        smooth = np.asarray(small.resize((size, size), Image.BILINEAR), dtype=np.float64)
        img = Image.fromarray(np.clip(smooth + rng.normal(0, 6, smooth.shape), 0, 255).astype(np.uint8))
    buf = io.BytesIO()
    img.save(buf, format="jpeg", quality=90)
    return Image.open(io.BytesIO(buf.getvalue())).convert("RGB")


def training_set(n: int, size: int = 256, seed: int = 0):
    from harness.api import Sample
    from harness.detector import TrainingSet

    rng = np.random.default_rng(seed)
    images = {f"img{i}": _jpeg(i % 2, rng, size) for i in range(n)}
    samples = [Sample(sample_id=k, path=k, label=i % 2, dataset="bench", generator="nn-up" if i % 2 else "real",
                      family="synthetic") for i, k in enumerate(images)]
    return TrainingSet(samples, lambda s: images[s.sample_id])


def _spec(name: str):
    """The detector's spec from its own plugin module (no other plugin needs to import)."""
    import importlib

    return importlib.import_module(f"detectors.{name}").exifbench_detectors()[0]


def bench(name: str, params: dict, n: int, seed: int = 0, device: str = "cpu") -> dict:
    train = training_set(n)
    with tempfile.TemporaryDirectory() as out:
        t0 = time.perf_counter()
        ckpt = _spec(name).create(**params).fit(train, Path(out), seed=seed, device=device)
        seconds = time.perf_counter() - t0
        log = json.loads((Path(ckpt) / "manifest.json").read_text())["extra"]["training"]
    return {"detector": name, "device": device, "threads": torch.get_num_threads(), "params": params, "images": n, "epochs_run": log["epochs_run"],
            "images_seen": log["images_seen"], "fit_seconds": round(seconds, 1),
            "images_per_second": round(log["images_seen"] / seconds, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=["cnnspot", "npr", "univfd"], action="append")
    parser.add_argument("--preset", default="cpu-small", choices=["cpu-small", "paper"])
    parser.add_argument("--images", type=int, default=150, help="training images (cnnspot, npr)")
    parser.add_argument("--univfd-images", type=int, default=8)
    parser.add_argument("--epochs", type=int, default=None, help="default: the preset's")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    extra = {} if args.epochs is None else {"epochs": args.epochs}
    runs = {
        "cnnspot": ({"preset": args.preset, **extra}, args.images),
        "npr": ({"preset": args.preset, **extra}, args.images),
        "univfd": ({"random_clip_seed": 0, "views": 1, "epochs": 5, "val_fraction": 0.0}, args.univfd_images),
    }
    for name in args.only or list(runs):
        params, n = runs[name]
        print(json.dumps(bench(name, params, n, device=args.device)), flush=True)


if __name__ == "__main__":
    main()
