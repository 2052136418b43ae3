"""The prepared GPU check: one command, one Markdown report, under 8 minutes on one GPU.

    python tests/benchmarks/gpu_check.py --out gpu_check.md          # on a machine with a GPU
    python tests/benchmarks/gpu_check.py --cpu --out gpu_check.md    # the same steps, tiny, on CPU

Measured side by side in one run, scores compared:

1. ``exif-bc`` and ``exif-oc`` scoring throughput (images/s) at three image sizes against the
   authors' way on the same device (one image per call, all its tiles as one batch, NCHW,
   IEEE float32), with the largest score difference; then each detector's opt-in
   ``precision`` (``fp32``, ``tf32``, ``bf16``; :func:`harness.detector.numeric_precision`)
   with its largest score difference from the authors' float32 scores and its AUC on a small
   labelled set (and the change from fp32), so a user can choose speed against exactness.
2. CNNSpot, NPR and spectrum scoring throughput through the sweep engine, each detector alone
   in a sweep with its own GPU actor (``num_gpus = 1``), with the GPU's utilisation sampled
   by ``nvidia-smi`` during the sweep.
3. Pretext training (``exif-backbone``) pairs/s in one process and through Ray Train with one
   worker (``workers = 1, use_gpu = true``: the NCCL process group with one rank).
4. One ``exifbench sweep`` of all five detectors with ``num_gpus`` on each, end to end, with
   the engine's split of the time into model load, preparation and model (GPU) busy time.

The data are synthetic and made here: "real" images carry sensor-like noise at full
resolution, "generated" ones are the same kind of scenes rendered at a quarter of the size and
upsampled (a smooth, noise-free image). The detectors are trained on them in the check itself
(GPU: the ``paper`` presets and architectures with shortened schedules; ``--cpu``: the CPU
presets and the EXIF network at width 4 with 16-px tiles), so AUCs measure only whether a
precision changes the ranking, not how good a detector is.
"""
from __future__ import annotations

import argparse
import json
import platform
import shutil
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch
from PIL import Image


@dataclass(frozen=True)
class Mode:
    device: str
    sizes: tuple[int, ...]           # square image sides for the EXIF throughput table
    tiles_per_size: int              # images per size: about this many tiles in all
    exif: dict[str, Any]             # EXIF network shape (width, patch_size)
    n_train: int                     # training images per class
    n_test: int                      # labelled test images per class
    side: int                        # side of the labelled images
    bc_train: dict[str, Any]
    oc_params: dict[str, Any]
    baseline_preset: str
    baseline_train: dict[str, Any]
    pretext: dict[str, Any]
    sweep_images: int                # images per class in the sweeps of steps 2 and 4
    num_gpus: float                  # per detector in the sweeps
    repeats: int


GPU = Mode("cuda", (256, 512, 1024), 4096, {"width": 32, "patch_size": 64}, 64, 64, 256,
           {"epochs": 8, "batch_size": 32, "n_crops": 16, "lr": 1e-3, "augment": False},
           {"n_components": 1, "covariance": "auto"}, "paper", {"epochs": 2, "batch_size": 32},
           {"preset": "paper", "steps": 30}, 256, 1.0, 3)
CPU = Mode("cpu", (32, 64, 128), 96, {"width": 4, "patch_size": 16}, 8, 8, 64,
           {"epochs": 2, "batch_size": 8, "n_crops": 4, "lr": 3e-3, "augment": False},
           {"n_components": 1, "covariance": "auto"}, "cpu-small", {"epochs": 1, "batch_size": 8, "train_crop": 32},
           {"preset": "cpu-small", "steps": 3, "batch_pairs": 2, "cache_side": 64, "log_every": 1}, 8, 0.0, 1)
PRECISIONS = ("fp32", "tf32", "bf16")
SPECTRUM = {"n_bins": 64}


def scoring_params(mode: Mode, name: str) -> dict[str, Any]:
    """What a detector needs besides its checkpoint to load the weights trained here."""
    return {"cnnspot": {"preset": mode.baseline_preset}, "npr": {"preset": mode.baseline_preset},
            "spectrum": dict(SPECTRUM)}.get(name, dict(mode.exif))


