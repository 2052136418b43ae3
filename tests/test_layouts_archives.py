"""The ``webdataset`` and ``huggingface`` layouts: one dataset, four ways of keeping it, one
set of samples (and, through a sweep, one set of scores)."""
from __future__ import annotations

import io
import json
import os
import tarfile
import zipfile
from pathlib import Path

import pandas as pd
import pytest

from harness.api import ConfigError
from harness.config import load_sweep
from harness.data import sources
from harness.data.hf import read_huggingface
from harness.data.layouts import read_binary_folders
from harness.data.webdataset import read_webdataset, shard_paths
from harness.engine.score_cache import ScoreCache
from harness.engine.sweep import run_sweep
from tests.helpers import spectrum_checkpoint, write_binary_folders, write_sweep_config

GENERATORS = ("gana", "ganb")


def _folder_rows(root: Path) -> list[tuple[str, Path, int]]:
    """(generator folder, file, label) of each image of a binary-folders tree."""
    return [(p.relative_to(root).parts[0], p, int(p.parent.name == "1_fake"))
            for p in sorted(root.rglob("*.png"))]


def _write_zip(root: Path, out: Path) -> Path:
    with zipfile.ZipFile(out, "w") as z:
        for _, p, _ in _folder_rows(root):
            z.write(p, p.relative_to(root).as_posix())
    return out


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


def _write_shards(root: Path, out: Path, n_shards: int = 2, label_in: str = "json") -> Path:
    """``out/shard-00000{0,1}.tar``: per image, ``<key>.png`` and ``<key>.json`` (label and
    generator) or ``<key>.cls`` (label) with the generator in ``<key>.json``."""
    out.mkdir(parents=True, exist_ok=True)
    rows = _folder_rows(root)
    for s in range(n_shards):
        with tarfile.open(out / f"shard-{s:06d}.tar", "w") as tar:
            for i, (gen, p, label) in enumerate(rows[s::n_shards]):
                key = f"{gen}/{label}_{p.stem}"
                _add(tar, f"{key}.png", p.read_bytes())
                meta = {"generator": gen} if label_in == "cls" else {"label": label, "generator": gen}
                _add(tar, f"{key}.json", json.dumps(meta).encode())
                if label_in == "cls":
                    _add(tar, f"{key}.cls", str(label).encode())
    return out


def _hf_dataset(root: Path, labels: str = "classlabel"):
    import datasets

    rows = _folder_rows(root)
    label_feature = (datasets.ClassLabel(names=["real", "fake"]) if labels == "classlabel"
                     else datasets.Value("string"))
    features = datasets.Features({"image": datasets.Image(), "label": label_feature,
                                  "generator": datasets.Value("string")})
    label_values = [lab for _, _, lab in rows] if labels == "classlabel" else [
        ("midjourney-ish" if lab else "camera") for _, _, lab in rows]
    return datasets.Dataset.from_dict(
        {"image": [{"bytes": p.read_bytes(), "path": None} for _, p, _ in rows], "label": label_values,
         "generator": [g for g, _, _ in rows]}, features=features)


def _key(samples) -> list[tuple]:
    return sorted((s.sample_id, s.label, s.generator, s.subset, s.family, s.format, s.width, s.height)
                  for s in samples)


@pytest.fixture(scope="module")
def folders(tmp_path_factory) -> Path:
    return write_binary_folders(tmp_path_factory.mktemp("forms") / "folders", generators=GENERATORS, n=4)


# --- webdataset ---------------------------------------------------------------------------

def test_webdataset_shards_give_the_samples_of_the_folders_they_were_made_from(folders, tmp_path):
    shards = _write_shards(folders, tmp_path / "wds")
    samples = read_webdataset(str(shards / "shard-{000000..000001}.tar"), dataset="d")
    assert _key(samples) == _key(read_binary_folders(folders, dataset="d"))
    assert all(sources.split(s.path)[1].endswith(".png") for s in samples)
    assert all(sources.sha256_of(s.path) == s.sample_id for s in samples)


def test_webdataset_reads_the_label_from_cls_and_a_list_of_shards_as_the_pattern(folders, tmp_path):
    shards = _write_shards(folders, tmp_path / "wds", label_in="cls")
    listed = read_webdataset(shards, shards=["shard-000000.tar", "shard-000001.tar"], dataset="d")
    assert _key(listed) == _key(read_webdataset(str(shards / "shard-{000000..000001}.tar"), dataset="d"))
    assert _key(listed) == _key(read_binary_folders(folders, dataset="d"))


