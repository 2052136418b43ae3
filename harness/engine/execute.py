"""Running the missing cells of a plan on Ray.

Shape: the missing cells are grouped by sample, the samples sorted by image size and cut
into chunks (so a chunk holds images of one size, and detectors whose input grows with the
image, such as the EXIF detectors' tiles, still get batches of one shape). A Ray task per
chunk decodes each image once, applies each perturbation once and runs every detector's
CPU preprocessing (``work.prepare``); its per-detector outputs go, as object references,
straight to that detector's actor, which loaded its model once and scores whole batches.
The driver never fetches the images: it waits only on the small score lists. CPU tasks for
later chunks run while the actors score earlier ones; at most ``max_inflight`` chunks are
in flight, so memory does not grow with the dataset. Actors are restarted and their calls
retried when a process dies (the prepared inputs stay in the object store, owned by the
driver); each finished batch is committed to the score cache at once, so an interrupted
sweep loses at most the chunks in flight.
"""
from __future__ import annotations

import os
import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Sequence

from harness.api import ConfigError, ExifbenchError
from harness.engine.plan import Cell, Plan
from harness.engine.work import SampleWork

__all__ = ["EngineStats", "chunk_work", "gpu_shares", "start_actors", "pooled_actors", "release_actors", "run_cells"]

#: restarts of a dead actor (and retries of its calls) before the sweep gives up
ACTOR_RESTARTS = 4


@dataclass
class EngineStats:
    """Where the time went: busy seconds of the CPU tasks and of the actors, and the wall
    time of the compute phase. ``overlap`` > 1 means CPU work and model work ran at once."""

    prepare_s: float = 0.0
    score_s: float = 0.0
    wall_s: float = 0.0
    chunks: int = 0
    actors: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    @property
    def overlap(self) -> float:
        return (self.prepare_s + self.score_s) / self.wall_s if self.wall_s > 0 else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {"prepare_s": round(self.prepare_s, 3), "score_s": round(self.score_s, 3),
                "wall_s": round(self.wall_s, 3), "overlap": round(self.overlap, 3), "chunks": self.chunks,
                "actors": self.actors}


def chunk_work(cells: Sequence[Cell], images_per_chunk: int) -> list[list[SampleWork]]:
    """Group missing cells by sample, then by chain; sort samples by size; cut into chunks."""
    by_sample: dict[str, dict[str, list[tuple[int, str]]]] = defaultdict(lambda: defaultdict(list))
    chains, samples = {}, {}
    for c in cells:
        sid = c.sample.sample_id
        jobs = by_sample[sid][c.chain.spec]
        if any(k == c.key for _, k in jobs):
            continue  # the same file twice in the plan: compute it once
        jobs.append((c.detector, c.key))
        chains[c.chain.spec] = c.chain
        samples.setdefault(sid, c.sample)
    # Size buckets: neighbouring chunks hold images of one size, so batches have one shape.
    order = sorted(by_sample, key=lambda sid: (samples[sid].height * samples[sid].width, samples[sid].height))
    works = [SampleWork(samples[sid].path, sid,
                        tuple((chains[spec], tuple(jobs)) for spec, jobs in by_sample[sid].items()))
             for sid in order]
    n = max(1, images_per_chunk)
    return [works[i:i + n] for i in range(0, len(works), n)]


def _actor_class(ray):
    @ray.remote(max_restarts=ACTOR_RESTARTS, max_task_retries=ACTOR_RESTARTS)
    class DetectorActor:
        """Holds one loaded detector; scores batches of preprocessed items."""

        def __init__(self, name: str, params: dict, gpu_share: float, threads: int):
            import torch

            from harness.engine.work import detector_instance

            torch.set_num_threads(max(1, threads))
            # A GPU granted by Ray is only usable when CUDA sees one (a node may advertise a
            # GPU resource that this torch build or driver cannot reach): fall back to CPU.
            self.device = "cuda" if gpu_share > 0 and torch.cuda.is_available() else "cpu"
            self.detector = detector_instance(name, params)
            self.detector.load(self.device)

        def threshold(self) -> float:
            return float(self.detector.threshold)

        def pid(self) -> int:
            return os.getpid()

        def where(self) -> dict:
            import ray as _ray

            return {"node_id": _ray.get_runtime_context().get_node_id(), "pid": os.getpid(), "device": self.device}

        def score(self, prepared: tuple) -> tuple:
            from harness.engine.work import score_items

            start = time.perf_counter()
            keys, items = prepared
            return score_items(self.detector, keys, items), time.perf_counter() - start

    return DetectorActor


def _prepare_task(ray):
    @ray.remote(num_cpus=1, max_retries=3)
    def prepare_remote(work, seed, defs, apply_orientation):
        import sys

        from harness.engine.work import detector_instance, prepare

        start = time.perf_counter()
        for name, params in defs:  # build (and import) the detectors first, then pin torch to one thread:
            detector_instance(name, params)  # a task holds one CPU slot
        if "torch" in sys.modules:
            sys.modules["torch"].set_num_threads(1)
        *per_det, errors = prepare(work, seed, defs, apply_orientation)
        return (*per_det, (errors, time.perf_counter() - start))

    return prepare_remote


