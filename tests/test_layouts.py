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


def test_a_second_read_hashes_no_unchanged_file_and_a_changed_one_again(tmp_path, monkeypatch):
    """harness.data.identities: the identity of a file is remembered by its stat; a file
    rewritten with its old size and modification time is read again (its status-change
    time moved)."""
    import os

    from harness.data import identities, sources
    from harness.data.layouts import read_binary_folders
    from tests.helpers import noise_image

    monkeypatch.setenv("EXIFBENCH_CACHE", str(tmp_path / "cache"))
    root = tmp_path / "d"
    for i, label in enumerate(("0_real", "1_fake", "1_fake")):
        (root / "g" / label).mkdir(parents=True, exist_ok=True)
        noise_image((40, 30), seed=i).save(root / "g" / label / f"{i}.png")
    first = read_binary_folders(root)
    identities.flush()
    reads = []
    real_read = sources.read_bytes
    monkeypatch.setattr(sources, "read_bytes", lambda p: reads.append(p) or real_read(p))
    assert read_binary_folders(root) == first and reads == []
    target = root / "g" / "1_fake" / "1.png"
    st = target.stat()
    other = tmp_path / "other.png"
    noise_image((40, 30), seed=9).save(other)
    data = other.read_bytes()
    target.write_bytes(data[:st.st_size].ljust(st.st_size, b"\0"))  # same size, other bytes
    os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns))          # and the old modification time
    again = {s.path: s for s in read_binary_folders(root)}
    assert reads == [str(target)]
    assert again[str(target)].sample_id != {s.path: s for s in first}[str(target)].sample_id


def test_an_unusable_identity_table_only_costs_the_reads(tmp_path, monkeypatch, caplog):
    from harness.data import identities
    from harness.data.layouts import read_binary_folders
    from tests.helpers import noise_image

    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / "identities.sqlite").write_bytes(b"not a database" * 100)
    monkeypatch.setenv("EXIFBENCH_CACHE", str(cache))
    (tmp_path / "d" / "g" / "0_real").mkdir(parents=True)
    noise_image().save(tmp_path / "d" / "g" / "0_real" / "a.png")
    samples = read_binary_folders(tmp_path / "d")
    identities.flush()
    assert len(samples) == 1 and len(samples[0].sample_id) == 64
    assert "cannot be used" in caplog.text
