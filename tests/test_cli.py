from __future__ import annotations

import pandas as pd

from harness.cli import main
from tests.conftest import write_binary_folders


def test_list_shows_every_registry(capsys):
    for what in ("detectors", "perturbations", "layouts", "datasets", "trainers"):
        assert main(["list", what]) == 0
    out = capsys.readouterr().out
    assert "spectrum" in out and "jpeg" in out and "binary-folders" in out and "zoo" in out


def test_train_then_sweep_from_the_command_line(tmp_path, capsys, ray_session):
    data = write_binary_folders(tmp_path / "data", generators=("g",), n=6)
    (tmp_path / "train.toml").write_text(
        f'[[datasets]]\nname="t"\nlayout="binary-folders"\nroot="{data}"\n[params]\nn_bins=64\n')
    assert main(["train", "spectrum", "--config", str(tmp_path / "train.toml"), "--out", str(tmp_path / "ck")]) == 0
    (tmp_path / "sweep.toml").write_text(
        f'[[datasets]]\nname="t"\nlayout="binary-folders"\nroot="{data}"\n'
        f'[[detectors]]\nname="spectrum"\nn_bins=64\ncheckpoint="ck"\n[perturbations]\ngrid=["none"]\n')
    assert main(["sweep", str(tmp_path / "sweep.toml"), "--out", str(tmp_path / "run"), "--quiet"]) == 0
    assert len(pd.read_parquet(tmp_path / "run" / "scores.parquet")) == 12
    assert "leaderboard" in capsys.readouterr().out


def test_a_config_error_is_a_message_and_exit_code_2(tmp_path, capsys):
    (tmp_path / "bad.toml").write_text("[run]\n")
    assert main(["sweep", str(tmp_path / "bad.toml"), "--out", str(tmp_path / "o")]) == 2
    assert "exifbench: error:" in capsys.readouterr().err


def test_a_missing_checkpoint_stops_the_sweep_before_any_compute(tmp_path, capsys):
    data = write_binary_folders(tmp_path / "data", generators=("g",), n=1)
    (tmp_path / "s.toml").write_text(f'[[datasets]]\nname="t"\nlayout="binary-folders"\nroot="{data}"\n'
                                     f'[[detectors]]\nname="spectrum"\ncheckpoint="nowhere"\n')
    assert main(["sweep", str(tmp_path / "s.toml"), "--out", str(tmp_path / "o")]) == 2
    assert "nowhere" in capsys.readouterr().err
