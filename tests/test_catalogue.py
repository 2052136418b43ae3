"""The benchmark catalogue and the layouts its entries name."""
from __future__ import annotations

import pytest

from harness.api import ConfigError
from harness.data.catalogue import load_catalogue, read_entry
from harness.data.layouts import read_genimage
from harness.plugins import layouts
from tests.conftest import noise_image

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


def test_counts_without_their_source_are_refused(tmp_path):
    path = tmp_path / "x.toml"
    path.write_text('[dataset]\nname="x"\ntitle="x"\nlayout="manifest"\nobtain="x"\nlicence="x"\ncitation="x"\n'
                    '[dataset.generators]\ng="gan"\n[dataset.counts.g]\nfake=10\n')
    with pytest.raises(ConfigError, match="counts_source"):
        read_entry(path)


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
