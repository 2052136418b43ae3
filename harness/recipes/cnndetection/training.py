"""Training loop of the CNNDetection recipe, shared by the ``cnnspot``, ``npr`` and ``univfd`` baselines.

Wang et al., CVPR 2020 (github.com/PeterWang512/CNNDetection, ``train.py``,
``earlystop.py``, ``networks/trainer.py``): one logit, ``BCEWithLogitsLoss``, Adam with
betas (beta1, 0.999); after each epoch the validation accuracy (threshold 0.5) feeds an
early stopper (patience ``patience`` epochs, an improvement must be at least 0.001); when it
fires, the learning rate is divided by 10 and a new stopper (minimum improvement 0.002)
starts, until the rate falls below ``min_lr`` (1e-6). The weights kept are the last ones the
stopper saved, as their ``model_epoch_best.pth``.

NPR (``networks/trainer.py`` of NPR-DeepfakeDetection) trains a fixed number of epochs and
multiplies the rate by 0.8 at the end of every ``decay_every``-th epoch (``--delr_freq``),
keeping the last weights: ``Schedule(patience=None, decay_every=10)``.

UnivFD trains its linear head with AdamW (weight decay 0) and the CNNDetection stopper.

The validation split is held out from the training set (stratified, seeded), since the
harness hands a detector one labelled training set.
"""
from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np
import torch
from torch import nn

__all__ = ["Schedule", "TrainLog", "EarlyStopping", "split_train_val", "train_classifier", "evaluate_accuracy",
           "recalibrate_batchnorm"]


@dataclass(frozen=True)
class Schedule:
    """Optimiser and schedule of one training run."""

    epochs: int
    batch_size: int
    lr: float
    betas: tuple[float, float] = (0.9, 0.999)
    optimizer: str = "adam"  # "adam" (CNNSpot, NPR) or "adamw" (UnivFD)
    weight_decay: float = 0.0
    patience: int | None = 5  # CNNDetection early stopping; None: no early stopping
    min_lr: float = 1e-6
    decay_every: int | None = None  # NPR: lr *= decay_factor every decay_every epochs
    decay_factor: float = 0.8
    #: re-estimate BatchNorm statistics of the final weights (short CPU runs; not the authors')
    recalibrate_bn: bool = False


@dataclass
class TrainLog:
    """What happened during training, for the checkpoint manifest."""

    train_loss: list[float] = field(default_factory=list)
    val_accuracy: list[float] = field(default_factory=list)
    lr: list[float] = field(default_factory=list)
    kept_epoch: int = -1
    stopped_early: bool = False
    images_seen: int = 0
    seconds: float = 0.0

    def as_dict(self) -> dict:
        return {
            "epochs_run": len(self.train_loss), "train_loss": [round(v, 6) for v in self.train_loss],
            "val_accuracy": [round(v, 6) for v in self.val_accuracy], "lr": self.lr,
            "kept_epoch": self.kept_epoch, "stopped_early": self.stopped_early,
            "images_seen": self.images_seen, "seconds": round(self.seconds, 3),
        }


class EarlyStopping:
    """CNNDetection's ``EarlyStopping`` on validation accuracy (higher is better)."""

    def __init__(self, patience: int, min_improvement: float):
        self.patience = patience
        self.min_improvement = min_improvement
        self.best: float | None = None
        self.counter = 0
        self.early_stop = False

    def step(self, score: float) -> bool:
        """Record ``score``; True when the weights of this epoch are to be kept."""
        if self.best is not None and score < self.best + self.min_improvement:
            self.counter += 1
            self.early_stop = self.counter >= self.patience
            return False
        self.best, self.counter = score, 0
        return True


