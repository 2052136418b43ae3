"""Camera database: darktable parsing, EXIF-name mapping, fallback, the cached real database."""
from __future__ import annotations

import json
import os
import warnings
from pathlib import Path

import pytest

from harness.data.camera import darktable as dt
from harness.data.camera.database import fallback_cameras, load_cameras
from harness.data.camera.pipeline import jpeg_qtables

#: the user's cache, read before the per-test isolated cache replaces the variable
_USER_CACHE = Path(os.environ.get("EXIFBENCH_CACHE") or Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
                   / "exifbench").expanduser()

_XML = """<Cameras>
<Camera make="NIKON CORPORATION" model="NIKON D700">
  <ID make="Nikon" model="D700">Nikon D700</ID>
  <CFA width="2" height="2"><Color x="0" y="0">RED</Color><Color x="1" y="0">GREEN</Color>
    <Color x="0" y="1">GREEN</Color><Color x="1" y="1">BLUE</Color></CFA>
  <Crop x="0" y="1" width="100" height="100"/>
  <Sensor black="0" white="15892" iso_list="100"/><Sensor black="0" white="3972"/>
  <ColorMatrices><ColorMatrix planes="3"><ColorMatrixRow plane="0">8139 -2171 -663</ColorMatrixRow>
    <ColorMatrixRow plane="1">-8747 16541 2295</ColorMatrixRow><ColorMatrixRow plane="2">-1925 2008 8093</ColorMatrixRow>
  </ColorMatrix></ColorMatrices>
</Camera>
<Camera make="FUJIFILM" model="X-E2"><ID make="Fujifilm" model="X-E2">Fujifilm X-E2</ID>
  <CFA width="6" height="6"><Color x="0" y="0">GREEN</Color></CFA></Camera>
</Cameras>"""


def test_cameras_xml_maps_canonical_names_to_exif_names(tmp_path):
    (tmp_path / "cameras.xml").write_text(_XML)
    cams = dt.parse_cameras_xml(tmp_path / "cameras.xml")
    assert set(cams) == {("Nikon", "D700")}
    entry = cams[("Nikon", "D700")]
    assert (entry["exif_make"], entry["exif_model"]) == ("NIKON CORPORATION", "NIKON D700")
    assert (entry["black"], entry["white"]) == (0, 3972)
    assert entry["color_matrix"][0] == pytest.approx(0.8139)


def test_sensor_crop_offset_shifts_the_cfa_phase(tmp_path):
    (tmp_path / "cameras.xml").write_text(_XML)
    assert dt.parse_cameras_xml(tmp_path / "cameras.xml")[("Nikon", "D700")]["cfa"] == "GBRG"


def test_noise_profiles_and_wb_presets_are_keyed_by_canonical_name(tmp_path):
    noise = {"noiseprofiles": [{"maker": "Nikon", "models": [{"model": "D700", "profiles": [
        {"iso": 400, "a": [2e-5, 1e-5, 2e-5], "b": [1e-7, 1e-7, 1e-7]},
        {"iso": 100, "a": [5e-6, 3e-6, 5e-6], "b": [1e-8, 1e-8, 1e-8]}]}]}]}
    wb = {"wb_presets": [{"maker": "Nikon", "models": [{"model": "D700", "presets": [
        {"name": "Daylight", "channels": [2.0, 1.0, 1.5, 0]},
        {"name": "Daylight", "tuning": 1, "channels": [9.0, 1.0, 9.0, 0]}]}]}]}
    (tmp_path / "n.json").write_text(json.dumps(noise))
    (tmp_path / "w.json").write_text(json.dumps(wb))
    assert [p[0] for p in dt.parse_noise_profiles(tmp_path / "n.json")[("Nikon", "D700")]] == [100, 400]
    assert dt.parse_wb_presets(tmp_path / "w.json")[("Nikon", "D700")] == {"Daylight": [2.0, 1.0, 1.5]}


def _darktable_files(root: Path) -> Path:
    for name in dt.DARKTABLE_FILES:
        (root / "usr/share/darktable" / name).parent.mkdir(parents=True, exist_ok=True)
        (root / "usr/share/darktable" / name).write_text("{}")
    return root


def test_darktable_is_fetched_once_into_the_cache_by_the_package_fetcher(tmp_path, monkeypatch):
    from harness.data import fetch

    monkeypatch.setenv("EXIFBENCH_CACHE", str(tmp_path / "cache"))
    downloads = []
    monkeypatch.setattr(fetch, "_apt_download", lambda package, into: downloads.append(package) or into / "x.deb")
    monkeypatch.setattr(fetch, "_extract", lambda archive, into: _darktable_files(into))
    assert dt.darktable_share(fetch=False) is None
    share = dt.darktable_share()
    assert share.is_relative_to(tmp_path / "cache") and downloads == ["darktable"]
    assert dt.darktable_share(fetch=False) == dt.darktable_share() == share and downloads == ["darktable"]


def test_load_cameras_falls_back_to_generic_cameras_with_a_warning(tmp_path, monkeypatch):
    monkeypatch.setenv("EXIFBENCH_CACHE", str(tmp_path))
    with pytest.warns(RuntimeWarning, match="generic fallback cameras"):
        cams = load_cameras(fetch=False)
    assert cams == fallback_cameras()
    assert all(c.make == "Generic" and "fallback" in c.model and c.source == "builtin-fallback" for c in cams)


def test_every_fallback_camera_has_its_own_quantisation_tables():
    tables = {json.dumps(jpeg_qtables(c.jpeg_quality, c.name)) for c in fallback_cameras()}
    assert len(tables) == len(fallback_cameras())


def test_real_database_maps_darktable_to_exif_names_when_cached(monkeypatch):
    monkeypatch.setenv("EXIFBENCH_CACHE", str(_USER_CACHE))
    cached = any((_USER_CACHE / "camera").glob("cameras-v*.json"))
    if not cached and dt.darktable_share(fetch=False) is None:
        pytest.skip("darktable data not in the cache (run `exifbench data simulate` once to fetch it)")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        cams = load_cameras(fetch=False, fallback=False)
    assert len(cams) > 100
    nikon = [c for c in cams if c.canonical_make == "Nikon"]
    assert nikon and all(c.make.upper().startswith("NIKON") for c in nikon)
    assert all(sorted(c.cfa) == ["B", "G", "G", "R"] and c.white > c.black and c.lenses and c.noise for c in cams)