def test_webdataset_sample_without_a_label_is_refused_naming_its_key(tmp_path):
    with tarfile.open(tmp_path / "s.tar", "w") as tar:
        _add(tar, "x/0001.png", b"\x89PNG")
        _add(tar, "x/0001.json", b'{"generator": "g"}')
    with pytest.raises(ConfigError, match=r"x/0001 has no label"):
        read_webdataset(tmp_path / "s.tar")


def test_webdataset_unknown_label_name_needs_a_label_map(folders, tmp_path):
    with tarfile.open(tmp_path / "s.tar", "w") as tar:
        _add(tar, "a.png", next(folders.rglob("*.png")).read_bytes())
        _add(tar, "a.json", b'{"label": "dalle"}')
    with pytest.raises(ConfigError, match="label_map"):
        read_webdataset(tmp_path / "s.tar")
    (sample,) = read_webdataset(tmp_path / "s.tar", label_map={"dalle": 1}, generator="dalle")
    assert (sample.label, sample.generator) == (1, "dalle")


def test_webdataset_missing_shard_of_a_pattern_is_an_error(folders, tmp_path):
    shards = _write_shards(folders, tmp_path / "wds")
    with pytest.raises(ConfigError, match="1 of 3 shards are missing"):
        shard_paths(str(shards / "shard-{000000..000002}.tar"))


# --- huggingface --------------------------------------------------------------------------

def test_saved_dataset_gives_the_samples_of_the_folders_and_rows_read_back(folders, tmp_path):
    _hf_dataset(folders).save_to_disk(str(tmp_path / "saved"))
    samples = read_huggingface(tmp_path / "saved", dataset="d", generator_column="generator")
    assert _key(samples) == _key(read_binary_folders(folders, dataset="d"))
    assert samples[0].path == f"{tmp_path / 'saved'}::image/0"
    assert all(sources.sha256_of(s.path) == s.sample_id for s in samples)


def test_parquet_shards_give_the_samples_of_the_saved_dataset(folders, tmp_path):
    ds = _hf_dataset(folders)
    (tmp_path / "pq").mkdir()
    half = len(ds) // 2
    ds.select(range(half)).to_parquet(str(tmp_path / "pq" / "test-00000-of-00002.parquet"))
    ds.select(range(half, len(ds))).to_parquet(str(tmp_path / "pq" / "test-00001-of-00002.parquet"))
    samples = read_huggingface(tmp_path / "pq", dataset="d", generator_column="generator")
    assert _key(samples) == _key(read_binary_folders(folders, dataset="d"))
    assert {s.split for s in samples} == {"test"}
    assert all(sources.read_bytes(s.path) for s in samples)


def test_string_labels_need_a_label_map_and_are_mapped_by_it(folders, tmp_path):
    _hf_dataset(folders, labels="string").save_to_disk(str(tmp_path / "saved"))
    with pytest.raises(ConfigError, match="label 'camera' is neither 0/1 nor a known name"):
        read_huggingface(tmp_path / "saved")
    samples = read_huggingface(tmp_path / "saved", dataset="d", generator_column="generator",
                               label_map={"camera": 0, "midjourney-ish": 1})
    assert _key(samples) == _key(read_binary_folders(folders, dataset="d"))


def test_unknown_column_is_an_error_listing_the_columns(folders, tmp_path):
    _hf_dataset(folders).save_to_disk(str(tmp_path / "saved"))
    with pytest.raises(ConfigError, match=r"no column 'img' \(image_column\).*'generator', 'image', 'label'"):
        read_huggingface(tmp_path / "saved", image_column="img")


def _write_hub_cache(folders: Path, hub: Path, repo: str = "someone/fakes") -> None:
    """The hub cache layout ``huggingface_hub`` writes: blobs, a snapshot of links, a ref."""
    commit = "0123456789abcdef0123456789abcdef01234567"
    repo_dir = hub / f"datasets--{repo.replace('/', '--')}"
    snapshot = repo_dir / "snapshots" / commit / "data"
    snapshot.mkdir(parents=True)
    (repo_dir / "blobs").mkdir()
    blob = repo_dir / "blobs" / "aaaa"
    _hf_dataset(folders).to_parquet(str(blob))
    (snapshot / "test-00000-of-00001.parquet").symlink_to(os.path.relpath(blob, snapshot))
    (repo_dir / "refs").mkdir()
    (repo_dir / "refs" / "main").write_text(commit)


