from __future__ import annotations

import pytest

from harness.api import ConfigError
from harness.config import load_sweep, load_train

GOOD = """
[run]
seed = 3
[[datasets]]
name = "zoo"
layout = "binary-folders"
root = "data"
families = { progan = "gan" }
[[detectors]]
name = "spectrum"
checkpoint = "ckpt"
[perturbations]
grid = ["none", "jpeg(quality=[95,75])"]
"""


def test_sweep_config_parses_into_frozen_dataclasses_with_paths_relative_to_the_file(tmp_path):
    (tmp_path / "s.toml").write_text(GOOD)
    cfg = load_sweep(tmp_path / "s.toml")
    assert cfg.run.seed == 3
    assert cfg.datasets[0].root == str(tmp_path / "data")
    assert cfg.datasets[0].option_dict == {"families": {"progan": "gan"}}
    assert cfg.detectors[0].param_dict == {"checkpoint": str(tmp_path / "ckpt")}
    with pytest.raises(Exception):
        cfg.run.seed = 4


def test_cpu_actors_is_optional_placement(tmp_path):
    (tmp_path / "s.toml").write_text(GOOD.replace("seed = 3", "seed = 3\ncpu_actors = 2"))
    assert load_sweep(tmp_path / "s.toml").run.cpu_actors == 2
    (tmp_path / "s.toml").write_text(GOOD)
    assert load_sweep(tmp_path / "s.toml").run.cpu_actors is None


@pytest.mark.parametrize("broken, message", [
    ("[run]\nseed = 0\n", "detectors"),
    (GOOD.replace('layout = "binary-folders"\n', ""), "layout"),
    (GOOD + "\n[extra]\n", "unknown keys"),
    (GOOD.replace("seed = 3", "seed = 'x'"), "run"),
    (GOOD.replace("seed = 3", "seed = 3\ncpu_actors = 0"), "at least 1"),
    ("not toml [", "TOML"),
])
def test_malformed_sweep_configs_say_what_is_wrong(tmp_path, broken, message):
    (tmp_path / "s.toml").write_text(broken)
    with pytest.raises(ConfigError, match=message):
        load_sweep(tmp_path / "s.toml")


def test_train_config_takes_datasets_and_params(tmp_path):
    (tmp_path / "t.toml").write_text('[[datasets]]\nname="a"\nlayout="real-only"\nroot="r"\n[params]\nn_bins=64\n')
    cfg = load_train(tmp_path / "t.toml")
    assert cfg.param_dict == {"n_bins": 64} and cfg.datasets[0].layout == "real-only"


def test_the_tests_config_writer_gives_what_the_hand_written_file_gives(tmp_path):
    """tests.helpers.write_sweep_config, which most tests use, writes the documented format."""
    from dataclasses import replace

    from tests.helpers import write_sweep_config

    (tmp_path / "hand.toml").write_text(GOOD)
    written = write_sweep_config(
        tmp_path / "written.toml", run={"seed": 3},
        datasets=[{"name": "zoo", "layout": "binary-folders", "root": "data", "families": {"progan": "gan"}}],
        detectors=[{"name": "spectrum", "checkpoint": "ckpt"}], grid=["none", "jpeg(quality=[95,75])"])
    assert replace(load_sweep(written), source="") == replace(load_sweep(tmp_path / "hand.toml"), source="")
