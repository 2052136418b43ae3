"""Running the missing cells of a plan on Ray.

Shape: samples are cut into chunks; a Ray task per chunk decodes each image once, applies
each perturbation once and runs every detector's CPU preprocessing (``work.prepare``); its
per-detector outputs go, as object references, straight to that detector's actor, which
loaded its model once and scores whole batches. CPU tasks run while actors score earlier
chunks; at most ``max_inflight`` chunks are in flight, so memory does not grow with the
dataset. Actors are restarted and their calls retried when a process dies; each finished
batch is committed to the score cache at once, so an interrupted sweep loses at most the
chunks in flight.
"""
from __future__ import annotations

import os
from collections import defaultdict
from typing import Any, Callable, Iterable, Sequence

from harness.api import ExifbenchError
from harness.engine.plan import Cell, Plan
from harness.engine.work import SampleWork

__all__ = ["chunk_work", "run_cells"]


def chunk_work(cells: Sequence[Cell], images_per_chunk: int) -> list[list[SampleWork]]:
    """Group missing cells by sample, then by chain; cut the samples into chunks."""
    by_sample: dict[str, dict[str, list[tuple[int, str]]]] = defaultdict(lambda: defaultdict(list))
    chains, paths = {}, {}
    for c in cells:
        sid = c.sample.sample_id
        if c.key in {k for _, k in by_sample[sid][c.chain.spec]}:
            continue  # the same file twice in the plan: compute it once
        by_sample[sid][c.chain.spec].append((c.detector, c.key))
        chains[c.chain.spec] = c.chain
        paths.setdefault(sid, c.sample.path)
    works = [SampleWork(paths[sid], sid, tuple((chains[spec], tuple(jobs)) for spec, jobs in per_chain.items()))
             for sid, per_chain in by_sample.items()]
    n = max(1, images_per_chunk)
    return [works[i:i + n] for i in range(0, len(works), n)]


def _actor_class(ray):
    @ray.remote(max_restarts=4, max_task_retries=4)
    class DetectorActor:
        """Holds one loaded detector; scores batches of preprocessed items."""

        def __init__(self, name: str, params: dict, device: str, threads: int):
            import torch

            from harness.engine.work import detector_instance

            torch.set_num_threads(max(1, threads))
            self.detector = detector_instance(name, params)
            self.detector.load(device)

        def threshold(self) -> float:
            return float(self.detector.threshold)

        def pid(self) -> int:
            return os.getpid()

        def score(self, prepared: tuple) -> list:
            from harness.engine.work import score_items

            keys, items = prepared
            return score_items(self.detector, keys, items)

    return DetectorActor


def _prepare_task(ray):
    @ray.remote(num_cpus=1, max_retries=3)
    def prepare_remote(work, seed, defs, apply_orientation, n_out):
        import torch

        from harness.engine.work import prepare

        torch.set_num_threads(1)
        return prepare(work, seed, defs, apply_orientation)

    return prepare_remote


def start_actors(ray, plan: Plan, gpus: float) -> list[list[Any]]:
    """One or more actors per detector, each asking for a GPU share when the cluster has GPUs."""
    cls = _actor_class(ray)
    cpus = int(ray.cluster_resources().get("CPU", os.cpu_count() or 1))
    n_actors = sum(d.actors for d in plan.detectors)
    threads = max(1, cpus // max(1, n_actors)) if gpus == 0 else 2
    out = []
    for d in plan.detectors:
        share = (d.num_gpus if d.num_gpus is not None else 1.0) if gpus > 0 else 0.0
        device = "cuda" if share > 0 else "cpu"
        out.append([cls.options(num_gpus=share, num_cpus=0 if share == 0 else 1)
                    .remote(d.name, dict(d.params), device, threads) for _ in range(d.actors)])
    return out


def _threshold(ray, plan: Plan, i: int, actor: Any) -> float:
    """Asking for the threshold waits for the model to load: a detector that cannot load
    stops the sweep here, before any image is processed, with the detector's own message."""
    from ray.exceptions import RayActorError

    try:
        return ray.get(actor.threshold.remote())
    except RayActorError as exc:
        lines = [l for l in str(exc).splitlines() if l.strip()]
        cause = next((l for l in reversed(lines) if "Error" in l and ":" in l), lines[-1] if lines else "")
        raise ExifbenchError(f"detector {plan.detectors[i].label!r} failed to load: {cause.strip()}") from None


def run_cells(ray, plan: Plan, cells: Sequence[Cell], on_result: Callable[[list, int], None], *,
              images_per_chunk: int, apply_orientation: bool = False, max_inflight: int | None = None,
              actors: list[list[Any]] | None = None) -> dict[int, float]:
    """Compute ``cells`` and hand each finished batch of ``(key, score, error)`` rows to
    ``on_result(rows, n_images)``. Returns each detector's threshold."""
    from harness.engine.ray_runtime import cluster_gpus

    actors = actors or start_actors(ray, plan, cluster_gpus())
    thresholds = {i: _threshold(ray, plan, i, a[0]) for i, a in enumerate(actors)}
    defs = [(d.name, dict(d.params)) for d in plan.detectors]
    prep = _prepare_task(ray)
    cpus = int(ray.cluster_resources().get("CPU", 1))
    max_inflight = max_inflight or max(2, 2 * cpus)
    pending: dict[Any, int] = {}       # ref -> number of images it completes (0 for non-final refs)
    outstanding: dict[int, int] = {}   # chunk id -> refs left
    chunk_of: dict[Any, int] = {}
    error_refs: set[Any] = set()
    chunks = iter(chunk_work(cells, images_per_chunk))
    rr = 0

    def submit(cid: int, work: list[SampleWork]) -> None:
        nonlocal rr
        refs = prep.options(num_returns=len(defs) + 1).remote(work, plan.seed, defs, apply_orientation, len(defs))
        refs = refs if isinstance(refs, list) else [refs]
        used = {d for w in work for _, jobs in w.jobs for d, _ in jobs}
        mine = [refs[-1]]
        error_refs.add(refs[-1])
        for d in sorted(used):
            group = actors[d]
            mine.append(group[rr % len(group)].score.remote(refs[d]))
            rr += 1
        outstanding[cid] = len(mine)
        for r in mine:
            chunk_of[r] = cid
            pending[r] = len(work)

    cid = 0
    for work in chunks:
        submit(cid, work)
        cid += 1
        if len(outstanding) >= max_inflight:
            break
    exhausted = len(outstanding) < max_inflight
    while pending:
        ready, _ = ray.wait(list(pending), num_returns=1)
        ref = ready[0]
        n_images = pending.pop(ref)
        c = chunk_of.pop(ref)
        rows = ray.get(ref)
        outstanding[c] -= 1
        done = outstanding[c] == 0
        if done:
            del outstanding[c]
        if ref in error_refs:
            error_refs.discard(ref)
            rows = [(k, None, e) for k, e in rows]
        on_result(rows, n_images if done else 0)
        if done and not exhausted:
            nxt = next(chunks, None)
            if nxt is None:
                exhausted = True
            else:
                submit(cid, nxt)
                cid += 1
    return thresholds
