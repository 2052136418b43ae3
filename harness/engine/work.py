"""The work itself, free of Ray: decode once, perturb once, preprocess per detector, score.

These functions run inside Ray workers and actors (see :mod:`harness.engine.execute`) and
equally in a plain loop, which is how the tests pin their behaviour.
"""
from __future__ import annotations

import json
import traceback
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np

from harness.api import DecodeError
from harness.chains import Chain, apply_chain, derive_seed

__all__ = ["SampleWork", "prepare", "score_items", "detector_instance", "short_error"]


@dataclass(frozen=True)
class SampleWork:
    """What to compute for one sample: per chain, the (detector index, cell key) pairs."""

    path: str
    sample_id: str
    jobs: tuple[tuple[Chain, tuple[tuple[int, str], ...]], ...]


_DETECTORS: dict[str, Any] = {}


def detector_instance(name: str, params: Mapping[str, Any]) -> Any:
    """A detector built from its parameters (no weights), cached per worker process."""
    key = f"{name}|{json.dumps(dict(params), sort_keys=True, default=str)}"
    if key not in _DETECTORS:
        from harness.plugins import detectors

        _DETECTORS[key] = detectors()[name].create(**dict(params))
    return _DETECTORS[key]


def short_error(stage: str, exc: BaseException) -> str:
    reason = exc.reason if isinstance(exc, DecodeError) else f"{type(exc).__name__}: {exc}"
    return f"{stage}: {reason}"[:200]


def prepare(work: Sequence[SampleWork], seed: int, detector_defs: Sequence[tuple[str, Mapping[str, Any]]],
            apply_orientation: bool = False) -> tuple:
    """Decode each sample once, apply each chain once, preprocess for each detector.

    Returns one ``(keys, items)`` pair per detector, then the list of ``(key, error)``
    for cells that failed before reaching a model.
    """
    from harness.data.decode import load_image

    per_det: list[tuple[list[str], list[Any]]] = [([], []) for _ in detector_defs]
    errors: list[tuple[str, str]] = []
    for w in work:
        try:
            image = load_image(w.path, apply_orientation=apply_orientation)
        except Exception as exc:  # noqa: BLE001 - any failure becomes a row, never a crash
            errors.extend((key, short_error("decode", exc)) for _, jobs in w.jobs for _, key in jobs)
            continue
        for chain, jobs in w.jobs:
            try:
                perturbed = apply_chain(chain, image, derive_seed(seed, w.sample_id, chain.spec))
            except Exception as exc:  # noqa: BLE001
                errors.extend((key, short_error(f"perturb {chain.spec}", exc)) for _, key in jobs)
                continue
            for d, key in jobs:
                try:
                    item = detector_instance(*detector_defs[d]).preprocess(perturbed)
                except Exception as exc:  # noqa: BLE001
                    errors.append((key, short_error("preprocess", exc)))
                    continue
                per_det[d][0].append(key)
                per_det[d][1].append(item)
    return (*per_det, errors)


def score_items(detector: Any, keys: Sequence[str], items: Sequence[Any]) -> list[tuple[str, float | None, str | None]]:
    """Score a batch; if the batch fails, score one by one so one bad item fails alone."""
    if not keys:
        return []
    try:
        scores = np.asarray(detector.score_batch(list(items)), dtype=np.float64).reshape(-1)
        if scores.shape[0] != len(keys):
            raise ValueError(f"score_batch returned {scores.shape[0]} scores for {len(keys)} items")
        return [(k, float(s), None) if np.isfinite(s) else (k, None, "score: not finite") for k, s in zip(keys, scores)]
    except Exception:  # noqa: BLE001
        if len(keys) == 1:
            return [(keys[0], None, "score: " + traceback.format_exc(limit=1).strip().splitlines()[-1][:180])]
    out = []
    for k, item in zip(keys, items):
        out.extend(score_items(detector, [k], [item]))
    return out
