from __future__ import annotations

import hashlib

import pandas as pd
import pytest

from harness.api import ConfigError
from harness.data.layouts import read_binary_folders, read_manifest, read_real_only
from tests.helpers import noise_image, write_binary_folders


def test_binary_folders_label_comes_from_the_class_folder_and_generator_from_the_first_folder(tmp_path):
    root = write_binary_folders(tmp_path / "d", generators=("progan",), n=2)
    samples = read_binary_folders(root, dataset="cnn")
    assert {(s.label, s.generator, s.subset) for s in samples} == {(0, "real", "progan"), (1, "progan", "progan")}
    assert all(s.dataset == "cnn" for s in samples)


def test_binary_folders_finds_class_folders_at_any_depth(tmp_path):
    for cls in ("0_real", "1_fake"):
        (tmp_path / "progan" / "airplane" / cls).mkdir(parents=True)
        noise_image().save(tmp_path / "progan" / "airplane" / cls / "a.png")
    samples = read_binary_folders(tmp_path, families={"progan": "gan"})
    assert sorted((s.label, s.generator, s.family) for s in samples) == [(0, "real", "camera"), (1, "progan", "gan")]


def test_sample_id_is_the_sha256_of_the_file_bytes(tmp_path):
    root = write_binary_folders(tmp_path / "d", generators=("g",), n=1)
    s = read_binary_folders(root)[0]
    assert s.sample_id == hashlib.sha256(open(s.path, "rb").read()).hexdigest()
    assert (s.format, s.width, s.height) == ("png", 64, 64)


def test_binary_folders_without_class_folders_is_an_error(tmp_path):
    noise_image().save(tmp_path / "x.png")
    with pytest.raises(ConfigError, match="0_real"):
        read_binary_folders(tmp_path)


def test_manifest_reads_csv_with_relative_paths_and_filters_split_and_generators(tmp_path):
    for name in ("a", "b", "c"):
        noise_image().save(tmp_path / f"{name}.png")
    pd.DataFrame({"path": ["a.png", "b.png", "c.png"], "label": [0, 1, 1], "generator": ["real", "sdxl", "dcgan"],
                  "split": ["test", "test", "test"]}).to_csv(tmp_path / "m.csv", index=False)
    samples = read_manifest(tmp_path / "m.csv", split="test", generators=["dcgan"])
    assert [(s.label, s.generator) for s in samples] == [(0, "real"), (1, "dcgan")]


def test_manifest_reads_parquet(tmp_path):
    noise_image().save(tmp_path / "a.png")
    pd.DataFrame({"path": ["a.png"], "label": [1], "generator": ["g"]}).to_parquet(tmp_path / "m.parquet")
    assert read_manifest(tmp_path / "m.parquet")[0].generator == "g"


def test_manifest_missing_columns_is_an_error(tmp_path):
    pd.DataFrame({"path": ["a.png"]}).to_csv(tmp_path / "m.csv", index=False)
    with pytest.raises(ConfigError, match="label"):
        read_manifest(tmp_path / "m.csv")


def test_real_only_labels_every_image_real(tmp_path):
    noise_image().save(tmp_path / "a.jpg")
    assert [(s.label, s.generator) for s in read_real_only(tmp_path)] == [(0, "real")]