def test_hub_id_is_read_from_the_local_hub_cache(folders, tmp_path, monkeypatch):
    from huggingface_hub import constants

    hub = tmp_path / "hf_home" / "hub"
    _write_hub_cache(folders, hub)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(hub))  # what HF_HOME=<tmp>/hf_home sets at import
    samples = read_huggingface("someone/fakes", dataset="d", generator_column="generator")
    assert _key(samples) == _key(read_binary_folders(folders, dataset="d"))
    assert all(s.split == "test" for s in samples)
    assert samples == read_huggingface("hf://datasets/someone/fakes", dataset="d", generator_column="generator",
                                       cache_dir=str(hub), split="test")
    # a sweep config resolves roots against its folder: the hub URL survives that
    config = write_sweep_config(tmp_path / "sweep.toml", datasets=[{"name": "d", "layout": "huggingface",
                                                                    "root": "hf://datasets/someone/fakes",
                                                                    "generator_column": "generator"}],
                                detectors=[{"name": "spectrum"}])
    ds = load_sweep(config).datasets[0]
    assert read_huggingface(ds.root, dataset="d", **ds.option_dict) == samples


def test_hub_id_not_in_the_cache_is_an_error_that_says_how_to_get_it(tmp_path):
    with pytest.raises(ConfigError, match="not-here/at-all.*local hub cache"):
        read_huggingface("not-here/at-all", cache_dir=str(tmp_path))


# --- one dataset, four forms, one set of scores --------------------------------------------

def _forms(folders: Path, tmp_path: Path) -> dict[str, dict]:
    """The dataset tables of one dataset kept four ways: folders, a zip, shards, a saved 🤗 dataset."""
    _hf_dataset(folders).save_to_disk(str(tmp_path / "saved"))
    shards = _write_shards(folders, tmp_path / "wds")
    return {
        "folders": {"layout": "binary-folders", "root": folders},
        "zip": {"layout": "binary-folders", "root": _write_zip(folders, tmp_path / "folders.zip")},
        "shards": {"layout": "webdataset", "root": str(shards / "shard-{000000..000001}.tar")},
        "saved": {"layout": "huggingface", "root": tmp_path / "saved", "generator_column": "generator"},
    }


def test_the_four_forms_give_the_same_samples_and_the_same_pixels(folders, tmp_path):
    from harness.data.decode import load_image
    from harness.plugins import layouts

    samples = {form: sorted(layouts()[t["layout"]].read(str(t["root"]), dataset="same",
                                                         **{k: v for k, v in t.items() if k not in ("layout", "root")}),
                            key=lambda s: s.sample_id)
               for form, t in _forms(folders, tmp_path).items()}
    for form in ("zip", "shards", "saved"):
        assert _key(samples[form]) == _key(samples["folders"]), form
        for a, b in zip(samples["folders"], samples[form]):
            assert load_image(a.path).tobytes() == load_image(b.path).tobytes(), (form, b.path)


# a sweep per form (four Ray runs): several minutes on a loaded 2-core machine
@pytest.mark.slow
@pytest.mark.ray
def test_folders_zip_shards_and_saved_dataset_give_identical_scores(folders, tmp_path, ray_session):
    forms = _forms(folders, tmp_path)
    ckpt = spectrum_checkpoint(tmp_path / "ckpt", n_bins=32, n=8)
    scores = {}
    for form, table in forms.items():
        config = write_sweep_config(tmp_path / f"{form}.toml", run={"seed": 0},
                                    datasets=[{"name": "same", **table}],
                                    detectors=[{"name": "spectrum", "checkpoint": ckpt, "n_bins": 32}],
                                    grid=["none", "jpeg(quality=80)"])
        config.write_text(config.read_text() + "\n[metrics]\nbootstrap = 0\n")  # scores are compared, not metrics
        result = run_sweep(load_sweep(config), tmp_path / f"run-{form}", quiet=True, leaderboard=False,
                           cache=ScoreCache(tmp_path / f"cache-{form}.sqlite"))
        assert result.computed == result.total == 2 * 16, form
        table = pd.read_parquet(tmp_path / f"run-{form}" / "scores.parquet")
        scores[form] = table.drop(columns=["run_id", "path"]).sort_values(["sample_id", "perturbation"],
                                                                           ignore_index=True)
    assert scores["folders"]["error"].isna().all() and len(scores["folders"]) == 32
    for form in ("zip", "shards", "saved"):
        pd.testing.assert_frame_equal(scores["folders"], scores[form], obj=form)


def test_a_saved_dataset_dict_needs_split_when_it_has_several(folders, tmp_path):
    import datasets

    ds = _hf_dataset(folders)
    datasets.DatasetDict({"train": ds.select(range(4)), "test": ds}).save_to_disk(str(tmp_path / "dd"))
    with pytest.raises(ConfigError, match=r"splits \['test', 'train'\]; set split"):
        read_huggingface(tmp_path / "dd")
    samples = read_huggingface(tmp_path / "dd", split="train", dataset="d", generator_column="generator")
    assert len(samples) == 4 and {s.split for s in samples} == {"train"}
    assert samples[0].path == f"{tmp_path / 'dd' / 'train'}::image/0"
