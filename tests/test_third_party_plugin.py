"""The example plugin (tests/plugin_example), installed as an outside package is: found
through the entry-point group, conformant, swept (its perturbation also chained to a
built-in one), and never served stale scores when its weights are rewritten in place."""
from __future__ import annotations

import json
import re
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from harness import perturb, plugins
from harness.api import ConfigError
from harness.checkpoint import path_sha256
from harness.config import load_sweep
from harness.engine.plan import make_plan
from harness.engine.score_cache import ScoreCache
from harness.engine.sweep import run_sweep
from harness.testing import check_detector, synthetic_pair_images, synthetic_training_set
from tests.helpers import write_binary_folders, write_sweep_config

DIST = "exifbench-plugin-example"
GRID = ["none", "posterize(bits=[2,4])", "jpeg(quality=75)+posterize(bits=3)"]
SPECS = ["none", "posterize(bits=2)", "posterize(bits=4)", "jpeg(quality=75)+posterize(bits=3)"]


def train_weights(out: Path, seed: int) -> Path:
    """``hfstats`` weights trained as ``exifbench train`` trains them (in this process)."""
    from harness.train.jobs import fit_locally

    train = synthetic_training_set(out.parent / f"train-{seed}", n=8, seed=seed)
    return Path(fit_locally("hfstats", {}, train.samples, out, seed=seed))


def write_config(folder: Path, data: Path, coefficients: str, grid: list[str], detector: str = "hfstats") -> Path:
    """A sweep config in ``folder`` whose detector names its weights ``coefficients``."""
    return write_sweep_config(folder / "sweep.toml", run={"seed": 0, "batch_size": 8},
                              datasets=[{"name": "tiny", "layout": "binary-folders", "root": data}],
                              detectors=[{"name": detector, "coefficients": coefficients}], grid=grid)


# --- registration ----------------------------------------------------------------------

def test_the_examples_detector_and_perturbation_are_owned_by_its_distribution():
    pm = plugins.plugin_manager()
    distributions = {pm.get_name(plugin): dist.project_name for plugin, dist in pm.list_plugin_distinfo()}
    assert distributions.get(DIST) == DIST
    assert plugins.detectors().owner("hfstats") == DIST
    assert plugins.perturbations().owner("posterize") == DIST
    assert plugins.trainers().owner("hfstats") == DIST


def test_exifbench_list_shows_the_examples_detector_and_perturbation():
    def listing(what: str) -> str:
        return subprocess.run([sys.executable, "-m", "harness.cli", "list", what], capture_output=True, text=True,
                              check=True).stdout

    assert re.search(r"^hfstats\s+statistics\s+yes\s", listing("detectors"), re.M)
    assert re.search(r"^posterize\s+bits:int\s+1\s", listing("perturbations"), re.M)


def test_the_example_imports_only_harness_and_third_party_libraries():
    import ast

    import exifbench_plugin_example

    package = Path(exifbench_plugin_example.__file__).parent
    imported = set()
    for source in package.glob("*.py"):
        for node in ast.walk(ast.parse(source.read_text())):
            if isinstance(node, ast.Import):
                imported |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                imported.add(node.module.split(".")[0])
    outside = imported - set(sys.stdlib_module_names) - {"exifbench_plugin_example"}
    assert "harness" in outside and not outside & {"detectors", "perturbations", "tests"}, sorted(outside)


# --- the detector and the perturbation ------------------------------------------------

def test_the_examples_detector_passes_the_conformance_kit(tmp_path):
    measured = check_detector("hfstats", workdir=tmp_path)
    assert measured["auc"] == 1.0 and measured["heldout_auc"] >= 0.95 and measured["threshold"] == 0.5


def test_posterize_keeps_the_top_bits_and_leaves_its_input_alone():
    image = synthetic_pair_images(1)[0][1]
    before = image.tobytes()
    out = perturb("posterize(bits=2)", image, seed=0)
    assert np.array_equal(np.asarray(out), np.asarray(image) & 0b11000000)
    assert perturb("posterize(bits=2)", image, seed=9).tobytes() == out.tobytes() and image.tobytes() == before
    assert perturb("posterize(bits=8)", image).tobytes() == before
    with pytest.raises(ConfigError, match="bits"):
        perturb("posterize(bits=9)", image)


# --- a sweep ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def example_sweep(tmp_path_factory, ray_session):
    """One sweep of the example detector over the example perturbation (and a chain with a
    built-in one), its weights given relative to the config file."""
    tmp = tmp_path_factory.mktemp("plugin_sweep")
    data = write_binary_folders(tmp / "data", generators=("gana", "ganb"), n=3)
    weights = train_weights(tmp / "weights" / "hfstats", seed=1)
    config = load_sweep(write_config(tmp, data, "weights/hfstats", GRID))
    result = run_sweep(config, tmp / "run", quiet=True, cache=ScoreCache(tmp / "scores.sqlite"))
    return tmp / "run", weights, result


