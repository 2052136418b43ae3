"""Hostile files: a checkpoint that is a pickle carrying code is refused without running it.

The planted file, when unpickled, writes a marker file (``test_the_planted_pickle_runs_code_
when_unpickled`` proves it does). Every registered detector is loaded with it in every path
parameter it declares (``DetectorSpec.path_params``: ``checkpoint``, ``init``, ``backbone``,
``clip_weights``, ...), both as a bare weights file (the authors' ``.pth`` form) and inside
an exifbench checkpoint folder whose manifest names the detector and the planted file's
sha256; the training paths that read files (a trainer's ``init``, the pretext job's resume
``state.pt``) get it too. Each must fail with an exifbench error and leave no marker.
"""
from __future__ import annotations

import json
import pickle
from pathlib import Path

import pytest
import torch

from harness.api import ExifbenchError
from harness.checkpoint import FORMAT, MANIFEST, WEIGHTS, file_sha256, read_checkpoint
from harness.plugins import detectors


class _Payload:
    """Unpickling this runs ``exec``: it writes ``marker``."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (exec, (f"open({str(self.marker)!r}, 'w').write('pwned')",))


def plant(path: Path, marker: Path) -> Path:
    """A torch-format file (``torch.save``) whose pickle runs code when loaded."""
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"state_net": {"w": torch.zeros(1)}, "x": _Payload(marker)}, path)
    return path


def plant_folder(folder: Path, detector: str, marker: Path) -> Path:
    """A checkpoint folder whose manifest is right and whose weights carry code."""
    plant(folder / WEIGHTS, marker)
    manifest = {"format": FORMAT, "detector": detector, "params": {}, "config": {}, "data_manifest_sha256": "",
                "code_version": "0", "weights_sha256": file_sha256(folder / WEIGHTS), "created": "", "extra": {}}
    (folder / MANIFEST).write_text(json.dumps(manifest))
    return folder


def test_the_planted_pickle_runs_code_when_unpickled(tmp_path):
    marker = tmp_path / "ran"
    torch.load(plant(tmp_path / "evil.pt", marker), weights_only=False)
    assert marker.read_text() == "pwned"
    marker.unlink()
    pickle.loads(pickle.dumps(_Payload(marker)))
    assert marker.exists()


def _paths() -> list[tuple[str, str]]:
    return [(name, param) for name, spec in sorted(detectors().items()) for param in sorted(spec.path_params)]


@pytest.mark.parametrize("name,param", _paths())
@pytest.mark.parametrize("form", ["file", "folder"])
def test_a_detector_refuses_a_pickle_carrying_code(tmp_path, name, param, form):
    spec = detectors()[name]
    if form == "folder" and not str(spec.factory).startswith("detectors."):
        pytest.skip(f"{name} is an outside plugin that reads no checkpoint folders")
    marker = tmp_path / "ran"
    target = plant(tmp_path / "evil.pth", marker) if form == "file" else plant_folder(tmp_path / "ckpt", name, marker)
    with pytest.raises(ExifbenchError):
        detector = spec.create(**{param: str(target)})
        detector.load("cpu")
        if param != "checkpoint":  # init/backbone weights are read when training starts
            raise ExifbenchError(f"{name}: {param} was not read by load()")  # pragma: no cover
    assert not marker.exists(), f"{name} ({param}={form}) ran the code in the pickle"


@pytest.mark.parametrize("name", sorted(n for n, s in detectors().items() if "init" in s.path_params))
def test_a_trainer_refuses_a_pickle_as_its_init_weights(tmp_path, name):
    from harness.recipes.cnndetection.weights import load_weights

    marker = tmp_path / "ran"
    detector = detectors()[name].create(init=str(plant(tmp_path / "evil.pth", marker)))
    with pytest.raises(ExifbenchError):
        load_weights(detector._build() if hasattr(detector, "_build") else torch.nn.Linear(1, 1),
                     detector.init, name, getattr(detector, "remap_upstream", None))
    assert not marker.exists()


def test_the_pretext_job_refuses_a_pickle_as_its_resume_state(tmp_path):
    from detectors.exif.pretext import ExifBackboneTrainer

    marker = tmp_path / "ran"
    plant(tmp_path / "out" / "state.pt", marker)
    with pytest.raises(ExifbenchError):
        ExifBackboneTrainer()._resume(tmp_path / "out", None, None, None, None)
    assert not marker.exists()


def test_a_checkpoint_in_safetensors_reads_back_the_same(tmp_path):
    from harness.checkpoint import write_checkpoint

    weights = {"a": torch.randn(3, 4), "b.c": torch.arange(5, dtype=torch.int64)}
    folder = write_checkpoint(tmp_path / "c", "spectrum", weights, params={"C": 1.0}, weights_format="safetensors")
    back, manifest = read_checkpoint(folder, "spectrum")
    assert manifest["weights_file"] == "weights.safetensors" and not (folder / WEIGHTS).exists()
    assert back.keys() == weights.keys() and all(torch.equal(back[k], weights[k]) for k in weights)


@pytest.mark.parametrize("name", ["../../etc/passwd", "/etc/passwd", "sub/weights.pt"])
def test_a_manifest_cannot_name_weights_outside_its_folder(tmp_path, name):
    from harness.api import CheckpointError
    from harness.checkpoint import write_checkpoint

    folder = write_checkpoint(tmp_path / "c", "spectrum", {"a": torch.zeros(1)})
    manifest = json.loads((folder / MANIFEST).read_text())
    (folder / MANIFEST).write_text(json.dumps({**manifest, "weights_file": name}))
    with pytest.raises(CheckpointError, match="inside its folder"):
        read_checkpoint(folder, "spectrum")


def test_a_weights_file_linked_out_of_its_folder_is_refused_and_a_linked_folder_is_not(tmp_path):
    from harness.api import CheckpointError
    from harness.checkpoint import write_checkpoint

    folder = write_checkpoint(tmp_path / "c", "spectrum", {"a": torch.ones(2)})
    other = write_checkpoint(tmp_path / "elsewhere", "spectrum", {"a": torch.ones(2)})
    (folder / WEIGHTS).unlink()
    (folder / WEIGHTS).symlink_to(other / WEIGHTS)  # same bytes, same sha256: only the link is wrong
    with pytest.raises(CheckpointError, match="leads out of its checkpoint folder"):
        read_checkpoint(folder, "spectrum")
    (tmp_path / "linked").symlink_to(other, target_is_directory=True)
    back, _ = read_checkpoint(tmp_path / "linked", "spectrum")
    assert torch.equal(back["a"], torch.ones(2))


@pytest.mark.parametrize("text", ["{not json", "[1, 2]", "\udcff"])
def test_a_broken_manifest_is_a_checkpoint_error(tmp_path, text):
    from harness.api import CheckpointError
    from harness.checkpoint import write_checkpoint

    folder = write_checkpoint(tmp_path / "c", "spectrum", {"a": torch.zeros(1)})
    (folder / MANIFEST).write_bytes(text.encode("utf-8", "surrogateescape"))
    with pytest.raises(CheckpointError, match="manifest|format"):
        read_checkpoint(folder, "spectrum")


@pytest.mark.parametrize("row", ["../outside.png", "sub/../../outside.png", "..\\outside.png",
                                 "../images.zip::a.png"])
def test_a_data_manifest_cannot_lead_out_of_its_folder_by_a_relative_path(tmp_path, row):
    from harness.api import ConfigError
    from harness.data.layouts import read_manifest
    from tests.helpers import noise_image

    (tmp_path / "data").mkdir()
    noise_image().save(tmp_path / "outside.png")
    noise_image().save(tmp_path / "data" / "in.png")
    manifest = tmp_path / "data" / "manifest.csv"
    manifest.write_text(f"path,label,generator\nin.png,0,real\n{row},1,g\n")
    with pytest.raises(ConfigError, match="leaves the manifest's folder"):
        read_manifest(manifest)
    # inside, or named by an absolute path: read
    manifest.write_text(f"path,label,generator\nsub/../in.png,0,real\n{tmp_path / 'outside.png'},1,g\n")
    assert [s.label for s in read_manifest(manifest)] == [0, 1]


def test_read_checkpoint_refuses_a_pickle_carrying_code(tmp_path):
    marker = tmp_path / "ran"
    with pytest.raises(ExifbenchError):
        read_checkpoint(plant_folder(tmp_path / "c", "spectrum", marker), "spectrum")
    assert not marker.exists()
