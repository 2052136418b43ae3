"""`exifbench data check`: each planted problem in a damaged copy of a layout is reported."""
from __future__ import annotations

import io
import shutil
from pathlib import Path

import pytest
from PIL import Image

from harness.cli import main
from harness.data.catalogue import load_catalogue, read_entry
from harness.data.check import check_dataset, estimate_jpeg_quality
from tests.helpers import write_binary_folders

GENERATORS = ("gana", "ganb", "ganc")


def _entry(tmp_path: Path, counts: bool = True):
    lines = ['[dataset]', 'name = "tiny"', 'title = "tiny"', 'layout = "binary-folders"', 'obtain = "made by the test"',
             'licence = "none"', 'citation = "none"']
    if counts:
        lines.append('counts_source = "written by write_binary_folders in this test"')
    lines.append("[dataset.generators]")
    lines += [f'{g} = "gan"' for g in GENERATORS]
    if counts:
        lines += [f"[dataset.counts.{g}]\nreal = 6\nfake = 6" for g in GENERATORS]
    path = tmp_path / "tiny.toml"
    path.write_text("\n".join(lines) + "\n")
    return read_entry(path)


@pytest.fixture
def clean(tmp_path) -> Path:
    return write_binary_folders(tmp_path / "clean", generators=GENERATORS, n=6)


@pytest.fixture
def damaged(clean, tmp_path) -> Path:
    root = tmp_path / "damaged"
    shutil.copytree(clean, root)
    shutil.rmtree(root / "ganc")                                          # a missing generator
    (root / "ganb" / "1_fake").rename(root / "ganb" / "1_fakes")          # a misnamed class folder
    (root / "gana" / "1_fake" / "empty.png").write_bytes(b"")             # an empty file
    for png in sorted((root / "gana" / "0_real").glob("*.png")):          # reals JPEG, fakes PNG
        Image.open(png).convert("RGB").save(png.with_suffix(".jpg"), quality=90)
        png.unlink()
    return root


def test_clean_copy_has_no_finding(clean, tmp_path):
    report = check_dataset(_entry(tmp_path), clean)
    assert report.findings == [] and report.exit_code() == 0
    assert report.mix["gana"]["real"].n == 6 and report.mix["gana"]["fake"].formats == {"png": 6}


@pytest.mark.parametrize("code", ["missing-generator", "outside-class-folder", "unreadable", "format-bias",
                                  "count-mismatch", "one-class-only"])
def test_damaged_copy_reports_each_planted_problem(damaged, tmp_path, code):
    report = check_dataset(_entry(tmp_path), damaged)
    assert code in report.codes(), report.render()
    assert report.exit_code() == 1


def test_findings_name_the_generator_folder_and_reason(damaged, tmp_path):
    text = check_dataset(_entry(tmp_path), damaged).render()
    assert "generator 'ganc' of tiny is missing" in text
    assert "ganb/1_fakes/" in text
    assert "empty file" in text and "empty.png" in text
    assert "gana: real images are mostly jpeg, generated ones mostly png" in text


def test_folder_that_is_not_a_generator_of_the_entry_is_reported(clean, tmp_path):
    (clean / "ganc").rename(clean / "gan_c")
    codes = check_dataset(_entry(tmp_path, counts=False), clean).codes()
    assert {"missing-generator", "unexpected-generator"} <= codes


def test_lying_extension_is_a_warning_not_an_error(clean, tmp_path):
    png = next((clean / "gana" / "1_fake").glob("*.png"))
    png.rename(png.with_suffix(".jpg"))
    report = check_dataset(_entry(tmp_path, counts=False), clean)
    assert report.codes() == {"extension-mismatch"} and report.exit_code() == 0 and report.exit_code(strict=True) == 1


@pytest.mark.parametrize("quality", [12, 50, 75, 95, 100])
def test_jpeg_quality_is_estimated_exactly_from_pillow_tables(quality):
    buf = io.BytesIO()
    Image.new("RGB", (16, 16), (30, 60, 90)).save(buf, format="JPEG", quality=quality)
    buf.seek(0)
    assert estimate_jpeg_quality(Image.open(buf).quantization[0]) == (quality, True)


def test_cli_data_check_exits_non_zero_and_prints_findings(clean, capsys):
    code = main(["data", "check", "cnnspot-progan-train", "--root", str(clean), "--workers", "1"])
    out = capsys.readouterr().out
    assert code == 1 and "generator 'airplane' of cnnspot-progan-train is missing" in out


def test_counts_that_differ_from_a_catalogue_entrys_published_ones_are_errors_citing_the_source(tmp_path):
    entry = load_catalogue()["cnndetection"]
    root = write_binary_folders(tmp_path / "cnn", generators=("san",), n=3)
    mismatches = [f.message for f in check_dataset(entry, root).findings if f.code == "count-mismatch"]
    assert "san real: 3 images, 219 expected" in "\n".join(mismatches)
    assert all("demo_dirs_log.txt" in m for m in mismatches)


def test_a_real_folder_short_of_its_published_count_is_an_error(tmp_path):
    entry = load_catalogue()["universalfakedetect"]
    root = write_binary_folders(tmp_path / "diffusion_datasets", generators=("guided",), n=2)
    (root / "imagenet").mkdir()
    (root / "guided" / "0_real").rename(root / "imagenet" / "0_real")   # reals in their own folder
    messages = [f.message for f in check_dataset(entry, root).findings if f.code == "count-mismatch"]
    assert any(m.startswith("imagenet real: 2 images, 1000 expected") for m in messages), messages
    assert any(m.startswith("guided fake: 2 images, 1000 expected") for m in messages), messages
