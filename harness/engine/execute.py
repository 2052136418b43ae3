"""Running the missing cells of a plan on Ray.

Shape: the missing cells are grouped by sample, the samples sorted by image size and cut
into chunks (so a chunk holds images of one size, and detectors whose input grows with the
image, such as the EXIF detectors' tiles, still get batches of one shape). Each chunk goes
to one *pipeline actor*: it decodes each image once, applies each perturbation once, runs
every detector's preprocessing (``work.prepare``) and scores the detectors that run on CPU
with models it loaded once, when it started. There is one pipeline actor per CPU slot of
the cluster, so decoding in one overlaps with model work in another and no prepared image
crosses a process boundary. Detectors that hold a GPU share have their own actors
(``num_gpus``): a pipeline actor returns their prepared inputs as separate objects, which
go by reference straight to the GPU actor, never through the driver.

At most ``max_inflight`` chunks are in flight, so memory does not grow with the dataset.
Actors are restarted and their calls retried when a process dies (a call's inputs are
small and owned by the driver); each finished batch is committed to the score cache at
once, so an interrupted sweep loses at most the chunks in flight.
"""
from __future__ import annotations

import os
import time
from collections import defaultdict
from dataclasses import dataclass, field
from functools import cache
from typing import Any, Callable, Iterable, Iterator, Sequence

from harness.api import ConfigError, ExifbenchError
from harness.engine.plan import Cell, Plan
from harness.engine.work import SampleWork

__all__ = ["Actors", "EngineStats", "chunk_work", "iter_chunks", "end_actors", "gpu_shares", "start_actors", "run_cells"]

#: restarts of a dead actor (and retries of its calls) before the sweep gives up
ACTOR_RESTARTS = 4


@dataclass
class EngineStats:
    """Where the time went: busy seconds of preparation (decode, perturb, preprocess) and
    of scoring, and the wall time of the compute phase. ``overlap`` > 1 means work ran in
    parallel (several pipeline actors, or pipeline and GPU actors)."""

    load_s: float = 0.0      # from the start until every model had loaded
    prepare_s: float = 0.0
    score_s: float = 0.0
    wall_s: float = 0.0
    chunks: int = 0
    actors: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    @property
    def overlap(self) -> float:
        return (self.prepare_s + self.score_s) / self.wall_s if self.wall_s > 0 else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {"load_s": round(self.load_s, 3), "prepare_s": round(self.prepare_s, 3), "score_s": round(self.score_s, 3),
                "wall_s": round(self.wall_s, 3), "overlap": round(self.overlap, 3), "chunks": self.chunks,
                "actors": self.actors}


def _sample_groups(cells: Iterable[Cell]) -> Iterator[list[Cell]]:
    """Each sample's cells, samples sorted by size (pixels, then height); a sequence that
    already yields samples in that order (:class:`~harness.engine.plan.MissingCells`) is read
    as it comes, without gathering the cells."""
    if getattr(cells, "sample_ordered", False):
        yield from cells.by_sample()
        return
    by_sample: dict[str, list[Cell]] = defaultdict(list)
    for c in cells:
        by_sample[c.sample.sample_id].append(c)
    order = sorted(by_sample, key=lambda sid: (by_sample[sid][0].sample.height * by_sample[sid][0].sample.width,
                                               by_sample[sid][0].sample.height))
    for sid in order:
        yield by_sample[sid]


def _sample_work(cells: list[Cell]) -> SampleWork:
    """One sample's cells grouped by chain; a key seen twice (the same file twice in the
    plan) is computed once."""
    jobs: dict[str, list[tuple[int, str]]] = {}
    chains, seen = {}, set()
    for c in cells:
        if c.key in seen:
            continue
        seen.add(c.key)
        jobs.setdefault(c.chain.spec, []).append((c.detector, c.key))
        chains[c.chain.spec] = c.chain
    s = cells[0].sample
    return SampleWork(s.path, s.sample_id, tuple((chains[spec], tuple(j)) for spec, j in jobs.items()),
                      s.width, s.height)


def iter_chunks(cells: Iterable[Cell], images_per_chunk: int, pixels_per_chunk: int | None = None
                ) -> Iterator[list[SampleWork]]:
    """Group cells by sample, then by chain; samples by size; cut into chunks of at most
    ``images_per_chunk`` samples and (when given) ``pixels_per_chunk`` pixels, counted once
    per chain (each chain's image is held until the chunk is scored). A sample larger than
    the budget goes alone in its chunk. Lazy: memory does not grow with the plan."""
    n = max(1, images_per_chunk)
    chunk: list[SampleWork] = []
    pixels = 0
    for group in _sample_groups(cells):
        work = _sample_work(group)
        cost = max(1, work.width * work.height) * len(work.jobs)
        if chunk and (len(chunk) >= n or (pixels_per_chunk and pixels + cost > pixels_per_chunk)):
            yield chunk
            chunk, pixels = [], 0
        chunk.append(work)
        pixels += cost
    if chunk:
        yield chunk