@pytest.mark.ray
def test_the_sweep_scores_every_cell_of_the_example_detector_and_perturbation(example_sweep):
    run, weights, result = example_sweep
    scores = pd.read_parquet(run / "scores.parquet")
    assert result.computed == result.total == len(scores) == 12 * len(SPECS)
    assert set(scores["detector"]) == {"hfstats"} and sorted(set(scores["perturbation"])) == sorted(SPECS)
    assert scores["error"].isna().all() and scores["score"].between(0, 1).all()
    assert set(scores["weights_sha256"]) == {path_sha256(weights)}
    assert set(scores.loc[scores["perturbation"] == "posterize(bits=2)", "perturbation_version"]) == {"posterize@1"}
    clean = scores[scores["perturbation"] == "none"]
    assert roc_auc_score(clean["label"], clean["score"]) >= 0.9


@pytest.mark.ray
def test_the_examples_rows_are_in_metrics_csv_and_run_json(example_sweep):
    run, weights, _ = example_sweep
    metrics = pd.read_csv(run / "metrics.csv")
    assert len(metrics) == 2 * len(SPECS)
    assert set(zip(metrics["detector"], metrics["perturbation"])) == {("hfstats", s) for s in SPECS}
    assert (metrics["n_real"] + metrics["n_fake"] == 6).all() and (metrics["threshold"] == 0.5).all()
    record = json.loads((run / "run.json").read_text())
    assert record["detectors"][0]["params"]["coefficients"] == str(weights)
    assert {"spec": "posterize(bits=2)", "version": "posterize@1"} in record["perturbations"]
    assert "hfstats" in (run / "leaderboard.md").read_text()


# --- stale weights ---------------------------------------------------------------------

@pytest.mark.ray
def test_weights_rewritten_in_place_are_scored_again_not_served_from_the_cache(tmp_path, ray_session):
    data = write_binary_folders(tmp_path / "data", generators=("g",), n=3)
    weights = train_weights(tmp_path / "weights" / "hfstats", seed=1)
    config = write_config(tmp_path, data, "weights/hfstats", ["none", "posterize(bits=3)"])
    cache = ScoreCache(tmp_path / "scores.sqlite")

    def sweep(name: str) -> tuple[dict, pd.DataFrame]:
        run_sweep(load_sweep(config), tmp_path / name, quiet=True, cache=cache, leaderboard=False)
        frame = pd.read_parquet(tmp_path / name / "scores.parquet").sort_values(["sample_id", "perturbation"])
        return json.loads((tmp_path / name / "run.json").read_text())["cells"], frame.reset_index(drop=True)

    first, first_rows = sweep("first")
    assert (first["computed"], first["cached"]) == (12, 0)
    old_sha = path_sha256(weights)
    assert set(first_rows["weights_sha256"]) == {old_sha}
    again, again_rows = sweep("again")
    assert (again["computed"], again["cached"]) == (0, 12)
    pd.testing.assert_series_equal(again_rows["score"], first_rows["score"])

    assert train_weights(weights, seed=2) == weights  # retrained on other images, into the same folder
    assert path_sha256(weights) != old_sha

    retrained, retrained_rows = sweep("retrained")
    assert (retrained["computed"], retrained["cached"]) == (12, 0)
    assert set(retrained_rows["weights_sha256"]) == {path_sha256(weights)}
    assert not np.allclose(retrained_rows["score"], first_rows["score"])


@pytest.fixture
def undeclared_variant():
    """``hfstats-undeclared``: the example detector registered (in this process) without
    declaring ``coefficients`` in its ``path_params``."""
    from harness.hookspecs import hookimpl

    spec = replace(plugins.detectors()["hfstats"], name="hfstats-undeclared", path_params={})

    class Variant:
        @hookimpl
        def exifbench_detectors(self):
            return [spec]

    pm = plugins.plugin_manager()
    pm.register(Variant(), name="undeclared-variant")
    plugins.detectors.cache_clear()
    try:
        yield spec.name
    finally:
        pm.unregister(name="undeclared-variant")
        plugins.detectors.cache_clear()


def test_an_undeclared_weights_parameter_is_hashed_by_content_too(tmp_path, undeclared_variant):
    data = write_binary_folders(tmp_path / "data", generators=("g",), n=2)
    weights = tmp_path / "weights" / "hfstats"
    plugins.detectors()["hfstats"].create().fit(synthetic_training_set(tmp_path / "t1", n=8, seed=1), weights)
    config = load_sweep(write_config(tmp_path, data, "weights/hfstats", ["none"], detector=undeclared_variant))
    assert config.detectors[0].param_dict["coefficients"] == str(weights)  # read from the config's folder
    before = [c.key for c in make_plan(config).cells]
    assert [c.key for c in make_plan(config).cells] == before

    plugins.detectors()["hfstats"].create().fit(synthetic_training_set(tmp_path / "t2", n=8, seed=2), weights)
    after = [c.key for c in make_plan(config).cells]
    assert len(after) == len(before) == 4 and set(after).isdisjoint(before)
