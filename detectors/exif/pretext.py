"""``exif-backbone``: the self-supervised EXIF pretext training of SDAIE (authors'
``backbone_train.py``).

Each step draws pairs of real photographs, 16 random tiles of each (after the CLIP
normalisation), and trains the backbone with its 14 heads: cross-entropy on the
categorical tags of the first photo plus a Thurstone ranking BCE on the ordinal tags of the
pair (see :mod:`detectors.exif.labels`, :mod:`detectors.exif.losses`); unweighted sum;
Adam 1e-4. A ``state.pt`` beside the checkpoint (weights, optimiser, step, random state,
loss history) lets an interrupted job resume; ``loss.csv`` and ``loss.png`` record the
curve. Presets: ``paper`` (the paper's network and global batch: the authors' 64 pairs on
each of 8 GPUs, 512 pairs per step; with ``workers = 8`` each worker draws their 64) and
``cpu-small`` (width 8, 32 px tiles: a smoke-size run of about a minute on two CPU cores).
``cpu-demo`` is the demo's (see its comment).

Data-parallel training: ``workers = N`` (N > 1) runs the same loop in N Ray Train workers
(:mod:`harness.train.ray_train`, DistributedDataParallel). ``batch_pairs`` stays the global
batch, the pairs of one step summed over the workers: each worker draws
``batch_pairs / N`` pairs from its own shard of the photos with its own random stream, and
DDP averages the gradients, which is the gradient of the single-process mean over all the
pairs whenever every worker's masks count the same terms (always, when every photo carries
every tag). The logged loss is the mean over the workers. ``use_gpu`` (default: whether
the cluster has GPUs) chooses GPU or CPU workers.

Deviation: the authors read photos pre-processed into 256 px tensors; here each photo is
decoded once and a centre region of ``cache_side`` px (``None``: the whole photo) is kept
in memory, from which the crops are drawn, so camera traces are never resampled.
"""
from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from harness.api import CheckpointError, ConfigError
from harness.detector import TrainingSet
from harness.checkpoint import data_manifest_sha256, write_checkpoint
from harness.files import atomic_path
from harness.train.ray_train import SINGLE_PROCESS, Replica
from detectors.exif.curves import write_loss_curve
from detectors.exif.evaluate import compare_pretext, evaluate_pretext, keep_region as _keep, safe_exif as _safe_exif
from detectors.exif.labels import HEAD_TAGS, RANKING, Vocabulary, build_vocabulary, encode_photo, pair_targets
from detectors.exif.losses import pretext_loss
from detectors.exif.model import BackboneConfig, PretextNet
from detectors.exif.tiling import normalise, random_crops

