"""Faults: a detector actor whose process dies mid-sweep is restarted, its work redone, and
the sweep's scores are those of a clean run."""
from __future__ import annotations

import os
import signal

import pytest

from harness.config import load_sweep
from harness.engine.execute import run_cells, start_actors
from harness.engine.plan import make_plan
from tests.helpers import spectrum_checkpoint, write_binary_folders, write_sweep_config

pytestmark = pytest.mark.ray


@pytest.fixture(scope="module")
def plan(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("engine_faults")
    data = write_binary_folders(tmp / "data", generators=("gana",), n=8)
    ckpt = spectrum_checkpoint(tmp, n_bins=32, n=8, seed=4)
    path = write_sweep_config(tmp / "sweep.toml", run={"seed": 0},
                              datasets=[{"name": "tiny", "layout": "binary-folders", "root": data}],
                              detectors=[{"name": "spectrum", "checkpoint": ckpt, "n_bins": 32}],
                              grid=["none", "jpeg(quality=60)", "noise(sigma=3)"])
    return make_plan(load_sweep(path))


def sweep(ray, plan, actors, after_first_batch=lambda: None) -> dict:
    """All cells of ``plan`` through ``actors``, two images a chunk; ``after_first_batch``
    runs once, when the first scores are back."""
    scores: dict = {}

    def on_result(rows, n_images):
        first = not scores and any(s is not None for _, s, _ in rows)
        scores.update({k: (s, e) for k, s, e in rows})
        if first:
            after_first_batch()

    run_cells(ray, plan, plan.cells, on_result, images_per_chunk=2, max_inflight=2, actors=actors)
    return scores


def test_killed_detector_actor_is_replaced_and_scores_equal_a_clean_run(ray_session, plan):
    actors = start_actors(ray_session, plan, [0], 0.0)
    clean = sweep(ray_session, plan, actors)
    victim = ray_session.get(actors.pipeline[0].pid.remote())
    faulty = sweep(ray_session, plan, actors, after_first_batch=lambda: os.kill(victim, signal.SIGKILL))
    assert ray_session.get(actors.pipeline[0].pid.remote()) != victim  # the actor was restarted
    assert len(clean) == len(plan.cells) == 16 * 3
    assert faulty == clean
    assert all(error is None for _, error in clean.values())


def test_one_pipeline_actor_gives_the_same_scores_as_one_per_cpu(ray_session, plan):
    from harness.engine.execute import end_actors

    per_cpu = start_actors(ray_session, plan, [0], 0.0)
    assert len(per_cpu.pipeline) == 2
    expected = sweep(ray_session, plan, per_cpu)
    end_actors(ray_session, per_cpu)  # they hold both CPU slots
    single = start_actors(ray_session, plan, [0], 0.0, 1)  # one actor with two slots and threads
    try:
        assert len(single.pipeline) == 1
        assert sweep(ray_session, plan, single) == expected
    finally:
        end_actors(ray_session, single)