def chunk_work(cells: Sequence[Cell], images_per_chunk: int, pixels_per_chunk: int | None = None
               ) -> list[list[SampleWork]]:
    """:func:`iter_chunks` as a list."""
    return list(iter_chunks(cells, images_per_chunk, pixels_per_chunk))


@dataclass
class Actors:
    """The actors of a sweep: the pipeline actors, which score the detectors in ``cpu``
    themselves, and the actors of each detector that holds a GPU share."""

    pipeline: list[Any]
    cpu: tuple[int, ...] = ()
    gpu: dict[int, list[Any]] = field(default_factory=dict)

    def of(self, i: int) -> list[Any]:
        """The actors that hold detector ``i``'s model."""
        return self.gpu.get(i, self.pipeline)

    def all(self) -> list[Any]:
        return [*self.pipeline, *(a for group in self.gpu.values() for a in group)]


def _load_all(defs: Sequence[tuple[str, dict]], own: Sequence[int], device: str) -> tuple[dict, dict]:
    """Load detectors ``own`` of ``defs``; a detector that cannot load is an error message,
    reported when its threshold is asked for (so the sweep names the detector)."""
    from harness.engine.work import detector_instance

    models, failed = {}, {}
    for i in own:
        try:
            det = detector_instance(*defs[i])
            det.load(device)
            models[i] = det
        except Exception as exc:  # noqa: BLE001 - reported with the detector's name
            failed[i] = f"{type(exc).__name__}: {exc}"
    return models, failed


class _Placed:
    """What every actor says about itself: its process and where it runs."""

    device = "cpu"

    def pid(self) -> int:
        return os.getpid()

    def where(self) -> dict:
        import ray

        return {"node_id": ray.get_runtime_context().get_node_id(), "pid": os.getpid(), "device": self.device}


@cache
def _actor_classes(ray):
    @ray.remote(max_restarts=ACTOR_RESTARTS, max_task_retries=ACTOR_RESTARTS)
    class PipelineActor(_Placed):
        """Decodes, perturbs and preprocesses chunks of samples; scores the CPU detectors."""

        def __init__(self, defs: list, own: list[int], threads: int, limits: list | None = None,
                     oversize: str = "error", decode_timeout: float | None = None):
            import torch

            torch.set_num_threads(max(1, threads))
            self.defs, self.limits, self.oversize = defs, limits or [], oversize
            self.decode_timeout = decode_timeout
            self.models, self.failed = _load_all(defs, own, "cpu")

        def thresholds(self) -> dict[int, Any]:
            return {**{i: float(m.threshold) for i, m in self.models.items()}, **self.failed}

        def run(self, work: list, seed: int, apply_orientation: bool, gpu_used: list[int]) -> tuple:
            from harness.engine.work import prepare, score_items

            start = time.perf_counter()
            *per_det, errors = prepare(work, seed, self.defs, apply_orientation, self.limits, self.oversize,
                                       self.decode_timeout)
            prepared = time.perf_counter()
            rows = [(k, None, e) for k, e in errors]
            for i, model in self.models.items():
                rows.extend(score_items(model, *per_det[i]))
            for i, reason in self.failed.items():  # cannot happen when the first actor loaded it,
                rows.extend((k, None, f"load: {reason}"[:200]) for k in per_det[i][0])  # unless nodes differ
            out = (rows, prepared - start, time.perf_counter() - prepared)
            # one object per return (num_returns = 1 + GPU detectors): the bare tuple when alone
            return (out, *[per_det[i] for i in gpu_used]) if gpu_used else out

    @ray.remote(max_restarts=ACTOR_RESTARTS, max_task_retries=ACTOR_RESTARTS)
    class DetectorActor(_Placed):
        """Holds one detector's model on a GPU share; scores batches of preprocessed items."""

        def __init__(self, name: str, params: dict, gpu_share: float, threads: int):
            import torch

            torch.set_num_threads(max(1, threads))
            # A GPU granted by Ray is only usable when CUDA sees one (a node may advertise a
            # GPU resource that this torch build or driver cannot reach): fall back to CPU.
            self.device = "cuda" if gpu_share > 0 and torch.cuda.is_available() else "cpu"
            models, self.failed = _load_all([(name, params)], [0], self.device)
            self.detector = models.get(0)

        def thresholds(self) -> dict[int, Any]:
            return {0: float(self.detector.threshold)} if self.detector is not None else dict(self.failed)

        def score(self, prepared: tuple) -> tuple:
            from harness.engine.work import score_items

            start = time.perf_counter()
            keys, items = prepared
            return score_items(self.detector, keys, items), time.perf_counter() - start

    return PipelineActor, DetectorActor


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