__all__ = ["PretextConfig", "PRESETS", "ExifBackboneTrainer", "PhotoBank", "PairBatch"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PretextConfig:
    width: int = 32
    patch_size: int = 64
    steps: int = 100_000
    batch_pairs: int = 64
    n_crops: int = 16
    lr: float = 1e-4
    mask_ties: bool = False
    cache_side: int | None = 1024
    log_every: int = 10
    save_every: int = 500
    threads: int | None = None  # torch CPU threads during fit (None: leave as is)
    workers: int = 1            # data-parallel Ray Train workers; batch_pairs is their sum
    use_gpu: bool | None = None  # GPU workers (None: when the cluster has GPUs)


PRESETS = {
    # the authors' global batch: 64 pairs per GPU x 8 GPUs
    "paper": PretextConfig(batch_pairs=512),
    # small networks are dominated by per-operation overhead: one thread is faster on a busy CPU
    "cpu-small": PretextConfig(width=8, patch_size=32, steps=50, batch_pairs=4, cache_side=256, log_every=1,
                               save_every=25, threads=1),
    # the demo's backbone: the cpu-small network, long enough and with a learning rate high
    # enough to learn camera traces in about 3 minutes on one core (held-out figures in the
    # README, tests/benchmarks/pretext_demo_check.py); 8 crops of 8 pairs per step
    "cpu-demo": PretextConfig(width=8, patch_size=32, steps=400, batch_pairs=8, n_crops=8, lr=1e-3, cache_side=256,
                              log_every=10, save_every=100, threads=1),
}


class PhotoBank:
    """Decoded photos (uint8, centre region) with their encoded EXIF targets.

    ``shard=(k, n)`` keeps every n-th usable photo from the k-th (a data-parallel worker's
    share); the vocabulary is always built from all of them. ``n_photos`` counts all usable
    photos, ``len`` those of this shard.
    """

    def __init__(self, train: TrainingSet, patch: int, cache_side: int | None, shard: tuple[int, int] = (0, 1)):
        exifs, usable, self.skipped = [], [], []
        for i, sample in enumerate(train.samples):
            if sample.label != 0:
                continue
            exif = _safe_exif(sample.path)
            if not any(t in exif for t in HEAD_TAGS):
                self.skipped.append(sample.path)
                continue
            exifs.append(exif)
            usable.append(i)
        k, n = shard
        if len(usable) < 2 * n:
            per = f" for each of {n} workers" if n > 1 else ""
            raise ConfigError(f"exif-backbone needs at least 2 real photos with EXIF{per}, found {len(usable)} "
                              f"({len(self.skipped)} without EXIF tags)")
        self.n_photos = len(usable)
        self.vocab = build_vocabulary(exifs)
        mine = range(k, len(usable), n)
        self.images = [_keep(train.image(usable[j]), patch, cache_side) for j in mine]
        coded = [encode_photo(exifs[j], self.vocab) for j in mine]
        self.cats = torch.stack([c for c, _ in coded])
        self.vals = torch.stack([v for _, v in coded])

    def __len__(self) -> int:
        return len(self.images)

    def crops(self, idx: np.ndarray, n: int, patch: int, rng: np.random.Generator) -> torch.Tensor:
        return torch.stack([random_crops(normalise(self.images[i].float().div_(255)), n, patch, rng) for i in idx])


@dataclass(frozen=True)
class PairBatch:
    """One step's photo pairs: ``crops`` holds the first photos' crops, then the second
    photos' (2B, n_crops, 3, patch, patch); ``target``/``mask`` (B, 14) as
    :func:`detectors.exif.labels.pair_targets`."""

    crops: torch.Tensor
    target: torch.Tensor
    mask: torch.Tensor

    def __len__(self) -> int:
        return len(self.target)

    @staticmethod
    def join(parts: list["PairBatch"]) -> "PairBatch":
        """The pairs of ``parts`` as one batch, in order (what N workers' batches make together)."""
        firsts = [p.crops[:len(p)] for p in parts]
        seconds = [p.crops[len(p):] for p in parts]
        return PairBatch(torch.cat(firsts + seconds), torch.cat([p.target for p in parts]),
                         torch.cat([p.mask for p in parts]))


class ExifBackboneTrainer:
    """``fit(train, out)`` trains the pretext network on the reals of ``train``."""

    name = "exif-backbone"
    #: ``fit`` can run as one replica of a data-parallel job (:mod:`harness.train.ray_train`)
    data_parallel = True

    def __init__(self, preset: str = "paper", **overrides: Any):
        if preset not in PRESETS:
            raise ConfigError(f"exif-backbone: preset={preset!r}; use one of {sorted(PRESETS)}")
        unknown = set(overrides) - set(PretextConfig.__dataclass_fields__)
        if unknown:
            raise ConfigError(f"exif-backbone: unknown parameters {sorted(unknown)}; "
                              f"known: {sorted(PretextConfig.__dataclass_fields__)}")
        self.preset = preset
        self.config = replace(PRESETS[preset], **overrides)
        if self.config.workers < 1 or self.config.batch_pairs % self.config.workers:
            raise ConfigError(f"exif-backbone: batch_pairs={self.config.batch_pairs} is the global batch (pairs "
                              f"per step summed over the workers) and must be a multiple of "
                              f"workers={self.config.workers}")
        if self.config.use_gpu not in (None, True, False):
            raise ConfigError(f"exif-backbone: use_gpu={self.config.use_gpu!r}; use true or false, or leave it out "
                              "(GPU workers when the cluster has GPUs)")

    def fit(self, train: TrainingSet, out: str | Path, seed: int = 0, device: str = "cpu",
            replica: Replica = SINGLE_PROCESS, **_: Any) -> Path:
        if replica.world_size != self.config.workers:
            raise ConfigError(f"exif-backbone: workers={self.config.workers} trains through Ray Train "
                              "(`exifbench train exif-backbone` or harness.train.jobs.run_training), "
                              f"not in one process (this replica is one of {replica.world_size})")
        before = torch.get_num_threads()
        if self.config.threads:
            torch.set_num_threads(self.config.threads)
        try:
            return self._fit(train, Path(out), seed, device, replica)
        finally:
            torch.set_num_threads(before)

    def _fit(self, train: TrainingSet, out: Path, seed: int, device: str, replica: Replica) -> Path:
        cfg = self.config
        bank = PhotoBank(train, cfg.patch_size, cfg.cache_side, shard=(replica.rank, replica.world_size))
        torch.manual_seed(seed)
        model = PretextNet(BackboneConfig(width=cfg.width, patch_size=cfg.patch_size)).to(device)
        net = replica.wrap(model)
        opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
        rng = np.random.default_rng(seed if replica.world_size == 1 else (seed, replica.rank))
        step, history = self._resume(out, model, opt, rng, bank.vocab, replica, seed)
        pairs = cfg.batch_pairs // replica.world_size
        started = time.perf_counter()
        while step < cfg.steps:
            loss, terms = self.train_step(net, opt, bank, rng, device, pairs)
            step += 1
            if step % cfg.log_every == 0 or step == cfg.steps:
                mean = replica.mean(torch.cat([torch.tensor([loss], dtype=torch.float64), terms.double()]))
                history.append({"step": step, "loss": float(mean[0]), **{f"head{i}_{t}": float(mean[1 + i])
                                                                         for i, t in enumerate(HEAD_TAGS)}})
            if step % cfg.save_every == 0 and step < cfg.steps:
                self._save_state(out, model, opt, rng, step, history, bank.vocab, replica)
        self._save_state(out, model, opt, rng, step, history, bank.vocab, replica)
        if replica.rank != 0:
            return out
        write_loss_curve(out, history, f"exif-backbone pretext loss ({self.preset})")
        return self._write(out, model, bank, train, history, time.perf_counter() - started)

    def evaluate(self, checkpoint: str | Path, photos: list) -> Any:
        """How much the backbone in ``checkpoint`` learned, on held-out ``photos`` with EXIF:
        :func:`detectors.exif.evaluate.evaluate_pretext` (its ``table`` and ``summary()``)."""
        return evaluate_pretext(checkpoint, photos)

    def compare(self, checkpoint: str | Path, control: str | Path, photos: list) -> Any:
        """The paired difference of two backbones' heads on the same held-out ``photos``:
        :func:`detectors.exif.evaluate.compare_pretext` (a table with ``delta`` and its interval)."""
        return compare_pretext(checkpoint, control, photos)

    def train_step(self, net: PretextNet, opt, bank: PhotoBank, rng: np.random.Generator,
                   device: str, pairs: int | None = None) -> tuple[float, torch.Tensor]:
        """One optimiser step on ``pairs`` (default ``batch_pairs``) random pairs; returns
        (loss, per-head terms)."""
        return self.step(net, opt, self.draw_batch(bank, rng, pairs or self.config.batch_pairs), device)

    def draw_batch(self, bank: PhotoBank, rng: np.random.Generator, pairs: int) -> PairBatch:
        """``pairs`` random pairs of photos of ``bank`` (with replacement), ``n_crops`` crops each."""
        cfg = self.config
        i1 = rng.integers(0, len(bank), size=pairs)
        i2 = rng.integers(0, len(bank), size=pairs)
        crops = torch.cat([bank.crops(i1, cfg.n_crops, cfg.patch_size, rng),
                           bank.crops(i2, cfg.n_crops, cfg.patch_size, rng)])
        return PairBatch(crops, *pair_targets(bank.cats[i1], bank.vals[i1], bank.vals[i2], cfg.mask_ties))

    def step(self, net: torch.nn.Module, opt, batch: PairBatch, device: str) -> tuple[float, torch.Tensor]:
        """One optimiser step on ``batch`` (``net`` may be DDP-wrapped: it then averages the
        gradients over the workers); returns (loss, per-head terms)."""
        outs = net(batch.crops.to(device))  # both photos of every pair in one batch: samples are independent
        b = len(batch)
        loss, terms = pretext_loss([o[:b] for o in outs], [o[b:] for o in outs], batch.target.to(device),
                                   batch.mask.to(device))
        opt.zero_grad()
        loss.backward()
        opt.step()
        return float(loss.detach()), terms.cpu()

    # --- persistence -------------------------------------------------------------------
    def _state_key(self) -> dict:
        # where and how fast it runs, not what it computes: a state resumes across worker counts
        return {k: v for k, v in asdict(self.config).items()
                if k not in ("steps", "log_every", "save_every", "threads", "workers", "use_gpu")}

    def _save_state(self, out: Path, net, opt, rng, step: int, history: list, vocab: Vocabulary,
                    replica: Replica = SINGLE_PROCESS) -> None:
        rngs = replica.gather(rng.bit_generator.state)  # every worker's stream, in rank order
        if replica.rank != 0:
            return
        out.mkdir(parents=True, exist_ok=True)
        state = {"net": net.state_dict(), "opt": opt.state_dict(), "step": step,
                 "meta": json.dumps({"config": self._state_key(), "rng": rngs[0] if len(rngs) == 1 else rngs,
                                     "history": history, "vocab": vocab.to_json()}),
                 "torch_rng": torch.get_rng_state()}
        with atomic_path(out / "state.pt") as tmp:
            torch.save(state, tmp)

    def _resume(self, out: Path, net, opt, rng, vocab: Vocabulary, replica: Replica = SINGLE_PROCESS,
                seed: int = 0) -> tuple[int, list]:
        path = out / "state.pt"
        if not path.is_file():
            return 0, []
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # a pickle carrying code (or any non-tensor file) is refused, never run
            raise CheckpointError(f"cannot resume from {str(path)!r} (read with weights_only=True): "
                                  f"{str(exc).splitlines()[0][:300]}") from exc
        meta = json.loads(state["meta"])
        if meta["config"] != self._state_key() or meta["vocab"] != vocab.to_json():
            log.warning("exif-backbone: %s belongs to another configuration or data; starting afresh", path)
            return 0, []
        net.load_state_dict(state["net"])
        opt.load_state_dict(state["opt"])
        rngs = meta["rng"] if isinstance(meta["rng"], list) else [meta["rng"]]
        if len(rngs) == replica.world_size:
            rng.bit_generator.state = rngs[replica.rank]
        else:
            log.warning("exif-backbone: %s was saved by %d workers, this run has %d: weights and optimiser "
                        "resume, the photo draws start new streams", path, len(rngs), replica.world_size)
            rng.bit_generator.state = np.random.default_rng((seed, replica.rank, state["step"])).bit_generator.state
        torch.set_rng_state(state["torch_rng"])
        log.info("exif-backbone: resuming from step %d", state["step"])
        return int(state["step"]), meta["history"]

    def _write(self, out: Path, net, bank: PhotoBank, train: TrainingSet, history: list, seconds: float) -> Path:
        cfg = self.config
        reals = [s for s in train.samples if s.label == 0]
        return write_checkpoint(
            out, self.name, net.state_dict(),
            params={**BackboneConfig(width=cfg.width, patch_size=cfg.patch_size).as_dict()},
            config={"preset": self.preset, **asdict(cfg)},
            data_sha256=data_manifest_sha256([s.sample_id for s in reals], [0] * len(reals)),
            extra={"vocabulary": bank.vocab.to_json(), "heads": list(HEAD_TAGS),
                   "ranking_heads": {str(k): v for k, v in RANKING.items()}, "n_photos": bank.n_photos,
                   "skipped_without_exif": len(bank.skipped), "final_loss": history[-1]["loss"] if history else None,
                   "seconds_this_run": round(seconds, 2)},
        )
