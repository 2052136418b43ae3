"""Archives as dataset roots and sample paths (``<archive>::<member>``, harness.data.sources)."""
from __future__ import annotations

import hashlib
import io
import multiprocessing
import shutil
import tarfile
import zipfile
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pandas as pd
import pytest

from harness.api import ConfigError, DecodeError
from harness.data import sources
from harness.data.decode import load_image, probe
from harness.data.exif import read_exif
from harness.data.layouts import read_binary_folders, read_genimage, read_manifest, read_real_only
from tests.helpers import exif_photo, noise_image, write_binary_folders

ARCHIVES = {"zip": "zip", "tar": "tar", "tar.gz": "gztar"}


def _archive(folder: Path, kind: str) -> Path:
    """``folder`` as an archive of ``kind`` beside it (shutil writes directory entries, and
    ``./`` before tar members' names: both must be read through)."""
    made = shutil.make_archive(str(folder.parent / f"{folder.name}-{kind.replace('.', '')}"), ARCHIVES[kind],
                               root_dir=folder)
    return Path(made)


def _key(s):
    return (s.sample_id, s.label, s.generator, s.subset, s.family, s.format, s.width, s.height, s.has_exif)


@pytest.mark.parametrize("kind", list(ARCHIVES))
def test_binary_folders_from_an_archive_match_the_folder_sample_for_sample(tmp_path, kind):
    root = write_binary_folders(tmp_path / "d", generators=("gana", "ganb"), n=4)
    archive = _archive(root, kind)
    from_folder = read_binary_folders(root, dataset="x")
    from_archive = read_binary_folders(archive, dataset="x")
    assert [_key(s) for s in from_archive] == [_key(s) for s in from_folder]
    assert [s.path.split("::")[1] for s in from_archive] == [str(Path(s.path).relative_to(root))
                                                             for s in from_folder]
    assert all(s.path.startswith(f"{archive}::") for s in from_archive)


def test_the_default_dataset_name_of_an_archive_drops_its_extension(tmp_path):
    archive = _archive(write_binary_folders(tmp_path / "zoo", generators=("g",), n=2), "tar.gz")
    assert {s.dataset for s in read_binary_folders(archive)} == {"zoo-targz"}


def test_real_only_and_genimage_read_archives(tmp_path):
    (tmp_path / "reals").mkdir()
    for i in range(3):
        noise_image(seed=i).save(tmp_path / "reals" / f"{i}.png")
        for cls in ("ai", "nature"):
            (tmp_path / "gi" / "sdv4" / "val" / cls).mkdir(parents=True, exist_ok=True)
            noise_image(seed=10 * i + len(cls)).save(tmp_path / "gi" / "sdv4" / "val" / cls / f"{i}.png")
    reals = _archive(tmp_path / "reals", "zip")
    assert [_key(s) for s in read_real_only(reals)] == [_key(s) for s in read_real_only(tmp_path / "reals")]
    gi = _archive(tmp_path / "gi", "tar")
    assert [_key(s) for s in read_genimage(gi)] == [_key(s) for s in read_genimage(tmp_path / "gi")]


def test_a_manifest_inside_an_archive_reads_its_relative_paths_from_the_archive(tmp_path):
    (tmp_path / "m" / "imgs").mkdir(parents=True)
    for i in range(2):
        noise_image(seed=i).save(tmp_path / "m" / "imgs" / f"{i}.png")
    pd.DataFrame({"path": ["imgs/0.png", "./imgs/1.png"], "label": [0, 1], "generator": ["real", "sdxl"]}).to_csv(
        tmp_path / "m" / "manifest.csv", index=False)
    archive = _archive(tmp_path / "m", "zip")
    samples = read_manifest(f"{archive}::manifest.csv")
    assert [s.path for s in samples] == [f"{archive}::imgs/0.png", f"{archive}::imgs/1.png"]
    assert [_key(s) for s in samples] == [_key(s) for s in read_manifest(tmp_path / "m" / "manifest.csv")]


def test_a_manifest_path_may_name_an_archive_member(tmp_path):
    root = write_binary_folders(tmp_path / "d", generators=("g",), n=2)
    archive = _archive(root, "zip")
    member = next(n for n in zipfile.ZipFile(archive).namelist() if n.endswith(".png"))
    pd.DataFrame({"path": [f"{archive.name}::{member}"], "label": [1], "generator": ["g"]}).to_csv(
        tmp_path / "manifest.csv", index=False)
    (s,) = read_manifest(tmp_path / "manifest.csv")
    assert s.sample_id == hashlib.sha256(zipfile.ZipFile(archive).read(member)).hexdigest()


def test_a_relative_path_that_leaves_the_archive_is_refused():
    with pytest.raises(ConfigError, match="leaves the archive"):
        sources.join("/a.zip::sub", "../../x.png")


