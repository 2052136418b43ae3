"""The training sets of a protocol, drawn from its training data.

- ``train-on-each``: one set per training generator ``g``: the fakes of ``g`` and ``g``'s
  reals.
- ``leave-one-out``: one set per training generator ``g``: the fakes and reals of every
  other training generator (the set is named ``all-but-g``); ``g`` must be among the test
  generators.

"A generator's reals": where the training reals are grouped by generator (their ``subset``
names a generator, as in the CNNDetection layout ``<generator>/0_real``), the reals of that
subset; otherwise every training real (a manifest whose reals carry no subset). This is the
rule by which the metrics pair the fakes of a generator with reals.

A protocol is honest only if no test image was trained on: a test image whose content
(``sample_id``) is also in the training data stops the run before any training.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from harness.api import ConfigError, Sample

__all__ = ["TrainingSet", "training_sets", "fake_generators", "check_disjoint"]


@dataclass(frozen=True)
class TrainingSet:
    """``name`` is the row of the matrices; ``generators`` those whose fakes it holds."""

    name: str
    generators: tuple[str, ...]
    samples: tuple[Sample, ...]


def fake_generators(samples: Sequence[Sample]) -> list[str]:
    return sorted({s.generator for s in samples if s.label == 1})


def _chosen(found: list[str], wanted: Sequence[str]) -> list[str]:
    if not wanted:
        return found
    unknown = [g for g in wanted if g not in found]
    if unknown:
        raise ConfigError(f"[protocol] generators {unknown} have no generated images in the training data "
                          f"(found: {found})")
    return list(wanted)


def _reals_of(reals: Sequence[Sample], generators: set[str], all_generators: set[str]) -> list[Sample]:
    grouped = any(r.subset in all_generators for r in reals)
    return [r for r in reals if r.subset in generators] if grouped else list(reals)


def training_sets(kind: str, train: Sequence[Sample], wanted: Sequence[str] = (),
                  test_generators: Sequence[str] = ()) -> list[TrainingSet]:
    """The training sets of ``kind`` over the training generators (``wanted``, or every one
    found in ``train``), each with reals and fakes."""
    generators = _chosen(fake_generators(train), wanted)
    fakes = [s for s in train if s.label == 1]
    reals = [s for s in train if s.label == 0]
    if kind == "train-on-each":
        groups = [(g, [g]) for g in generators]
    else:
        if len(generators) < 2:
            raise ConfigError(f"leave-one-out needs at least two training generators, found {generators}")
        missing = [g for g in generators if g not in test_generators]
        if missing:
            raise ConfigError(f"leave-one-out tests each generator it leaves out, but the test data has no "
                              f"generated images of {missing} (test generators: {sorted(test_generators)})")
        groups = [(f"all-but-{g}", [o for o in generators if o != g]) for g in generators]
    out = []
    for name, gens in groups:
        keep = set(gens)
        samples = [s for s in fakes if s.generator in keep] + _reals_of(reals, keep, set(generators))
        if not any(s.label == 0 for s in samples):
            raise ConfigError(f"training set {name!r} has no real images: the training data needs reals "
                              f"(of {sorted(keep)}, or reals without a generator subset)")
        out.append(TrainingSet(name, tuple(gens), tuple(samples)))
    return out


def check_disjoint(train: Sequence[Sample], test: Sequence[Sample]) -> None:
    """Refuses test images that are also training images (by content)."""
    trained = {s.sample_id for s in train}
    both = [s for s in test if s.sample_id in trained]
    if both:
        raise ConfigError(f"{len(both)} test images are also in the training data (same content), e.g. "
                          f"{both[0].path}: a protocol tests on images never trained on; separate the data")