def split_train_val(labels: np.ndarray, val_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Stratified, seeded hold-out: ``val_fraction`` of each class (at least one image of a
    class with two or more) goes to validation."""
    rng = np.random.default_rng(seed)
    train, val = [], []
    for cls in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == cls))
        n_val = 0 if val_fraction <= 0 or len(idx) < 2 else max(1, int(round(val_fraction * len(idx))))
        val.extend(idx[:n_val].tolist())
        train.extend(idx[n_val:].tolist())
    return np.array(sorted(train), dtype=np.int64), np.array(sorted(val), dtype=np.int64)


def _optimizer(params: list[nn.Parameter], s: Schedule) -> torch.optim.Optimizer:
    if s.optimizer == "adam":
        return torch.optim.Adam(params, lr=s.lr, betas=s.betas, weight_decay=s.weight_decay)
    if s.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=s.lr, betas=s.betas, weight_decay=s.weight_decay)
    raise ValueError(f"optimizer must be 'adam' or 'adamw', not {s.optimizer!r}")


@torch.no_grad()
def evaluate_accuracy(model: nn.Module, inputs: Sequence[torch.Tensor], labels: np.ndarray,
                      batch_size: int, device: str) -> float:
    """Accuracy at probability 0.5 (logit 0), as the authors' ``validate``."""
    model.eval()
    logits = [model(torch.stack(list(inputs[i:i + batch_size])).to(device)).reshape(-1).cpu()
              for i in range(0, len(inputs), batch_size)]
    return float(((torch.cat(logits) > 0).numpy().astype(np.int64) == labels).mean())


def _train_epoch(model: nn.Module, opt: torch.optim.Optimizer, make_input: Callable, labels: np.ndarray,
                 order: np.ndarray, batch_size: int, device: str, rng: np.random.Generator) -> float:
    model.train()
    loss_fn, total = nn.BCEWithLogitsLoss(), 0.0
    for start in range(0, len(order), batch_size):
        chunk = order[start:start + batch_size]
        x = torch.stack([make_input(int(i), rng) for i in chunk]).to(device)
        y = torch.as_tensor(labels[chunk], dtype=torch.float32, device=device)
        loss = loss_fn(model(x).reshape(-1), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        total += float(loss.detach()) * len(chunk)
    return total / max(len(order), 1)


@torch.no_grad()
def recalibrate_batchnorm(model: nn.Module, inputs: Sequence[torch.Tensor], batch_size: int, device: str) -> None:
    """Replace BatchNorm running statistics by their exact average over ``inputs``.

    A network trained from scratch for a few dozen steps has running averages that lag far
    behind its weights (momentum 0.1), which in evaluation mode shifts every logit by a large
    constant; one pass in training mode with a cumulative average fixes that.
    """
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if not norms or not len(inputs):
        return
    saved = [m.momentum for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # cumulative moving average
    model.train()
    for start in range(0, len(inputs), batch_size):
        model(torch.stack(list(inputs[start:start + batch_size])).to(device))
    for m, momentum in zip(norms, saved):
        m.momentum = momentum
    model.eval()


def _set_lr(opt: torch.optim.Optimizer, lr: float) -> None:
    for group in opt.param_groups:
        group["lr"] = lr


def train_classifier(model: nn.Module, make_input: Callable[[int, np.random.Generator], torch.Tensor],
                     labels: np.ndarray, train_idx: np.ndarray, val_inputs: Sequence[torch.Tensor],
                     val_labels: np.ndarray, schedule: Schedule, device: str,
                     rng: np.random.Generator, calibration_inputs: Sequence[torch.Tensor] = ()) -> TrainLog:
    """Train ``model`` (one logit) in place and leave in it the weights the schedule keeps.

    ``make_input(i, rng)`` returns the (augmented) input tensor of training image ``i``;
    ``calibration_inputs`` feed :func:`recalibrate_batchnorm` when the schedule asks for it
    (before every validation, so that what is validated is what is kept, and at the end).
    """
    import time

    t0, log = time.perf_counter(), TrainLog()
    opt = _optimizer([p for p in model.parameters() if p.requires_grad], schedule)
    lr, kept = schedule.lr, None
    stopper = EarlyStopping(schedule.patience or 0, 0.001) if schedule.patience and len(val_inputs) else None
    for epoch in range(schedule.epochs):
        order = rng.permutation(train_idx)
        log.train_loss.append(_train_epoch(model, opt, make_input, labels, order, schedule.batch_size, device, rng))
        log.images_seen += len(order)
        log.lr.append(lr)
        if schedule.decay_every and epoch % schedule.decay_every == 0 and epoch != 0:
            lr *= schedule.decay_factor
            _set_lr(opt, lr)
        if len(val_inputs):
            if schedule.recalibrate_bn:
                recalibrate_batchnorm(model, calibration_inputs, schedule.batch_size, device)
            log.val_accuracy.append(evaluate_accuracy(model, val_inputs, val_labels, schedule.batch_size, device))
        if stopper is None:
            continue
        if stopper.step(log.val_accuracy[-1]):
            kept, log.kept_epoch = copy.deepcopy(model.state_dict()), epoch
        if stopper.early_stop:
            lr /= 10.0
            if lr < schedule.min_lr or math.isclose(lr, 0.0):
                log.stopped_early = True
                break
            _set_lr(opt, lr)
            stopper = EarlyStopping(schedule.patience or 0, 0.002)
    if kept is not None:
        model.load_state_dict(kept)
    else:
        log.kept_epoch = len(log.train_loss) - 1
        if schedule.recalibrate_bn and not len(val_inputs):
            recalibrate_batchnorm(model, calibration_inputs, schedule.batch_size, device)
    log.seconds = time.perf_counter() - t0
    return log
