"""Does the demo's pretext backbone learn? Its held-out figures and its training time.

Simulates the demo's photos (``harness.demo.SIMULATE``: the training scenes of the zoo, and
the held-out scenes with another seed, the same camera models), trains ``exif-backbone``
with the demo's configuration (``harness.demo.PRETEXT``; ``--set key=value`` overrides, e.g.
``--set steps=0`` for the random-backbone control) on the zoo's real EXIF photos plus the
simulated ones, in this process, and prints the held-out evaluation
(:func:`detectors.exif.evaluate.evaluate_pretext`) with the training time, wall-clock and
CPU (on a machine shared with other work, the CPU time of this single-threaded training
is the closer measure of what it costs on an idle one).

    .venv/bin/python tests/benchmarks/pretext_demo_check.py
    .venv/bin/python tests/benchmarks/pretext_demo_check.py --set steps=0
"""
from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path


def _simulate(cameras, photos: int, out: Path, scenes: list[Path], seed: int, size) -> Path:
    """The demo's simulation, one photo after another (no Ray: same photos, see simulate.py)."""
    from harness.data.camera.simulate import _write_manifest, make_photo, plan_jobs

    if not (out / "manifest.csv").is_file():
        out.mkdir(parents=True, exist_ok=True)
        jobs = plan_jobs(cameras, photos, out, [str(s) for s in scenes], seed, tuple(size))
        _write_manifest([make_photo(j) for j in jobs], out)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--set", action="append", default=[], help="KEY=VALUE (JSON) overriding the demo's preset")
    parser.add_argument("--work", type=Path, default=None, help="folder for photos and checkpoint (default: temp)")
    parser.add_argument("--protocol", default=None, help="zoo protocol (default: the demo's)")
    args = parser.parse_args()

    from harness.data.camera import load_cameras
    from harness.data.camera.simulate import choose_cameras
    from harness.data.decode import load_image
    from harness.data.layouts import image_files, read_real_only
    from harness.data.zoo import DEFAULT_PROTOCOL, build_zoo
    from harness.demo import PRETEXT, SIMULATE, scene_split
    from harness.detector import TrainingSet
    from harness.plugins import trainers
    from detectors.exif.evaluate import evaluate_pretext

    overrides = {k: json.loads(v) for k, v in (s.split("=", 1) for s in args.set)}
    params = {**PRETEXT, **overrides}
    work = args.work or Path(tempfile.mkdtemp(prefix="pretext-check-"))
    zoo = build_zoo(args.protocol or DEFAULT_PROTOCOL, log=lambda m: None)
    train_scenes, held_scenes = scene_split(image_files(zoo.scenes_train), SIMULATE["heldout_scenes"])
    cameras = choose_cameras(load_cameras(), SIMULATE["cameras"], SIMULATE["seed"])
    start = time.perf_counter()
    sims = _simulate(cameras, SIMULATE["photos"], work / "simulated", train_scenes, SIMULATE["seed"], SIMULATE["size"])
    held = _simulate(cameras, SIMULATE["heldout"], work / "heldout", held_scenes, SIMULATE["seed"] + 1, SIMULATE["size"])
    print(f"simulated photos ready ({time.perf_counter() - start:.0f}s): {SIMULATE}")
    samples = read_real_only(zoo.real_exif_train, dataset="zoo-real-exif") + read_real_only(sims / "images",
                                                                                         dataset="simulated")
    train = TrainingSet(samples, lambda s: load_image(s.path))
    trainer = trainers()["exif-backbone"].create(**params)
    wall, cpu = time.perf_counter(), time.process_time()
    folder = trainer.fit(train, work / f"backbone-{abs(hash(json.dumps(params, sort_keys=True))) % 10**8}")
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    print(f"exif-backbone {json.dumps(params)} on {len(samples)} photos: {wall:.0f}s wall-clock, {cpu:.0f}s CPU")
    evaluation = evaluate_pretext(folder, image_files(held / "images"))
    print(f"held-out: {SIMULATE['heldout']} simulated photos of {SIMULATE['heldout_scenes']} unseen scenes, "
          f"95% bootstrap intervals over photos")
    print(evaluation.summary())
    print(evaluation.table.to_string(index=False))


if __name__ == "__main__":
    main()