# --- data ------------------------------------------------------------------------------
def scene(rng: np.random.Generator, side: int) -> np.ndarray:
    """A smooth random scene (a few oriented gradients and blobs), float in [0, 255]."""
    y, x = np.mgrid[0:side, 0:side] / side
    img = np.zeros((side, side, 3))
    for c in range(3):
        a, b, f = rng.uniform(-1, 1, 3)
        img[..., c] = 128 + 60 * np.sin(2 * np.pi * (a * x + b * y) * (1 + 3 * abs(f)) + rng.uniform(0, 6))
    for _ in range(3):
        cy, cx, r = rng.uniform(0, 1, 3)
        img += rng.uniform(-50, 50, 3) * np.exp(-((y - cy) ** 2 + (x - cx) ** 2) / (0.02 + 0.1 * r))[..., None]
    return img


def labelled_image(rng: np.random.Generator, side: int, fake: bool) -> Image.Image:
    if fake:  # rendered small and upsampled: no sensor noise, interpolation traces
        small = scene(rng, max(8, side // 4))
        return Image.fromarray(np.clip(small, 0, 255).astype(np.uint8)).resize((side, side), Image.BICUBIC)
    noisy = scene(rng, side) + rng.normal(0, 6, (side, side, 3))
    return Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8))


def write_folders(root: Path, n: int, side: int, seed: int) -> Path:
    """``root/synthetic/{0_real,1_fake}``: the binary-folders layout."""
    rng = np.random.default_rng(seed)
    for label, folder in ((0, "0_real"), (1, "1_fake")):
        (root / "synthetic" / folder).mkdir(parents=True, exist_ok=True)
        for i in range(n):
            labelled_image(rng, side, bool(label)).save(root / "synthetic" / folder / f"{i:04d}.png")
    return root