def _cluster_cpus(ray) -> int:
    return max(1, int(ray.cluster_resources().get("CPU", os.cpu_count() or 1)))


def _defs(plan: Plan) -> list[tuple[str, dict]]:
    return [(d.name, dict(d.params)) for d in plan.detectors]


def start_pipeline(ray, plan: Plan, cpu: Sequence[int], n: int | None = None) -> list[Any]:
    """``n`` pipeline actors (default and at most: one per CPU slot of the cluster), each
    holding ``CPUs // n`` CPU slots and as many torch threads, and the models of ``cpu``."""
    cls, _ = _actor_classes(ray)
    cpus = _cluster_cpus(ray)
    n = min(n or cpus, cpus)
    threads = max(1, cpus // n)
    limits = [d.max_pixels for d in plan.detectors]
    return [cls.options(num_cpus=threads).remote(_defs(plan), list(cpu), threads, limits, plan.oversize,
                                                 plan.decode_timeout_s)
            for _ in range(n)]


def start_gpu_actors(ray, plan: Plan, shares: dict[int, float], only: Sequence[int]) -> dict[int, list[Any]]:
    """``actors`` replicas of each detector in ``only``, each asking for its GPU share."""
    _, cls = _actor_classes(ray)
    out = {}
    for i in only:
        d = plan.detectors[i]
        out[i] = [cls.options(num_gpus=shares[i], num_cpus=0).remote(d.name, dict(d.params), shares[i], 2)
                  for _ in range(d.actors)]
    return out


def start_actors(ray, plan: Plan, needed: Sequence[int], cluster_gpus: float, cpu_actors: int | None = None) -> Actors:
    """Fresh actors for detectors ``needed``: pipeline actors scoring those without a GPU
    share, and GPU actors for the others."""
    shares = gpu_shares(plan, needed, cluster_gpus)
    cpu = tuple(i for i in needed if shares[i] == 0)
    return Actors(start_pipeline(ray, plan, cpu, cpu_actors), cpu,
                  start_gpu_actors(ray, plan, shares, [i for i in needed if shares[i] > 0]))


def end_actors(ray, actors: Actors) -> None:
    """End a sweep's actors. They hold the cluster's CPU slots (and GPU shares), so they
    are not kept after their sweep: later Ray work (training jobs, another sweep) needs them."""
    for actor in actors.all():
        try:
            ray.kill(actor)
        except Exception:  # noqa: BLE001 - already gone
            pass


def _ask_thresholds(actors: Actors) -> dict[Any, tuple[int, ...] | None]:
    """Ask every model holder for its thresholds *before* any chunk is queued, so that the
    answer comes as soon as its models have loaded (an actor runs its calls in order)."""
    refs: dict[Any, tuple[int, ...] | None] = {}
    if actors.cpu:
        refs[actors.pipeline[0].thresholds.remote()] = None
    for i, group in actors.gpu.items():
        refs[group[0].thresholds.remote()] = (i,)
    return refs


def _thresholds(ray, plan: Plan, asked: dict[Any, tuple[int, ...] | None], needed: Sequence[int]) -> dict[int, float]:
    """Waiting for the thresholds waits for the models to load: a detector that cannot load
    stops the sweep here, with the detector's own message, before its actor scores anything."""
    from ray.exceptions import RayActorError

    out: dict[int, float] = {}
    try:
        for ref, only in asked.items():
            got = ray.get(ref)
            out.update({i: got[0] for i in only} if only else {i: v for i, v in got.items() if i in needed})
    except RayActorError as exc:
        lines = [l for l in str(exc).splitlines() if l.strip()]
        cause = next((l for l in reversed(lines) if "Error" in l and ":" in l), lines[-1] if lines else "")
        raise ExifbenchError(f"the detector actors failed to start: {cause.strip()}") from None
    for i in needed:
        if isinstance(out.get(i), str):
            raise ExifbenchError(f"detector {plan.detectors[i].display_name!r} failed to load: {out[i]}")
    return out


class _Scheduler:
    """Keeps at most ``max_inflight`` chunks in flight and routes results back per chunk."""

    def __init__(self, ray, plan: Plan, actors: Actors, apply_orientation: bool):
        self.ray, self.plan, self.actors = ray, plan, actors
        self.apply_orientation = apply_orientation
        self.pending: dict[Any, tuple[int, int, int | None]] = {}  # ref -> (chunk, images, pipeline actor or None)
        self.left: dict[int, int] = {}                             # chunk id -> refs not yet returned
        self.busy = [0] * len(actors.pipeline)                     # chunks queued per pipeline actor
        self._next_gpu: dict[int, int] = defaultdict(int)
        self._cid = 0

    def submit(self, work: list[SampleWork]) -> None:
        used = sorted({d for w in work for _, jobs in w.jobs for d, _ in jobs})
        gpu_used = [d for d in used if d in self.actors.gpu]
        p = min(range(len(self.busy)), key=self.busy.__getitem__)  # the least loaded pipeline actor
        self.busy[p] += 1
        refs = self.actors.pipeline[p].run.options(num_returns=1 + len(gpu_used)).remote(
            work, self.plan.seed, self.apply_orientation, gpu_used)
        refs = refs if gpu_used else [refs]
        mine = [(refs[0], p)]
        for d, ref in zip(gpu_used, refs[1:]):  # prepared items go to the GPU actor as a reference
            group = self.actors.gpu[d]
            mine.append((group[self._next_gpu[d] % len(group)].score.remote(ref), None))
            self._next_gpu[d] += 1
        self.left[self._cid] = len(mine)
        for ref, pipe in mine:
            self.pending[ref] = (self._cid, len(work), pipe)
        self._cid += 1

    def next_result(self) -> tuple[list, int, tuple[float, float]]:
        """Block for one result: ``(rows, images completed, (prepare s, score s))``."""
        (ref,), _ = self.ray.wait(list(self.pending), num_returns=1)
        cid, n_images, pipe = self.pending.pop(ref)
        result = self.ray.get(ref)
        if pipe is not None:
            self.busy[pipe] -= 1
            rows, prep_s, score_s = result
        else:
            (rows, score_s), prep_s = result, 0.0
        self.left[cid] -= 1
        done = self.left[cid] == 0
        if done:
            del self.left[cid]
        return rows, n_images if done else 0, (prep_s, score_s)

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
              actors: Actors | None = None, detectors: Sequence[int] | None = None,
              stats: EngineStats | None = None, cpu_actors: int | None = None,
              pixels_per_chunk: int | None = None) -> dict[int, float]:
    """Compute ``cells`` and hand each finished batch of ``(key, score, error)`` rows to
    ``on_result(rows, n_images)``. ``detectors`` are the indices whose models are needed
    (default: those of ``cells``); ``cpu_actors`` the number of pipeline actors (default: one
    per CPU slot; fewer bound the memory of large CPU models, each actor holding a copy);
    ``pixels_per_chunk`` bounds a chunk's pixels (see :func:`iter_chunks`; default: the
    plan's, from ``[run] memory_mib`` and the detectors' declared memory growth).
    Returns each of those detectors' thresholds."""
    from harness.runtime import cluster_gpus

    stats = stats if stats is not None else EngineStats()
    start = time.monotonic()
    of_cells = cells.detector_indices() if hasattr(cells, "detector_indices") else {c.detector for c in cells}
    needed = sorted(set(detectors if detectors is not None else ()) | set(of_cells))
    own = actors is None
    actors = actors if actors is not None else start_actors(ray, plan, needed, cluster_gpus(), cpu_actors)
    sched = _Scheduler(ray, plan, actors, apply_orientation)
    max_inflight = max_inflight or 2 * len(actors.pipeline)

    per_chunk = pixels_per_chunk if pixels_per_chunk is not None else plan.pixels_per_chunk

    def counted() -> Iterator[list[SampleWork]]:
        for chunk in iter_chunks(cells, images_per_chunk, per_chunk):
            stats.chunks += 1
            yield chunk

    source = counted()
    try:
        asked = _ask_thresholds(actors)
        _feed(sched, source, max_inflight)  # the first chunks queue while the models load
        thresholds = _thresholds(ray, plan, asked, needed)
        stats.load_s = time.monotonic() - start
        while sched.pending:
            rows, n_images, (prep_s, score_s) = sched.next_result()
            stats.prepare_s += prep_s
            stats.score_s += score_s
            on_result(rows, n_images)
            _feed(sched, source, max_inflight)
        where = {id(a): w for a, w in zip(actors.all(), ray.get([a.where.remote() for a in actors.all()]))}
        stats.actors = {plan.detectors[i].display_name: [where[id(a)] for a in actors.of(i)] for i in needed}
    except BaseException:
        sched.cancel()  # Ctrl-C or a fatal error: stop queued work; finished batches are committed
        raise
    finally:
        stats.wall_s = time.monotonic() - start
        if own:
            end_actors(ray, actors)
    return thresholds
