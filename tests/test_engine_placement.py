"""Placement and batching rules of the engine, without Ray: GPU shares and size buckets."""
from __future__ import annotations

import pytest

from harness.api import ConfigError, Sample
from harness.engine.execute import chunk_work, gpu_shares
from harness.engine.plan import Cell, Plan, PlannedDetector
from harness.chains import expand_grid


def detector(num_gpus=None, actors=1) -> PlannedDetector:
    return PlannedDetector("d", "spectrum", {}, num_gpus, actors, "key", "ph", "")


def plan_of(*dets, cells=()) -> Plan:
    return Plan((), (), tuple(dets), tuple(cells), 0)


def test_no_gpus_in_the_cluster_means_cpu_actors():
    assert gpu_shares(plan_of(detector(), detector(0.5)), [0, 1], 0.0) == {0: 0.0, 1: 0.0}


def test_detectors_without_num_gpus_split_the_gpus_evenly_at_most_one_each():
    three = plan_of(detector(), detector(), detector())
    assert gpu_shares(three, [0, 1, 2], 1.0) == {0: 0.3333, 1: 0.3333, 2: 0.3333}
    assert gpu_shares(three, [0, 1, 2], 8.0) == {0: 1.0, 1: 1.0, 2: 1.0}


def test_explicit_fractional_num_gpus_is_kept_and_the_rest_shares_what_is_left():
    plan = plan_of(detector(0.25, actors=2), detector())
    assert gpu_shares(plan, [0, 1], 1.0) == {0: 0.25, 1: 0.5}


def test_asking_for_more_gpus_than_the_cluster_has_is_refused_before_placement():
    with pytest.raises(ConfigError, match="ask for 2 GPUs"):
        gpu_shares(plan_of(detector(1.0, actors=2)), [0], 1.0)


def test_chunks_hold_images_of_one_size_so_variable_inputs_batch_together():
    chains = expand_grid(["none", "jpeg(quality=80)"])
    samples = [Sample(f"id{i}", f"{i}.png", i % 2, "ds", "g", "f", width=64 if i % 3 else 128,
                      height=64 if i % 3 else 96) for i in range(12)]
    cells = [Cell(f"{s.sample_id}|{c.spec}", s, c, 0) for s in samples for c in chains]
    size = {s.sample_id: (s.width, s.height) for s in samples}
    chunks = chunk_work(cells, images_per_chunk=4)
    assert [len({size[w.sample_id] for w in chunk}) for chunk in chunks] == [1, 1, 1]
    assert sorted(w.sample_id for chunk in chunks for w in chunk) == sorted(size)
    assert all(len(w.jobs) == 2 for chunk in chunks for w in chunk)  # each chain once per image
