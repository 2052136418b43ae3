from __future__ import annotations

import pandas as pd
import pytest

from harness.cli import main
from tests.helpers import write_binary_folders, write_sweep_config, write_train_config


def test_list_shows_every_registry(capsys):
    for what in ("detectors", "perturbations", "layouts", "datasets", "trainers"):
        assert main(["list", what]) == 0
    out = capsys.readouterr().out
    assert "spectrum" in out and "jpeg" in out and "binary-folders" in out and "zoo" in out


@pytest.mark.ray
def test_train_then_sweep_from_the_command_line(tmp_path, capsys, ray_session):
    data = write_binary_folders(tmp_path / "data", generators=("g",), n=6)
    dataset = {"name": "t", "layout": "binary-folders", "root": data}
    write_train_config(tmp_path / "train.toml", datasets=[dataset], params={"n_bins": 64})
    assert main(["train", "spectrum", "--config", str(tmp_path / "train.toml"), "--out", str(tmp_path / "ck")]) == 0
    write_sweep_config(tmp_path / "sweep.toml", datasets=[dataset],
                       detectors=[{"name": "spectrum", "n_bins": 64, "checkpoint": "ck"}], grid=["none"])
    assert main(["sweep", str(tmp_path / "sweep.toml"), "--out", str(tmp_path / "run"), "--quiet"]) == 0
    assert len(pd.read_parquet(tmp_path / "run" / "scores.parquet")) == 12
    assert "leaderboard" in capsys.readouterr().out


def test_a_config_error_is_a_message_and_exit_code_2(tmp_path, capsys):
    (tmp_path / "bad.toml").write_text("[run]\n")
    assert main(["sweep", str(tmp_path / "bad.toml"), "--out", str(tmp_path / "o")]) == 2
    assert "exifbench: error:" in capsys.readouterr().err


def test_a_missing_checkpoint_stops_the_sweep_before_any_compute(tmp_path, capsys):
    data = write_binary_folders(tmp_path / "data", generators=("g",), n=1)
    write_sweep_config(tmp_path / "s.toml", datasets=[{"name": "t", "layout": "binary-folders", "root": data}],
                       detectors=[{"name": "spectrum", "checkpoint": "nowhere"}])
    assert main(["sweep", str(tmp_path / "s.toml"), "--out", str(tmp_path / "o")]) == 2
    assert "nowhere" in capsys.readouterr().err
