"""`exifbench data check` beyond a catalogue entry: any folder by its layout, the files a
layout skips, and checksum files (sha256sum lines, GenImage's checksums.csv)."""
from __future__ import annotations

import hashlib
import io
import json
import tarfile
import zipfile
from pathlib import Path

import pytest

from harness.cli import main
from harness.data.catalogue import adhoc_entry
from harness.data.check import check_dataset, parse_options
from harness.data.checksums import read_checksums, verify_checksums
from tests.helpers import write_binary_folders


@pytest.fixture
def folder(tmp_path) -> Path:
    return write_binary_folders(tmp_path / "mine", generators=("gana", "ganb"), n=4)


def _sha256sum(root: Path, out: Path) -> Path:
    lines = [f"{hashlib.sha256(p.read_bytes()).hexdigest()}  {p.relative_to(out.parent).as_posix()}"
             for p in sorted(root.rglob("*.png"))]
    out.write_text("\n".join(lines) + "\n")
    return out


def test_a_folder_without_catalogue_entry_is_checked_by_its_layout_alone(folder, capsys):
    code = main(["data", "check", "--layout", "binary-folders", "--root", str(folder)])
    text = capsys.readouterr().out
    assert code == 0, text
    assert "missing" not in text and "0 errors" in text
    assert "gana" in text and "ganb" in text


def test_an_adhoc_check_still_finds_what_is_wrong_with_the_folder(folder):
    (folder / "ganb" / "1_fake").rename(folder / "ganb" / "fakes")
    (folder / "gana" / "1_fake" / "000.png").write_bytes(b"")
    report = check_dataset(adhoc_entry("binary-folders", "mine"), folder)
    assert {"outside-class-folder", "one-class-only", "unreadable"} <= report.codes()
    assert not {"missing-generator", "unexpected-generator"} & report.codes()


def test_check_takes_a_name_or_a_layout(folder, capsys):
    assert main(["data", "check", "--root", str(folder)]) == 2
    assert "one of the two" in capsys.readouterr().err


def test_layout_options_are_read_as_toml_values_or_text():
    assert parse_options(["split=train", "label_map={real = 0, ai = 1}", "shards=['a.tar', 'b.tar']", "n=3"]) == {
        "split": "train", "label_map": {"real": 0, "ai": 1}, "shards": ["a.tar", "b.tar"], "n": 3}


def test_ignored_files_are_counted_and_images_without_extension_warned(folder):
    (folder / ".DS_Store").write_bytes(b"\0\0")
    (folder / "gana" / "README.txt").write_text("about")
    (folder / "gana" / "labels.csv").write_text("a,b")
    png = next((folder / "gana" / "1_fake").glob("*.png"))
    (png.parent / "copy_of_image").write_bytes(png.read_bytes())
    report = check_dataset(adhoc_entry("binary-folders", "mine"), folder)
    notes = {f.code: f for f in report.findings}
    assert notes["ignored-files"].level == "info"
    assert "3 files are not read: 1 hidden (e.g. .DS_Store), 2 without an image extension" in \
        notes["ignored-files"].message
    assert notes["images-without-extension"].level == "warning"
    assert "1 files are images" in notes["images-without-extension"].message
    assert "copy_of_image" in notes["images-without-extension"].message
    assert report.exit_code() == 0 and report.exit_code(strict=True) == 1


def test_ignored_members_of_an_archive_root_are_counted(folder, tmp_path):
    archive = tmp_path / "mine.zip"
    with zipfile.ZipFile(archive, "w") as z:
        for p in sorted(folder.rglob("*.png")):
            z.write(p, p.relative_to(folder).as_posix())
        z.writestr("gana/notes.txt", "x")
        z.writestr("__MACOSX/._000.png", "x")
    report = check_dataset(adhoc_entry("binary-folders", "mine"), archive)
    (note,) = [f for f in report.findings if f.code == "ignored-files"]
    assert "2 files are not read: 1 hidden (e.g. __MACOSX/._000.png), 1 without an image extension" in note.message


def test_sha256sum_file_reports_missing_and_corrupt_files(folder, capsys):
    sums = _sha256sum(folder, folder / "SHA256SUMS")
    assert check_dataset(adhoc_entry("binary-folders", "mine", {"checksums": "SHA256SUMS"}), folder).checksums.ok == 16
    gone = sorted((folder / "ganb" / "0_real").glob("*.png"))[0]
    gone.unlink()
    victim = sorted((folder / "gana" / "1_fake").glob("*.png"))[0]
    victim.write_bytes(victim.read_bytes()[:-1] + b"\x00")
    code = main(["data", "check", "--layout", "binary-folders", "--root", str(folder), "--checksums", str(sums)])
    text = capsys.readouterr().out
    assert code == 1
    assert "checksums" in text and "16 listed, 14 ok, 1 missing, 1 corrupt" in text
    assert "1 of the 16 files listed" in text and f"ganb/0_real/{gone.name}" in text
    assert "1 files differ from their checksum" in text and f"gana/1_fake/{victim.name}" in text


