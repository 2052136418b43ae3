"""The benchmark catalogue and the layouts its entries name."""
from __future__ import annotations

import pytest

from harness.api import ConfigError
from harness.data.catalogue import load_catalogue, read_entry
from harness.data.layouts import read_genimage
from harness.plugins import layouts
from tests.helpers import noise_image

CATALOGUE = load_catalogue()
EXPECTED_GENERATORS = {"cnndetection": 13, "aigcdetectbenchmark": 16, "sdaie": 17, "genimage": 8,
                       "cnnspot-progan-train": 20}


@pytest.mark.parametrize("name", sorted(CATALOGUE))
def test_every_entry_names_a_registered_layout_source_licence_and_how_to_obtain_it(name):
    entry = CATALOGUE[name]
    assert entry.layout in layouts()
    assert entry.obtain and entry.licence and entry.citation and entry.generators
    assert entry.counts_source if entry.counts else (entry.counts_note or entry.raw.get("counts_source"))


@pytest.mark.parametrize("name,n", sorted(EXPECTED_GENERATORS.items()))
def test_benchmark_has_its_published_number_of_generators(name, n):
    assert len(CATALOGUE[name].generators) == n


def test_sdaie_is_aigcdetectbenchmark_plus_coco_sdxl_nw():
    assert set(CATALOGUE["sdaie"].generators) - set(CATALOGUE["aigcdetectbenchmark"].generators) == {"coco_sdxl_nw"}


def test_the_benchmarks_the_design_names_are_all_catalogued():
    assert {"cnndetection", "universalfakedetect", "aigcdetectbenchmark", "sdaie", "genimage", "synthbuster",
            "chameleon", "wildrf", "cnnspot-progan-train", "zoo"} <= set(CATALOGUE)


def _write_entry(tmp_path, extra: str = "", counts: str = "", source: str = 'counts_source = "Table 1"\n'):
    path = tmp_path / "x.toml"
    path.write_text('[dataset]\nname="x"\ntitle="x"\nlayout="manifest"\nobtain="x"\nlicence="x"\ncitation="x"\n'
                    + source + extra + '[dataset.generators]\ng="gan"\n' + counts)
    return path


def test_counts_without_their_source_are_refused(tmp_path):
    with pytest.raises(ConfigError, match="counts_source"):
        read_entry(_write_entry(tmp_path, counts="[dataset.counts.g]\nfake=10\n", source=""))


@pytest.mark.parametrize("name", sorted(CATALOGUE))
def test_every_entry_cites_where_its_counts_come_from_or_says_what_was_searched(name):
    entry = CATALOGUE[name]
    if entry.counts:
        assert "github.com/" in entry.counts_source or "Table" in entry.counts_source, entry.counts_source
    elif name != "zoo":  # the zoo's counts are computed by its recipe, not published
        assert "Searched" in entry.counts_note, f"{name}: say what was searched for published counts"


@pytest.mark.parametrize("name", sorted(n for n in CATALOGUE if CATALOGUE[n].counts))
def test_counts_name_only_generators_or_real_subsets_of_their_entry(name):
    entry = CATALOGUE[name]
    for key, classes in entry.counts.items():
        assert key in entry.generators or (key in entry.real_subsets and set(classes) == {"real"}), key
        assert all(isinstance(n, int) and n > 0 for n in classes.values())


def test_cnndetection_has_published_real_and_fake_counts_for_all_13_generators():
    entry = CATALOGUE["cnndetection"]
    assert set(entry.counts) == set(entry.generators)
    assert all(set(c) == {"real", "fake"} for c in entry.counts.values())
    assert "demo_dirs_log.txt" in entry.counts_source


def test_universalfakedetect_counts_fakes_per_generator_and_reals_per_real_folder():
    entry = CATALOGUE["universalfakedetect"]
    assert {g: c for g, c in entry.counts.items() if g in entry.generators} == {g: {"fake": 1000} for g in entry.generators}
    assert {r: entry.counts[r] for r in entry.real_subsets} == {"laion": {"real": 1000}, "imagenet": {"real": 1000}}


def test_a_real_subset_takes_a_real_count_only(tmp_path):
    ok = read_entry(_write_entry(tmp_path, 'real_subsets = ["laion"]\n', "[dataset.counts.laion]\nreal = 5\n"))
    assert ok.counts == {"laion": {"real": 5}}
    with pytest.raises(ConfigError, match="real = N only"):
        read_entry(_write_entry(tmp_path, 'real_subsets = ["laion"]\n', "[dataset.counts.laion]\nfake = 5\n"))


@pytest.mark.parametrize("counts,match", [("[dataset.counts.h]\nfake = 5\n", "neither in"),
                                          ("[dataset.counts.g]\nfake = 4.5\n", "whole numbers"),
                                          ("[dataset.counts.g]\nfake = -1\n", "whole numbers"),
                                          ('[dataset.counts.g]\nfake = "5"\n', "whole numbers"),
                                          ("[dataset.counts.g]\ntotal = 5\n", "real = N and/or fake = N")])
def test_counts_for_unknown_names_or_that_are_not_whole_numbers_are_refused(tmp_path, counts, match):
    with pytest.raises(ConfigError, match=match):
        read_entry(_write_entry(tmp_path, counts=counts))


def _genimage_tree(root):
    for gen in ("ADM", "BigGAN"):
        for split in ("train", "val"):
            for cls in ("ai", "nature"):
                folder = root / gen / f"imagenet_{gen.lower()}" / split / cls
                folder.mkdir(parents=True)
                noise_image().save(folder / f"{split}_{cls}.png")
    return root


def test_genimage_label_comes_from_ai_or_nature_and_split_from_the_folder_above(tmp_path):
    samples = read_genimage(_genimage_tree(tmp_path), families={"ADM": "diffusion"})
    got = {(s.subset, s.split, s.label, s.generator, s.family) for s in samples}
    assert ("ADM", "val", 1, "ADM", "diffusion") in got and ("ADM", "train", 0, "real", "camera") in got
    assert len(samples) == 8


def test_genimage_keeps_one_split_and_named_generators(tmp_path):
    samples = read_genimage(_genimage_tree(tmp_path), split="val", generators=["BigGAN"])
    assert {(s.subset, s.split) for s in samples} == {("BigGAN", "val")} and len(samples) == 2


def test_genimage_without_class_folders_is_an_error_naming_the_layout(tmp_path):
    noise_image().save(tmp_path / "x.png")
    with pytest.raises(ConfigError, match="train,val"):
        read_genimage(tmp_path)