@pytest.mark.parametrize("kind", list(ARCHIVES))
def test_readers_take_member_paths(tmp_path, kind):
    import numpy as np

    folder = tmp_path / "photos"
    folder.mkdir()
    exif_photo(folder / "cam.jpg", np.random.default_rng(0), "Canon", 2.8, 400)
    archive = _archive(folder, kind)
    member = f"{archive}::cam.jpg"
    assert sources.read_bytes(member) == (folder / "cam.jpg").read_bytes()
    assert load_image(member).tobytes() == load_image(folder / "cam.jpg").tobytes()
    assert read_exif(member) == read_exif(folder / "cam.jpg")
    assert probe(member) == probe(folder / "cam.jpg")


def test_a_missing_member_is_a_missing_file_and_a_decode_error(tmp_path):
    archive = _archive(write_binary_folders(tmp_path / "d", generators=("g",), n=1), "tar.gz")
    with pytest.raises(FileNotFoundError, match="no member"):
        sources.read_bytes(f"{archive}::nope.png")
    with pytest.raises(DecodeError, match="unreadable file"):
        load_image(f"{archive}::nope.png")


def test_a_damaged_zip_member_is_a_read_error_not_a_crash(tmp_path):
    data = io.BytesIO()
    payload = noise_image().tobytes()
    with zipfile.ZipFile(data, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("a.png", payload)
    raw = bytearray(data.getvalue())
    start = raw.index(b"a.png") + len("a.png") + 40  # inside the compressed data of the member
    raw[start:start + 16] = bytes(16)
    (tmp_path / "bad.zip").write_bytes(bytes(raw))
    with pytest.raises(OSError, match="damaged member"):
        sources.read_bytes(f"{tmp_path / 'bad.zip'}::a.png")


def test_a_file_that_is_not_an_archive_is_a_config_error_as_a_root(tmp_path):
    (tmp_path / "fake.zip").write_text("not a zip")
    with pytest.raises(ConfigError, match="not a readable zip archive"):
        read_binary_folders(tmp_path / "fake.zip")
    with pytest.raises(ConfigError, match="not a folder or an archive"):
        read_binary_folders(tmp_path / "missing.zip")


def test_a_tar_is_indexed_once_and_later_processes_reuse_the_index(tmp_path, monkeypatch):
    archive = _archive(write_binary_folders(tmp_path / "d", generators=("g",), n=2), "tar.gz")
    first = sources.list_members(archive)
    assert list((sources._index_file(archive).parent).glob("*.gzidx"))
    sources._OPEN.clear()  # as a fresh worker process starts

    def no_scan(self):
        raise AssertionError("the tar was scanned again")

    monkeypatch.setattr(sources.TarContainer, "_scan", no_scan)
    assert sources.list_members(archive) == first
    assert sources.read_bytes(first[-1]) == (tmp_path / "d" / first[-1].split("::")[1]).read_bytes()


def test_a_rewritten_archive_is_opened_again(tmp_path):
    folder = tmp_path / "d"
    folder.mkdir()
    noise_image(seed=1).save(folder / "a.png")
    with zipfile.ZipFile(tmp_path / "x.zip", "w") as z:
        z.write(folder / "a.png", "a.png")
    assert sources.list_members(tmp_path / "x.zip") == [f"{tmp_path / 'x.zip'}::a.png"]
    with zipfile.ZipFile(tmp_path / "x.zip", "w") as z:
        z.write(folder / "a.png", "b.png")
        z.write(folder / "a.png", "c.png")
    assert len(sources.list_members(tmp_path / "x.zip")) == 2


def _read_all(paths: list[str]) -> list[str]:
    return [hashlib.sha256(sources.read_bytes(p)).hexdigest() for p in paths]


def test_forked_workers_read_members_with_their_own_handles(tmp_path):
    archive = _archive(write_binary_folders(tmp_path / "d", generators=("g",), n=6), "tar.gz")
    paths = sources.list_members(archive)  # the parent holds an open handle before the fork
    expected = _read_all(paths)
    with ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("fork")) as pool:
        got = list(pool.map(_read_all, [paths[::2], paths[1::2], list(reversed(paths))]))
    assert got == [expected[::2], expected[1::2], list(reversed(expected))]


def test_a_later_copy_of_a_tar_member_replaces_the_earlier(tmp_path):
    path = tmp_path / "twice.tar"
    with tarfile.open(path, "w") as tar:
        for content in (b"old", b"new"):
            info = tarfile.TarInfo("a.png")
            info.size = len(content)
            tar.addfile(info, io.BytesIO(content))
    assert sources.list_members(path) == [f"{path}::a.png"]
    assert sources.read_bytes(f"{path}::a.png") == b"new"


def test_archive_members_are_listed_in_folder_walk_order(tmp_path):
    path = tmp_path / "o.zip"
    with zipfile.ZipFile(path, "w") as z:
        for name in ("b/z.png", "a.png", "b/a/x.png", "b/y.png", "./c.png"):
            z.writestr(name, b"x")
    assert [p.split("::")[1] for p in sources.list_members(path)] == ["a.png", "c.png", "b/y.png", "b/z.png",
                                                                       "b/a/x.png"]