def test_sha256sum_names_are_found_as_members_of_an_archive_root(folder, tmp_path):
    archive = tmp_path / "mine.zip"
    with zipfile.ZipFile(archive, "w") as z:
        for p in sorted(folder.rglob("*.png")):
            z.write(p, p.relative_to(folder).as_posix())
    sums = _sha256sum(folder, folder / "SHA256SUMS")
    report = verify_checksums(sums.rename(tmp_path / "SHA256SUMS"), archive)
    assert (report.ok, report.missing, report.corrupt) == (16, [], [])


def test_checksums_of_webdataset_shards_are_verified_beside_the_shards(folder, tmp_path):
    shard = tmp_path / "shards" / "shard-000000.tar"
    shard.parent.mkdir()
    with tarfile.open(shard, "w") as tar:
        for p in sorted(folder.rglob("*.png")):
            key = f"{p.parent.parent.name}_{p.parent.name}_{p.stem}"
            for name, data in ((f"{key}.png", p.read_bytes()),
                               (f"{key}.json", json.dumps({"label": int(p.parent.name == "1_fake"),
                                                           "generator": p.parent.parent.name}).encode())):
                info = tarfile.TarInfo(name)
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    (shard.parent / "shards.sha256").write_text(f"{hashlib.sha256(shard.read_bytes()).hexdigest()} *shard-000000.tar\n"
                                                f"{'0' * 64}  shard-000001.tar\n")
    entry = adhoc_entry("webdataset", "shards", {"checksums": "shards.sha256"})
    report = check_dataset(entry, str(shard.parent / "shard-{000000..000000}.tar"))
    assert report.checksums.ok == 1 and report.checksums.missing == ["shard-000001.tar"]
    assert "checksum-missing" in report.codes() and report.mix["gana"]["fake"].n == 4


def test_genimage_checksums_csv_is_read_by_base_name_with_drive_suffixes(tmp_path):
    parts = tmp_path / "download" / "glide"
    parts.mkdir(parents=True)
    (parts / "imagenet_glide.z01").write_bytes(b"part one")
    (parts / "imagenet_glide-003.zip").write_bytes(b"the zip")  # Drive renames on a folder download
    md5 = lambda b: hashlib.md5(b).hexdigest()  # noqa: E731
    csv = tmp_path / "checksums.csv"
    csv.write_text("md5Checksum,originalFilename\n"
                   f'"{md5(b"part one")}","imagenet_glide.z01"\n"{md5(b"part one")}","imagenet_glide.z01"\n'
                   f'"{md5(b"other bytes")}","imagenet_glide.zip"\n"{md5(b"x")}","imagenet_glide.z02"\n')
    assert [r.algorithm for r in read_checksums(csv)] == ["md5"] * 3
    report = verify_checksums(csv, tmp_path / "download")
    assert report.ok == 1 and report.missing == ["imagenet_glide.z02"]
    assert [c[0] for c in report.corrupt] == ["imagenet_glide.zip"]


def test_malformed_checksum_line_is_an_error_naming_the_line(folder, tmp_path):
    (tmp_path / "bad.sha256").write_text(f"{'a' * 64}  ok.png\nnot a checksum line\n")
    report = check_dataset(adhoc_entry("binary-folders", "mine", {"checksums": str(tmp_path / "bad.sha256")}),
                           folder)
    (finding,) = [f for f in report.findings if f.code == "checksum-file"]
    assert "bad.sha256:2" in finding.message and report.exit_code() == 1


def test_shard_members_no_sample_uses_are_counted(folder, tmp_path):
    shard = tmp_path / "one.tar"
    png = next(folder.rglob("*.png")).read_bytes()
    with tarfile.open(shard, "w") as tar:
        for name, data in (("a.png", png), ("a.cls", b"1"), ("b.json", b'{"label": 0}'), ("notes.txt", b"x"),
                           ("._a.png", b"x")):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    report = check_dataset(adhoc_entry("webdataset", "one"), shard)
    (note,) = [f for f in report.findings if f.code == "ignored-files"]
    assert note.level == "info"
    assert note.message.startswith("3 shard members are not read: 1 hidden (e.g. one.tar::._a.png); "
                                   "1 neither an image nor .json/.cls (e.g. one.tar::notes.txt); "
                                   "1 metadata without an image (e.g. one.tar::b.json)")


def test_a_catalogue_entrys_checksums_key_is_verified(folder, tmp_path):
    from harness.data.catalogue import read_entry

    _sha256sum(folder, folder / "SHA256SUMS")
    victim = sorted((folder / "ganb" / "1_fake").glob("*.png"))[0]
    victim.write_bytes(b"changed")
    toml = tmp_path / "mine.toml"
    toml.write_text('[dataset]\nname = "mine"\ntitle = "mine"\nlayout = "binary-folders"\nobtain = "x"\n'
                    'licence = "x"\ncitation = "x"\nchecksums = "SHA256SUMS"\n'
                    '[dataset.generators]\ngana = "gan"\nganb = "gan"\n')
    report = check_dataset(read_entry(toml), folder)
    assert report.checksums.corrupt[0][0] == f"ganb/1_fake/{victim.name}"
    assert "checksum-mismatch" in report.codes() and report.exit_code() == 1