def gpu_shares(plan: Plan, needed: Sequence[int], cluster_gpus: float) -> dict[int, float]:
    """The GPU share of each needed detector's actors: 0 on a cluster without GPUs; the
    detector table's ``num_gpus`` when given; otherwise the cluster's GPUs split evenly
    (at most one each), so that every actor can be placed at once."""
    if cluster_gpus <= 0:
        return {i: 0.0 for i in needed}
    explicit = {i: float(plan.detectors[i].num_gpus) for i in needed if plan.detectors[i].num_gpus is not None}
    asked = sum(explicit[i] * plan.detectors[i].actors for i in explicit)
    if asked > cluster_gpus:
        raise ConfigError(f"the detectors ask for {asked:g} GPUs in all (num_gpus x actors) but the cluster has "
                          f"{cluster_gpus:g}; lower num_gpus (a fraction shares a GPU) or actors")
    rest = [i for i in needed if i not in explicit]
    n_rest = sum(plan.detectors[i].actors for i in rest)
    even = min(1.0, (cluster_gpus - asked) / n_rest) if n_rest else 0.0
    if rest and even <= 0:
        raise ConfigError("no GPU left for detectors without num_gpus; give them num_gpus = 0 or a fraction")
    return {**explicit, **{i: round(even, 4) for i in rest}}


def start_actors(ray, plan: Plan, needed: Sequence[int], cluster_gpus: float,
                 only: Sequence[int] | None = None) -> dict[int, list[Any]]:
    """``actors`` replicas per needed detector (or per detector in ``only``, a subset of
    ``needed``), each asking for its GPU share (if any).

    Actors reserve no CPU slot: on a CPU-only machine their model work shares the cores with
    the prepare tasks (which hold the slots), which is what lets the two overlap.
    """
    cls = _actor_class(ray)
    shares = gpu_shares(plan, needed, cluster_gpus)
    out = {}
    for i in (needed if only is None else only):
        d, threads = plan.detectors[i], _threads(ray, plan, needed, shares, i)
        opts = {"num_gpus": shares[i], "num_cpus": 0}
        out[i] = [cls.options(**opts).remote(d.name, dict(d.params), shares[i], threads) for _ in range(d.actors)]
    return out


