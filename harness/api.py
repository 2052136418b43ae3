"""The contracts every part of exifbench speaks: plugin specs, records and protocols.

A detector, a perturbation and a dataset layout are each described by a small frozen
spec that a plugin returns from its hook (see :mod:`harness.hookspecs`). The objects the
specs create follow the protocols below.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Protocol, Sequence, runtime_checkable

import numpy as np
from PIL import Image

__all__ = [
    "Sample",
    "DetectorSpec",
    "PerturbationSpec",
    "ParamSpec",
    "LayoutSpec",
    "SuiteSpec",
    "TrainerSpec",
    "Detector",
    "ExifbenchError",
    "CheckpointError",
    "ConfigError",
    "DecodeError",
    "UnknownNameError",
    "resolve_factory",
]


class ExifbenchError(Exception):
    """Base of every error exifbench raises on purpose; its message says what to do."""


class ConfigError(ExifbenchError):
    """A configuration file or parameter is malformed."""


class CheckpointError(ExifbenchError):
    """A checkpoint is missing, of the wrong kind, or its keys do not match the model."""


class DecodeError(ExifbenchError):
    """An image file cannot be turned into an RGB image; ``reason`` is the short cause."""

    def __init__(self, reason: str, path: str | Path | None = None):
        super().__init__(f"{path}: {reason}" if path else reason)
        self.reason = reason


class UnknownNameError(ExifbenchError, KeyError):
    """A registry has no entry of that name."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


@dataclass(frozen=True)
class Sample:
    """One image of a dataset (DESIGN section 3).

    ``sample_id`` is the sha256 of the file bytes, so the same file has the same id in every
    dataset. ``subset`` is the benchmark's own grouping (the first folder below the root in
    the CNNDetection layout): reals of a subset are compared with the fakes of that subset.
    """

    sample_id: str
    path: str
    label: int
    dataset: str
    generator: str
    family: str
    split: str = "test"
    subset: str = ""
    format: str = ""
    width: int = 0
    height: int = 0
    has_exif: bool = False


@dataclass(frozen=True)
class ParamSpec:
    """One parameter of a perturbation: its type, default and allowed values."""

    name: str
    type: type
    default: Any = None
    choices: tuple[Any, ...] = ()

    def coerce(self, value: Any) -> Any:
        try:
            out = self.type(value)
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"parameter {self.name}={value!r} is not a {self.type.__name__}") from exc
        if self.choices and out not in self.choices:
            raise ConfigError(f"parameter {self.name}={value!r} must be one of {list(self.choices)}")
        return out


@dataclass(frozen=True)
class PerturbationSpec:
    """A perturbation: ``apply(image, rng, **params) -> image``, pure and seeded.

    ``metadata`` says what the perturbation does to a file's metadata (EXIF, ICC), since
    detectors that read metadata depend on it. ``check(params)``, when given, is called
    with every combination of (coerced) parameters when a spec string is parsed, and raises
    :class:`ConfigError` for one the perturbation refuses (e.g. two exclusive parameters).
    """

    name: str
    apply: Callable[..., Image.Image]
    params: tuple[ParamSpec, ...] = ()
    version: str = "1"
    summary: str = ""
    metadata: str = "pixels only; the image is decoded, so no metadata survives"
    stochastic: bool = False
    strength: str | None = None  # the parameter a robustness plot puts on its x axis
    check: Callable[[Mapping[str, Any]], None] | None = None


@dataclass(frozen=True)
class SuiteSpec:
    """A named perturbation grid of a published evaluation, with where it comes from.

    ``entries`` are spec strings (grids and chains allowed); a sweep config names a suite
    with ``[perturbations] suite = "NAME"``.
    """

    name: str
    title: str
    source: str
    entries: tuple[str, ...]


