"""A sweep over a corpus of awkward and malformed files finishes: every readable file is
scored, every unreadable one is a row with its reason.

The corpus: every kind of ``tests.helpers.AWKWARD`` (21 kinds), in both classes of two
generators, three files each (252 files), in the binary-folders layout.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from harness.config import load_sweep
from harness.data import decode
from harness.data.layouts import read_binary_folders
from harness.engine.score_cache import ScoreCache
from harness.engine.sweep import run_sweep
from tests.helpers import AWKWARD, spectrum_checkpoint, write_sweep_config

COPIES = 3
GENERATORS = ("gana", "ganb")
_FAKE_HEIC = b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + b"\x00" * 64

pytestmark = pytest.mark.ray  # one sweep of the corpus on the session's Ray serves every test


def _kinds() -> dict:
    """The decode test's kinds; without pillow-heif a HEIC file has the 'needs the extra' outcome."""
    kinds = dict(AWKWARD)
    if not decode.HEIF_AVAILABLE:
        kinds["heic"] = ("HEIC/HEIF needs", lambda rng: (".heic", _FAKE_HEIC))
    return kinds


def write_corpus(root, seed: int = 0) -> dict[str, str]:
    """Write the corpus; return file name -> expected outcome ("ok" or the reason's start)."""
    expected, rng = {}, np.random.default_rng(seed)
    for gen in GENERATORS:
        for cls in ("0_real", "1_fake"):
            folder = root / gen / cls
            folder.mkdir(parents=True)
            for kind, (outcome, maker) in sorted(_kinds().items()):
                for i in range(COPIES):
                    suffix, data = maker(rng)
                    if kind == "non-image":  # distinct bytes, so each file is its own sample
                        data += f"<!-- {gen} {cls} {i} -->".encode()
                    name = f"{kind}_{i}{suffix}"
                    (folder / name).write_bytes(data)
                    expected[f"{gen}/{cls}/{name}"] = outcome
    return expected


@pytest.fixture(scope="module")
def awkward_run(tmp_path_factory, ray_session):
    tmp = tmp_path_factory.mktemp("awkward")
    expected = write_corpus(tmp / "data")
    ckpt = spectrum_checkpoint(tmp, n_bins=64, n=12, seed=5)
    config = load_sweep(write_sweep_config(
        tmp / "sweep.toml", run={"seed": 0},
        datasets=[{"name": "awkward", "layout": "binary-folders", "root": tmp / "data"}],
        detectors=[{"name": "spectrum", "checkpoint": ckpt, "n_bins": 64}], grid=["none"]))
    result = run_sweep(config, tmp / "run", quiet=True, cache=ScoreCache(tmp / "scores.sqlite"), leaderboard=False)
    scores = pd.read_parquet(tmp / "run" / "scores.parquet")
    scores["rel"] = [p.split("/data/", 1)[1] for p in scores["path"]]
    return expected, scores, result


def test_corpus_has_at_least_200_files_of_every_kind_in_both_classes(awkward_run):
    expected, scores, _ = awkward_run
    assert len(expected) >= 200 and len(scores) == len(expected)
    kinds = {(r.split("/")[1], r.split("/")[2].rsplit("_", 1)[0]) for r in expected}
    assert len(kinds) == 2 * len(AWKWARD)


def test_every_readable_file_is_scored(awkward_run):
    expected, scores, _ = awkward_run
    readable = scores[scores["rel"].map(expected) == "ok"]
    assert len(readable) == sum(v == "ok" for v in expected.values())
    assert readable["error"].isna().all() and np.isfinite(readable["score"]).all()


def test_every_unreadable_file_is_a_row_with_its_reason(awkward_run):
    expected, scores, result = awkward_run
    bad = scores[scores["rel"].map(expected) != "ok"]
    assert len(bad) == sum(v != "ok" for v in expected.values()) == result.failed
    for row in bad.itertuples():
        assert row.error.startswith("decode: " + expected[row.rel]), (row.rel, row.error)
        assert pd.isna(row.score)


def test_layout_lists_every_file_of_the_corpus(awkward_run, tmp_path):
    expected = write_corpus(tmp_path / "c")
    assert len(read_binary_folders(tmp_path / "c")) == len(expected)
