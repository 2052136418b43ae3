from __future__ import annotations

import pytest
import torch

from harness.api import CheckpointError
from harness.checkpoint import load_state_dict_strict, read_checkpoint, write_checkpoint


def test_checkpoint_round_trip_keeps_weights_and_manifest(tmp_path):
    w = {"a": torch.arange(3.0)}
    write_checkpoint(tmp_path / "c", "det", w, params={"p": 1}, data_sha256="abc")
    weights, manifest = read_checkpoint(tmp_path / "c", "det")
    assert torch.equal(weights["a"], w["a"])
    assert manifest["params"] == {"p": 1} and manifest["data_manifest_sha256"] == "abc"


def test_checkpoint_of_another_detector_is_refused(tmp_path):
    write_checkpoint(tmp_path / "c", "det", {"a": torch.zeros(1)})
    with pytest.raises(CheckpointError, match="'det', not of 'other'"):
        read_checkpoint(tmp_path / "c", "other")


def test_corrupted_weights_are_refused_by_their_sha256(tmp_path):
    write_checkpoint(tmp_path / "c", "det", {"a": torch.zeros(1)})
    (tmp_path / "c" / "weights.pt").write_bytes(b"garbage")
    with pytest.raises(CheckpointError, match="sha256"):
        read_checkpoint(tmp_path / "c", "det")


def test_strict_load_names_missing_unexpected_and_mismatched_keys():
    model = torch.nn.Linear(2, 3)
    bad = {"weight": torch.zeros(3, 4), "extra": torch.zeros(1)}
    with pytest.raises(CheckpointError) as err:
        load_state_dict_strict(model, bad, "x.pth")
    text = str(err.value)
    assert "missing keys ['bias']" in text and "unexpected keys ['extra']" in text and "weight" in text