def exif_photos(folder: Path, n: int, size: tuple[int, int], seed: int = 0) -> Path:
    """JPEGs with the EXIF tags the pretext task reads (make, model, aperture, ISO, focal length)."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        arr = np.clip(scene(rng, max(size)) [: size[1], : size[0]] + rng.normal(0, 4 + 3 * (i % 3), (size[1], size[0], 3)),
                      0, 255).astype(np.uint8)
        exif = Image.Exif()
        exif[0x010F], exif[0x0110] = ["Canon", "Nikon", "Sony"][i % 3], f"M{i % 5}"
        ifd = exif.get_ifd(0x8769)
        ifd[0x829D], ifd[0x8827], ifd[0x920A] = [2.8, 4.0, 8.0][i % 3], 100 * (1 + i % 4), 24.0 + i
        Image.fromarray(arr).save(folder / f"p{i:04d}.jpg", quality=95, exif=exif)
    return folder


# --- timing helpers ----------------------------------------------------------------------
def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def fastest(fn: Callable[[], Any], repeats: int, device: str) -> tuple[float, Any]:
    fn()  # warm-up (cuDNN autotuning, allocator)
    sync(device)
    best, out = float("inf"), None
    for _ in range(repeats):
        t = time.perf_counter()
        out = fn()
        sync(device)
        best = min(best, time.perf_counter() - t)
    return best, out


class GPUSampler:
    """Samples ``nvidia-smi``'s GPU utilisation (%) every 0.2 s while in a ``with`` block."""

    def __init__(self) -> None:
        self.samples: list[float] = []
        self.available = shutil.which("nvidia-smi") is not None and torch.cuda.is_available()
        self._stop = threading.Event()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                out = subprocess.run(["nvidia-smi", "--query-gpu=utilization.gpu", "--format=csv,noheader,nounits"],
                                     capture_output=True, text=True, timeout=5).stdout.split()
                self.samples.append(float(out[0]))
            except (OSError, ValueError, IndexError, subprocess.SubprocessError):
                pass
            self._stop.wait(0.2)

    def __enter__(self) -> "GPUSampler":
        if self.available:
            self._thread = threading.Thread(target=self._run, daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        if self.available:
            self._thread.join()

    def summary(self) -> str:
        if not self.samples:
            return "n/a (no GPU)" if not self.available else "no samples"
        return f"mean {np.mean(self.samples):.0f}%, max {max(self.samples):.0f}% ({len(self.samples)} samples)"


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    cells = [[f"{v:.3g}" if isinstance(v, float) else str(v) for v in r] for r in rows]
    return "\n".join(["| " + " | ".join(headers) + " |", "|" + " --- |" * len(headers)]
                     + ["| " + " | ".join(r) + " |" for r in cells])


# --- the steps -------------------------------------------------------------------------
def train_detectors(mode: Mode, train_root: Path, work: Path, log: Callable[[str], None]) -> dict[str, str]:
    """Checkpoints of exif-bc, exif-oc, cnnspot, npr and spectrum on the training folders."""
    from harness.data.layouts import read_binary_folders
    from harness.train.local import fit_locally

    samples = read_binary_folders(train_root, dataset="synthetic")
    reals = [s for s in samples if s.label == 0]
    jobs = {
        "exif-bc": ({"backbone": "random", **mode.exif, **mode.bc_train}, samples),
        "exif-oc": ({"backbone": "random", **mode.exif, **mode.oc_params}, reals),
        "cnnspot": ({"preset": mode.baseline_preset, **mode.baseline_train}, samples),
        "npr": ({"preset": mode.baseline_preset, **mode.baseline_train}, samples),
        "spectrum": (dict(SPECTRUM), samples),
    }
    out = {}
    for name, (params, data) in jobs.items():
        t = time.perf_counter()
        out[name] = fit_locally(name, params, data, work / name, seed=0, device=mode.device)
        log(f"  trained {name} on {len(data)} images in {time.perf_counter() - t:.1f}s")
    return out


def authors_bc(net, items: Sequence[torch.Tensor], device: str) -> np.ndarray:
    """The authors' ``bc_eval.py``: one image per call, all its tiles as one set, NCHW."""
    from harness.detector import numeric_precision

    out = []
    with torch.no_grad(), numeric_precision("fp32", device):
        for tiles in items:
            logits = net.fc(net.extractor(tiles[None].to(device))[0])
            out.append(float(1 - torch.softmax(logits, dim=1)[0, 0]))
    return np.array(out)


def authors_oc(backbone, gmm, items: Sequence[torch.Tensor], device: str) -> np.ndarray:
    """The authors' ``oc_funs.py``: one image per call, features, mixture log-likelihood."""
    from harness.detector import numeric_precision

    feats = []
    with torch.no_grad(), numeric_precision("fp32", device):
        for tiles in items:
            feats.append(backbone(tiles[None].to(device))[0][0].double().cpu().numpy())  # (feature, ...) of one set
    return -gmm.score_samples(np.stack(feats))


def exif_scoring(mode: Mode, ckpts: dict[str, str], test_root: Path, log: Callable[[str], None]) -> list[list]:
    import harness
    from sklearn.metrics import roc_auc_score

    from harness.data.decode import load_image
    from harness.data.layouts import read_binary_folders
    from detectors.exif.model import SDAIEBackbone
    from detectors.exif.weights import config_from_params, load_binary
    from harness.checkpoint import read_checkpoint, load_state_dict_strict

    test = read_binary_folders(test_root, dataset="synthetic")
    labels = np.array([s.label for s in test])
    test_images = [load_image(s.path) for s in test]
    rng = np.random.default_rng(1)
    rows = []
    for name in ("exif-bc", "exif-oc"):
        dets = {p: harness.load_detector(name, device=mode.device, checkpoint=ckpts[name], precision=p,
                                         **scoring_params(mode, name))
                for p in PRECISIONS}
        if name == "exif-bc":
            net = load_binary(ckpts[name])[0].to(mode.device).eval()
            reference = lambda items: authors_bc(net, items, mode.device)  # noqa: E731
        else:
            weights, manifest = read_checkpoint(ckpts[name], name)
            backbone = SDAIEBackbone(config_from_params(manifest["params"]))
            load_state_dict_strict(backbone, {k[9:]: v for k, v in weights.items() if k.startswith("backbone.")}, name)
            backbone = backbone.to(mode.device).eval()
            gmm = dets["fp32"].gmm_
            reference = lambda items: authors_oc(backbone, gmm, items, mode.device)  # noqa: E731
        fp32 = dets["fp32"]
        test_items = [fp32.preprocess(im) for im in test_images]
        auc_ref = roc_auc_score(labels, reference(test_items))
        aucs = {p: roc_auc_score(labels, d.score_batch(test_items)) for p, d in dets.items()}
        for side in mode.sizes:
            probe = fp32.preprocess(labelled_image(rng, side, False))
            n = max(2, mode.tiles_per_size // len(probe))
            items = [fp32.preprocess(labelled_image(rng, side, bool(i % 2))) for i in range(n)]
            t_ref, s_ref = fastest(lambda: reference(items), mode.repeats, mode.device)
            spread = float(np.ptp(s_ref)) or 1.0
            rows.append([name, f"{side}²", n, len(probe), "authors' way (fp32)", n / t_ref, 1.0, 0.0, 0.0, auc_ref,
                         0.0])
            for p, det in dets.items():
                t, s = fastest(lambda: det.score_batch(items), mode.repeats, mode.device)
                diff = float(np.max(np.abs(np.asarray(s) - s_ref)))
                rows.append([name, f"{side}²", n, len(probe), f"{name} {p}", n / t, t_ref / t, diff, diff / spread,
                             aucs[p], aucs[p] - aucs["fp32"]])
            log(f"  {name} {side}²: {n} images, authors' way {n / t_ref:.1f} images/s; "
                + ", ".join(f"{r[4].split()[-1]} {r[5]:.1f}" for r in rows[-3:]))
    return rows


def write_sweep(path: Path, root: Path, detectors: list[dict[str, Any]], grid: Sequence[str]) -> Path:
    import tomli_w

    path.write_text(tomli_w.dumps({
        "run": {"seed": 0},
        "datasets": [{"name": "synthetic", "layout": "binary-folders", "root": str(root)}],
        "detectors": detectors,
        "perturbations": {"grid": list(grid)},
        "metrics": {"bootstrap": 0},
    }))
    return path


def sweep(config: Path, out: Path) -> tuple[dict[str, Any], int, float]:
    from harness.config import load_sweep
    from harness.engine.score_cache import ScoreCache
    from harness.engine.sweep import run_sweep

    t = time.perf_counter()
    run_sweep(load_sweep(config), out, quiet=True, cache=ScoreCache(None))
    wall = time.perf_counter() - t
    record = json.loads((out / "run.json").read_text())
    import pandas as pd

    cells = len(pd.read_parquet(out / "scores.parquet", columns=["score"]))
    return record.get("engine", {}), cells, wall


def detector_table(mode: Mode, name: str, ckpt: str, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    entry = {"name": name, "checkpoint": ckpt, **(extra or {})}
    if mode.num_gpus:
        entry["num_gpus"] = mode.num_gpus
    return entry


def baseline_sweeps(mode: Mode, ckpts: dict[str, str], root: Path, work: Path,
                    log: Callable[[str], None]) -> list[list]:
    rows = []
    for name in ("cnnspot", "npr", "spectrum"):
        config = write_sweep(work / f"sweep-{name}.toml", root,
                             [detector_table(mode, name, ckpts[name], scoring_params(mode, name))],
                             ["none"])
        with GPUSampler() as gpu:
            engine, cells, wall = sweep(config, work / f"run-{name}")
        busy = engine.get("score_s", 0.0)
        rows.append([name, cells, wall, cells / wall, engine.get("load_s", 0.0), busy,
                     cells / busy if busy else float("nan"), gpu.summary()])
        log(f"  sweep {name}: {cells} cells in {wall:.1f}s ({cells / wall:.1f} images/s end to end)")
    return rows


def full_sweep(mode: Mode, ckpts: dict[str, str], root: Path, work: Path) -> list[list]:
    dets = [detector_table(mode, n, ckpts[n], scoring_params(mode, n))
            for n in ("cnnspot", "npr", "spectrum", "exif-bc", "exif-oc")]
    grid = ["none", "jpeg(quality=75)"]
    config = write_sweep(work / "sweep-all.toml", root, dets, grid)
    with GPUSampler() as gpu:
        engine, cells, wall = sweep(config, work / "run-all")
    return [[cells, wall, engine.get("load_s", 0.0), engine.get("prepare_s", 0.0), engine.get("score_s", 0.0),
             engine.get("overlap", float("nan")), gpu.summary()]]


def pretext(mode: Mode, photos: Path, work: Path, log: Callable[[str], None]) -> list[list]:
    from harness.checkpoint import read_manifest
    from harness.data.layouts import read_real_only
    from harness.train.local import fit_locally
    from harness.train.ray_train import fit_data_parallel

    samples = read_real_only(photos, dataset="photos")
    params = dict(mode.pretext)
    gpu = mode.device.startswith("cuda")
    rows = []
    for how, run in (
        ("one process", lambda out: fit_locally("exif-backbone", params, samples, out, device=mode.device)),
        (f"Ray Train, 1 worker ({'NCCL' if gpu else 'gloo'})",
         lambda out: fit_data_parallel("exif-backbone", {**params, "workers": 1, "use_gpu": gpu}, samples, out)),
    ):
        out = work / f"pretext-{len(rows)}"
        t = time.perf_counter()
        run(out)
        wall = time.perf_counter() - t
        manifest = read_manifest(out)
        cfg = manifest["config"]
        seconds = float(manifest["extra"]["seconds_this_run"])
        rows.append([how, cfg["preset"] if "preset" in cfg else params["preset"], cfg["batch_pairs"], cfg["steps"],
                     cfg["steps"] * cfg["batch_pairs"] / seconds, wall, manifest["extra"].get("where", {})])
        log(f"  pretext {how}: {rows[-1][4]:.1f} pairs/s")
    return rows


def environment(mode: Mode) -> str:
    import ray

    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none"
    return (f"date {time.strftime('%Y-%m-%d')}; device {mode.device}; GPU {gpu}; torch {torch.__version__}; "
            f"ray {ray.__version__}; CPU cores {__import__('os').cpu_count()}; {platform.machine()}")


def run_check(mode: Mode, out: Path, log: Callable[[str], None] = print) -> tuple[str, dict[str, list[list]]]:
    """Run the four steps; returns the Markdown report (also written to ``out``) and its rows."""
    from harness.runtime import ensure_ray

    start = time.perf_counter()
    ensure_ray()
    with tempfile.TemporaryDirectory(prefix="exifbench-gpu-check-") as tmp:
        work = Path(tmp)
        train_root = write_folders(work / "train", mode.n_train, mode.side, seed=0)
        test_root = write_folders(work / "test", mode.n_test, mode.side, seed=1)
        sweep_root = write_folders(work / "sweep", mode.sweep_images, mode.side, seed=2)
        photos = exif_photos(work / "photos", 16, (256, 192) if mode.device == "cpu" else (512, 384))
        log(f"data written ({time.perf_counter() - start:.1f}s)")
        ckpts = train_detectors(mode, train_root, work / "ckpt", log)
        exif_rows = exif_scoring(mode, ckpts, test_root, log)
        base_rows = baseline_sweeps(mode, ckpts, sweep_root, work, log)
        full_rows = full_sweep(mode, ckpts, sweep_root, work)
        pre_rows = pretext(mode, photos, work, log)
    report = "\n\n".join([
        "# exifbench GPU check" + (" (--cpu: tiny sizes, a test of the check itself)" if mode.device == "cpu" else ""),
        environment(mode) + f"; total {time.perf_counter() - start:.0f} s",
        "## 1. EXIF detectors: scoring throughput and precision\n\n"
        f"Labelled set: {mode.n_test} real + {mode.n_test} generated {mode.side}² images; AUC of each way of "
        "scoring; max |Δscore| against the authors' way in IEEE float32, also relative to the range of the "
        "authors' scores (exif-oc scores are negative log-likelihoods, whose scale depends on the mixture).\n\n"
        + table(["detector", "size", "images", "tiles/image", "way", "images/s", "vs authors' way",
                 "max |Δscore|", "max |Δscore| / score range", "AUC", "ΔAUC vs fp32"], exif_rows),
        "## 2. Baselines through the sweep engine (one detector per sweep, its own GPU actor)\n\n"
        + table(["detector", "images", "wall s", "images/s (end to end)", "model load s", "model busy s",
                 "images/s (model busy)", "GPU utilisation"], base_rows),
        "## 3. Pretext training (exif-backbone)\n\n"
        + table(["how", "preset", "pairs/step", "steps", "pairs/s", "wall s (with start-up)", "where"], pre_rows),
        "## 4. One sweep of all five detectors, end to end\n\n"
        "cnnspot, npr, spectrum, exif-bc, exif-oc" + (f", num_gpus = {mode.num_gpus} each" if mode.num_gpus else "")
        + "; grid none, jpeg(quality=75); busy times are summed over actors, so they can exceed the wall time.\n\n"
        + table(["cells", "wall s", "model load s", "preparation busy s", "model busy s", "overlap",
                 "GPU utilisation"], full_rows),
    ])
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(report + "\n")
    return report, {"exif": exif_rows, "baselines": base_rows, "pretext": pre_rows, "sweep": full_rows}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cpu", action="store_true", help="the same steps at tiny sizes on the CPU")
    parser.add_argument("--out", type=Path, default=Path("gpu_check.md"), help="where the report is written")
    args = parser.parse_args(argv)
    if not args.cpu and not torch.cuda.is_available():
        parser.error("no CUDA device: run with --cpu to check the steps at tiny sizes")
    print(run_check(CPU if args.cpu else GPU, args.out)[0])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
