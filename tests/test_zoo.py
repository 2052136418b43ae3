"""The zoo's recipe and protocol, checked without the network."""
from __future__ import annotations

import csv

from PIL import Image

from harness.data.zoo import Item, _write, datasets_dir, load_recipe


def test_every_kept_curated_file_names_a_generator_of_the_catalogue_entry():
    recipe = load_recipe()
    generators = recipe["dataset"]["generators"]
    with open(datasets_dir() / "zoo_curation.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    kept = [r for r in rows if r["keep"] == "yes"]
    assert len(kept) >= 60
    assert all(generators[r["generator"]] == r["family"] for r in kept)
    assert all(r["note"] for r in rows if r["keep"] == "no")


def test_harmonised_protocol_writes_same_size_jpeg_without_metadata(tmp_path):
    src = tmp_path / "photo.jpg"
    exif = Image.Exif()
    exif[271] = "Canon"
    Image.new("RGB", (640, 480), (90, 120, 30)).save(src, exif=exif)
    item = Item(src, 0, "real", "camera", "s", "photo", "0" * 64, True)
    r = load_recipe()["recipe"]
    out = _write(item, tmp_path / "out", "harmonised", r)
    with Image.open(out) as img:
        assert img.format == "JPEG" and img.size == (r["size"], r["size"]) and not img.getexif()


def test_as_is_protocol_keeps_the_original_bytes(tmp_path):
    src = tmp_path / "fake.webp"
    Image.new("RGB", (40, 40)).save(src)
    out = _write(Item(src, 1, "g", "gan", "s", "fake", "0" * 64, False), tmp_path / "out", "as-is", {})
    assert out.read_bytes() == src.read_bytes()
