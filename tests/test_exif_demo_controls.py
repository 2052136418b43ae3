"""The demo's EXIF controls: random-backbone and no-distillation rows, labelled as controls."""
from __future__ import annotations

from pathlib import Path

from harness.data.zoo import ZooBuild
from harness.demo import RANDOM_BACKBONE, _sweep_config, demo_jobs, scene_split


def test_controls_share_everything_but_what_they_control_for():
    jobs = {j.key: j for j in demo_jobs()}
    trained, random = jobs["exif-backbone"], jobs["exif-backbone-random"]
    assert random.trainer == trained.trainer and random.params == {**trained.params, "steps": 0}
    for det in ("exif-oc", "exif-bc"):
        control = jobs[f"{det}-random"]
        assert control.control == RANDOM_BACKBONE and control.alias and control.alias != det
        assert control.params == jobs[det].params and control.needs == {"backbone": "exif-backbone-random"}
    no_distil = jobs["exif-bc-no-distillation"]
    assert no_distil.params == {**jobs["exif-bc"].params, "alpha": 0.0} and no_distil.needs == jobs["exif-bc"].needs
    assert len({j.alias or j.detector for j in jobs.values() if j.detector}) == sum(1 for j in jobs.values() if j.detector)


def test_sweep_config_labels_the_control_rows():
    checkpoints = {j.key: f"/ck/{j.key}" for j in demo_jobs()}
    zoo = ZooBuild(Path("/z"), Path("/z/manifest.csv"), Path("/z/e"), Path("/z/s"), {}, "matched")
    config = _sweep_config(zoo, checkpoints)
    by_name = {d.display_name: d for d in config.detectors}
    assert by_name["exif-oc (random backbone)"].control == RANDOM_BACKBONE
    assert by_name["exif-oc (random backbone)"].param_dict["backbone"] == "/ck/exif-backbone-random"
    assert by_name["exif-oc"].control == "" and by_name["exif-oc"].param_dict["backbone"] == "/ck/exif-backbone"
    raw = {d.get("alias", d["name"]): d for d in config.raw["detectors"]}
    assert raw["exif-bc (alpha 0)"]["control"] and raw["exif-bc (alpha 0)"]["alpha"] == 0.0


def test_scene_split_is_by_name_and_disjoint():
    scenes = [Path(f"/a/s{i}.jpg") for i in range(20)]
    train, held = scene_split(scenes, 5)
    assert len(held) == 5 and not set(train) & set(held) and set(train) | set(held) == set(scenes)
    assert scene_split([Path("/other") / p.name for p in reversed(scenes)], 5)[1] == [Path("/other") / p.name
                                                                                       for p in held]


def test_a_demo_checkpoint_key_changes_with_its_trainers_code(monkeypatch):
    from harness.demo import _fingerprint

    job = demo_jobs()[0]
    before = _fingerprint(job, ["a", "b"], {})
    assert _fingerprint(job, ["b", "a"], {}) == before
    monkeypatch.setattr("harness.train.store.trainer_code", lambda name: {"trainer_version": "next"})
    assert _fingerprint(job, ["a", "b"], {}) != before


def test_demo_checkpoint_keys_do_not_depend_on_the_cache_folder(tmp_path, monkeypatch):
    """Two cache folders give the same checkpoint names (a job's inputs enter its key by name)."""
    import harness.demo as demo

    names = []
    for folder in ("a", "b"):
        monkeypatch.setenv("EXIFBENCH_CACHE", str(tmp_path / folder))
        monkeypatch.setattr(demo, "_training_data", lambda *a: {"labelled": [], "reals": [], "pretext": []})
        captured = {}
        monkeypatch.setattr("harness.train.jobs.run_training_jobs",
                            lambda jobs, address=None, after=None: captured.setdefault("jobs", jobs) and [])
        demo._train_all(None, None, lambda m: None)
        names.append([j.out.name for j in captured["jobs"]])
    assert names[0] == names[1] and len(set(names[0])) == len(names[0])


def test_the_demos_simulated_photos_are_keyed_by_the_simulators_version(monkeypatch):
    from pathlib import Path

    from harness.demo import simulated_key

    scenes = [Path("a.jpg"), Path("b.jpg")]
    before = simulated_key(scenes, False)
    assert simulated_key(scenes, True) != before and simulated_key(scenes[:1], False) != before
    import sys

    monkeypatch.setattr(sys.modules["harness.data.camera.simulate"], "SIMULATOR_VERSION", 999)
    assert simulated_key(scenes, False) != before
