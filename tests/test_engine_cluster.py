"""Clusters: on a two-node Ray cluster where one node advertises a GPU, detector actors and
training jobs that ask for a GPU land on that node, and the sweep's rows equal a single-node
run's. The GPU is a resource label only (no CUDA here), so the work falls back to CPU."""
from __future__ import annotations

import json

import pandas as pd
import pytest

from harness.config import load_sweep
from harness.engine.score_cache import ScoreCache
from harness.engine.sweep import run_sweep
from harness.testing import synthetic_training_set
from harness.checkpoint import read_manifest
from harness.train.jobs import fit_locally, run_training
from tests.helpers import start_local_ray, write_binary_folders, write_protocol_config, write_sweep_config

COLS = ["detector", "sample_id", "perturbation", "score", "error"]

pytestmark = [pytest.mark.slow,  # starts a two-node cluster: a minute or more on a small machine
              pytest.mark.ray]


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("engine_cluster")
    data = write_binary_folders(tmp / "data", generators=("gana",), n=4)
    train = synthetic_training_set(tmp / "train", n=8, seed=6)
    ckpt = fit_locally("spectrum", {"n_bins": 32}, train.samples, tmp / "ckpt")
    # Two detectors sharing the one GPU (num_gpus = 0.5 each).
    path = write_sweep_config(
        tmp / "sweep.toml", run={"seed": 0}, datasets=[{"name": "tiny", "layout": "binary-folders", "root": data}],
        detectors=[{"name": "spectrum", "alias": "a", "checkpoint": ckpt, "n_bins": 32, "num_gpus": 0.5},
                   {"name": "spectrum", "alias": "b", "checkpoint": ckpt, "n_bins": 32, "C": 0.5, "num_gpus": 0.5}],
        grid=["none", "jpeg(quality=60)"])
    return tmp, load_sweep(path), train


def rows(run_dir) -> pd.DataFrame:
    return pd.read_parquet(run_dir / "scores.parquet")[COLS].sort_values(COLS[:3]).reset_index(drop=True)


@pytest.fixture(scope="module")
def gpu_cluster(setup, ray_session):
    """Single-node rows first (on the session's Ray), then a two-node cluster in its place;
    the session's Ray is back (with its CPUs) for the tests after this module."""
    from ray.cluster_utils import Cluster

    tmp, config, _ = setup
    run_sweep(config, tmp / "single", quiet=True, cache=ScoreCache(tmp / "single.sqlite"), leaderboard=False)
    ray_session.shutdown()
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 2})
    try:
        gpu_node = cluster.add_node(num_cpus=1, num_gpus=1)
        cluster.wait_for_nodes()
        ray_session.init(address=cluster.address, log_to_driver=False)
        yield cluster, gpu_node.node_id
    finally:
        ray_session.shutdown()
        cluster.shutdown()
        start_local_ray()


def test_detector_actors_asking_for_a_gpu_run_on_the_gpu_node(setup, gpu_cluster):
    tmp, config, _ = setup
    cluster, gpu_node = gpu_cluster
    run_sweep(config, tmp / "cluster", address=cluster.address, quiet=True,
              cache=ScoreCache(tmp / "cluster.sqlite"), leaderboard=False)
    actors = json.loads((tmp / "cluster" / "run.json").read_text())["engine"]["actors"]
    placed = [a for group in actors.values() for a in group]
    assert len(placed) == 2 and {a["node_id"] for a in placed} == {gpu_node}
    assert {a["device"] for a in placed} == {"cpu"}  # a GPU resource without CUDA: CPU fallback
    pd.testing.assert_frame_equal(rows(tmp / "cluster"), rows(tmp / "single"))


def test_training_job_asking_for_a_gpu_runs_on_the_gpu_node(setup, gpu_cluster, tmp_path):
    _, _, train = setup
    cluster, gpu_node = gpu_cluster
    out = run_training("spectrum", {"n_bins": 32}, train.samples, tmp_path / "job", address=cluster.address)
    where = read_manifest(out)["extra"]["where"]
    assert where == {"node_id": gpu_node, "num_gpus": 1.0}


def test_protocol_training_jobs_run_on_the_gpu_node(gpu_cluster, tmp_path):
    """Every job of a protocol asks for a GPU where the cluster has one, so all land on the GPU node."""
    from harness.protocol import load_protocol, run_protocol

    cluster, gpu_node = gpu_cluster
    gens = ("gana", "ganb", "ganc")
    data = [{"name": role, "role": role, "layout": "binary-folders",
             "root": write_binary_folders(tmp_path / role, generators=gens, n=4, seed=seed)}
            for role, seed in (("train", 0), ("test", 50))]
    config = write_protocol_config(tmp_path / "protocol.toml", protocol={"kind": "train-on-each", "metrics": ["auc"]},
                                   datasets=data, detectors=[{"name": "spectrum", "n_bins": 32}],
                                   metrics={"bootstrap": 50})
    result = run_protocol(load_protocol(config), tmp_path / "run", address=cluster.address, quiet=True)
    jobs = json.loads((tmp_path / "run" / "protocol.json").read_text())["jobs"]
    assert result.trained == len(jobs) == 3
    assert [j["where"] for j in jobs] == [{"node_id": gpu_node, "num_gpus": 1.0}] * 3
    assert {j["device"] for j in jobs} == {"cpu"}  # a GPU resource without CUDA: CPU fallback
