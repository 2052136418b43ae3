"""Derived artefacts: made once per key, read back in the order made, never half-published."""
from __future__ import annotations

from pathlib import Path

import pytest

import harness.derived_cache
import harness.files
from harness.derived_cache import derived_files, derived_key


def _make(calls: list, names=("b.png", "a.png")):
    def make(folder: Path) -> list[Path]:
        calls.append(folder)
        for name in names:
            (folder / name).write_text(name)
        return [folder / name for name in names]
    return make


def test_an_artefact_is_made_once_and_read_back_in_the_order_made(tmp_path):
    calls: list = []
    first = derived_files("plots", "k", _make(calls), tmp_path)
    again = derived_files("plots", "k", _make(calls), tmp_path)
    assert len(calls) == 1 and first == again and [p.name for p in again] == ["b.png", "a.png"]
    assert all(p.is_relative_to(tmp_path / "derived" / "plots" / "k") and p.read_text() == p.name for p in again)


def test_a_failed_make_publishes_nothing(tmp_path):
    def broken(folder: Path) -> list[Path]:
        (folder / "half.png").write_text("")
        raise RuntimeError("out of memory")

    with pytest.raises(RuntimeError):
        derived_files("plots", "k", broken, tmp_path)
    assert list((tmp_path / "derived" / "plots").iterdir()) == []
    calls: list = []
    assert [p.name for p in derived_files("plots", "k", _make(calls), tmp_path)] == ["b.png", "a.png"]


def test_the_key_follows_the_inputs_the_code_and_the_library():
    key = derived_key(harness.files, "numpy", b"rows")
    assert key == derived_key(harness.files, "numpy", b"rows")
    assert len({key, derived_key(harness.files, "numpy", b"other rows"), derived_key(harness.files, "pandas", b"rows"),
                derived_key(harness.derived_cache, "numpy", b"rows")}) == 4