def _threads(ray, plan: Plan, needed: Sequence[int], shares: dict[int, float], i: int) -> int:
    """Torch threads of an actor: a GPU actor needs few; CPU actors split the cluster's CPUs."""
    if shares[i] > 0:
        return 2
    cpus = int(ray.cluster_resources().get("CPU", os.cpu_count() or 1))
    return max(1, cpus // max(1, sum(plan.detectors[j].actors for j in needed if shares[j] == 0)))


#: CPU actors kept between the sweeps of one Ray session (a notebook, the demo): loading a
#: model costs seconds. Keyed by detector key and replicas. Actors holding a GPU share are
#: never kept: they end with their sweep, so the GPUs are free for training jobs and others.
_POOL: dict[str, Any] = {"job": None, "actors": {}}
POOL_SIZE = 8


def pooled_actors(ray, plan: Plan, needed: Sequence[int], cluster_gpus: float) -> dict[int, list[Any]]:
    """Like :func:`start_actors`, reusing live CPU actors of earlier sweeps in this Ray session."""
    job = ray.get_runtime_context().get_job_id()
    if _POOL["job"] != job:
        _POOL.update(job=job, actors={})
    pool: dict[tuple, list[Any]] = _POOL["actors"]
    shares = gpu_shares(plan, needed, cluster_gpus)
    keys = {i: (plan.detectors[i].key, plan.detectors[i].actors) for i in needed if shares[i] == 0}
    stale = [k for k in pool if k not in keys.values()]
    for key in stale[:max(0, len(pool) + len(keys) - POOL_SIZE)]:  # oldest first
        for actor in pool.pop(key):
            ray.kill(actor)
    fresh = start_actors(ray, plan, needed, cluster_gpus, only=[i for i in needed if keys.get(i) not in pool])
    for i, actors in fresh.items():
        if i in keys:
            pool[keys[i]] = actors
    return {i: pool[keys[i]] if i in keys else fresh[i] for i in needed}


def _end_gpu_actors(ray, actors: dict[int, list[Any]]) -> None:
    """GPU actors are not pooled (see ``_POOL``): end them with their sweep."""
    pooled = {id(a) for group in _POOL["actors"].values() for a in group}
    for group in actors.values():
        for actor in group:
            if id(actor) not in pooled:
                ray.kill(actor)


def release_actors() -> None:
    """End the actors kept between sweeps (their models free their memory and GPUs)."""
    import ray

    for group in _POOL["actors"].values():
        for actor in group:
            if ray.is_initialized():
                ray.kill(actor)
    _POOL["actors"] = {}


def _forget(actors: dict[int, list[Any]]) -> None:
    """Drop actors that failed from the pool, so the next sweep starts fresh ones."""
    dead = {id(a) for group in actors.values() for a in group}
    for key in [k for k, group in _POOL["actors"].items() if any(id(a) in dead for a in group)]:
        del _POOL["actors"][key]


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


class _Scheduler:
    """Keeps at most ``max_inflight`` chunks in flight and routes results back per chunk."""

    def __init__(self, ray, plan: Plan, actors: dict[int, list[Any]], apply_orientation: bool):
        self.ray, self.plan, self.actors = ray, plan, actors
        self.defs = [(d.name, dict(d.params)) for d in plan.detectors]
        self.prep = _prepare_task(ray)
        self.apply_orientation = apply_orientation
        self.pending: dict[Any, tuple[int, int, bool]] = {}   # ref -> (chunk id, images, is error list)
        self.left: dict[int, int] = {}                        # chunk id -> refs not yet returned
        self._next_actor: dict[int, int] = defaultdict(int)
        self._cid = 0

    def submit(self, work: list[SampleWork]) -> None:
        refs = self.prep.options(num_returns=len(self.defs) + 1).remote(
            work, self.plan.seed, self.defs, self.apply_orientation)
        used = sorted({d for w in work for _, jobs in w.jobs for d, _ in jobs})
        mine = [(refs[-1], True)]
        for d in used:  # the prepared items go to the actor as a reference, never via the driver
            group = self.actors[d]
            mine.append((group[self._next_actor[d] % len(group)].score.remote(refs[d]), False))
            self._next_actor[d] += 1
        self.left[self._cid] = len(mine)
        for ref, is_errors in mine:
            self.pending[ref] = (self._cid, len(work), is_errors)
        self._cid += 1

    def next_result(self) -> tuple[list, int, float, bool]:
        """Block for one result: ``(rows, images completed, busy seconds, is_prepare)``."""
        (ref,), _ = self.ray.wait(list(self.pending), num_returns=1)
        cid, n_images, is_errors = self.pending.pop(ref)
        rows, busy = self.ray.get(ref)
        if is_errors:
            rows = [(k, None, e) for k, e in rows]
        self.left[cid] -= 1
        done = self.left[cid] == 0
        if done:
            del self.left[cid]
        return rows, n_images if done else 0, busy, is_errors

    def cancel(self) -> None:
        for ref in list(self.pending):
            try:
                self.ray.cancel(ref)
            except Exception:  # noqa: BLE001 - best effort on the way out
                pass
        self.pending.clear()


def _feed(sched: _Scheduler, chunks: Iterator[list[SampleWork]], max_inflight: int) -> None:
    while len(sched.left) < max_inflight:
        work = next(chunks, None)
        if work is None:
            return
        sched.submit(work)


def run_cells(ray, plan: Plan, cells: Sequence[Cell], on_result: Callable[[list, int], None], *,
              images_per_chunk: int, apply_orientation: bool = False, max_inflight: int | None = None,
              actors: dict[int, list[Any]] | None = None, detectors: Sequence[int] | None = None,
              stats: EngineStats | None = None) -> dict[int, float]:
    """Compute ``cells`` and hand each finished batch of ``(key, score, error)`` rows to
    ``on_result(rows, n_images)``. ``detectors`` are the indices whose actors are needed
    (default: those of ``cells``). Returns each of those detectors' thresholds."""
    from harness.engine.ray_runtime import cluster_gpus

    stats = stats if stats is not None else EngineStats()
    start = time.monotonic()
    needed = sorted(set(detectors if detectors is not None else ()) | {c.detector for c in cells})
    own = actors is None
    actors = actors if actors is not None else pooled_actors(ray, plan, needed, cluster_gpus())
    chunks = chunk_work(cells, images_per_chunk)
    stats.chunks = len(chunks)
    sched = _Scheduler(ray, plan, actors, apply_orientation)
    max_inflight = max_inflight or max(2, 2 * int(ray.cluster_resources().get("CPU", 1)))
    source = iter(chunks)
    try:
        _feed(sched, source, max_inflight)  # the first chunks are prepared while the models load
        thresholds = {i: _threshold(ray, plan, i, actors[i][0]) for i in needed}
        while sched.pending:
            rows, n_images, busy, is_prepare = sched.next_result()
            if is_prepare:
                stats.prepare_s += busy
            else:
                stats.score_s += busy
            on_result(rows, n_images)
            _feed(sched, source, max_inflight)
    except BaseException:
        sched.cancel()  # Ctrl-C or a fatal error: stop queued work; finished batches are committed
        _forget(actors)
        raise
    finally:
        stats.wall_s = time.monotonic() - start
    stats.actors = {plan.detectors[i].label: ray.get([a.where.remote() for a in actors[i]]) for i in needed}
    if own:
        _end_gpu_actors(ray, actors)
    return thresholds