@dataclass(frozen=True)
class DetectorSpec:
    """A registered detector: ``factory`` is a lazy ``"module:Class"`` reference."""

    name: str
    approach: str            # what the detector looks at: "exif", "cnn", "spectral", "foundation", ...
    summary: str
    paper: str
    factory: str
    defaults: Mapping[str, Any] = field(default_factory=dict)
    trainable: bool = False
    #: a tiny, fast configuration (CPU, seconds) that the conformance kit trains and checks
    test_params: Mapping[str, Any] = field(default_factory=dict)
    #: parameters that must name an existing file or folder, each with the documented special
    #: values that are not paths (e.g. ``{"backbone": ("random",)}``). Every parameter whose
    #: value names an existing file or folder is hashed into the cache key whether declared
    #: or not; declaring one adds the check that it exists.
    path_params: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    #: change it whenever the detector's scores change for the same parameters and weights
    #: (its code, not its checkpoint): it is part of the cache key, so no stale score is served.
    #: Empty (the default) keeps the keys of detectors that declare none.
    version: str = ""
    #: the score is a probability of "generated" (a sigmoid or softmax output): the metrics then
    #: include its calibration (Brier score, expected calibration error, a reliability plot)
    score_is_probability: bool = False
    #: not empty: the detector is a control (e.g. the shortcut probe), and this says what it
    #: controls for. The leaderboard shows a control as a labelled row, outside the ranking;
    #: a ``[[detectors]]`` entry's ``control = "..."`` marks one configuration (e.g. a random
    #: backbone) the same way.
    control: str = ""
    #: how its memory grows with the input: a lazy ``"module:function"`` reference to
    #: ``function(params) -> (base_bytes, bytes_per_pixel[, bytes_per_pixel_squared])``, its
    #: peak memory while scoring one image of N = W x H pixels being about ``base +
    #: bytes_per_pixel * N + bytes_per_pixel_squared * N**2`` (``bytes_per_pixel = 0``: the
    #: input is cropped or resized to a fixed size; the squared term: attention over all of an
    #: image's tiles, as in the EXIF detectors' set transformer). The engine derives from it the
    #: largest image the detector takes within the sweep's ``[run] memory_mib``; larger ones
    #: get the ``[run] oversize`` policy. Empty: not declared, no limit.
    memory: str = ""

    def create(self, **params: Any) -> "Detector":
        cls = resolve_factory(self.factory)
        return cls(**{**self.defaults, **params})

    def memory_model(self, params: Mapping[str, Any]) -> tuple[float, float, float] | None:
        """``(base bytes, bytes per input pixel, bytes per pixel squared)`` with ``params`` (the
        defaults filled in), or None when the detector declares none."""
        if not self.memory:
            return None
        base, per_pixel, *squared = resolve_factory(self.memory)({**self.defaults, **params})
        return float(base), float(per_pixel), float(squared[0]) if squared else 0.0


@dataclass(frozen=True)
class TrainerSpec:
    """A training job that is not itself a detector (e.g. the EXIF pretext backbone).

    ``factory`` (lazy ``"module:Class"``) builds an object from keyword parameters whose
    ``fit(train, out, seed=..., device=...)`` writes a checkpoint folder. Every trainable
    detector is a trainer too, under its own name.
    """

    name: str
    summary: str
    factory: str
    defaults: Mapping[str, Any] = field(default_factory=dict)
    #: as :attr:`DetectorSpec.path_params`
    path_params: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    def create(self, **params: Any) -> Any:
        return resolve_factory(self.factory)(**{**self.defaults, **params})


@dataclass(frozen=True)
class LayoutSpec:
    """A dataset layout: ``read(root, dataset=name, **options) -> list[Sample]``."""

    name: str
    read: Callable[..., list[Sample]]
    summary: str = ""


@runtime_checkable
class Detector(Protocol):
    """What the harness needs of a detector (DESIGN section 3).

    The constructor takes keyword parameters and does no I/O. ``score`` returns one float
    per image, higher meaning more likely generated. The engine calls ``preprocess`` in CPU
    workers and ``score_batch`` in the process that holds the model, so both must agree:
    ``score(images) == score_batch([preprocess(i) for i in images])``.
    """

    threshold: float

    def load(self, device: str = "cpu") -> None: ...

    def preprocess(self, image: Image.Image) -> Any: ...

    def score_batch(self, items: Sequence[Any]) -> np.ndarray: ...

    def score(self, images: Sequence[Image.Image]) -> np.ndarray: ...


def resolve_factory(ref: str) -> Callable[..., Any]:
    """Import ``"package.module:Name"`` lazily, with an error that names the reference."""
    module_name, _, attr = ref.partition(":")
    try:
        return getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as exc:
        raise ExifbenchError(f"cannot import detector factory {ref!r}: {exc}") from exc
