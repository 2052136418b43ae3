"""The ``exifbench`` command line: list, sweep, score, train, leaderboard, compare, demo, data."""
from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path
from typing import Callable, Sequence

from harness.api import ExifbenchError

__all__ = ["main", "build_parser"]


def _cmd_list(args: argparse.Namespace) -> int:
    from tabulate import tabulate

    from harness import plugins

    if args.what == "detectors":
        rows = [(n, s.approach, "yes" if s.trainable else "", s.summary, s.paper) for n, s in plugins.detectors().items()]
        print(tabulate(rows, headers=["name", "approach", "trainable", "summary", "paper"]))
    elif args.what == "perturbations":
        rows = [(n, ", ".join(f"{p.name}:{p.type.__name__}" for p in s.params), s.version, s.summary, s.metadata)
                for n, s in plugins.perturbations().items()]
        print(tabulate(rows, headers=["name", "parameters", "version", "summary", "metadata"]))
    elif args.what == "layouts":
        print(tabulate([(n, s.summary) for n, s in plugins.layouts().items()], headers=["name", "summary"]))
    elif args.what == "trainers":
        print(tabulate([(n, s.summary) for n, s in plugins.trainers().items()], headers=["name", "summary"]))
    else:
        from harness.data.catalogue import load_catalogue

        rows = [(n, e.layout, len(e.generators), e.title) for n, e in load_catalogue().items()]
        print(tabulate(rows, headers=["name", "layout", "generators", "title"]))
    return 0


def _cmd_sweep(args: argparse.Namespace) -> int:
    from harness.config import load_sweep
    from harness.engine.score_cache import ScoreCache
    from harness.engine.sweep import run_sweep

    config = load_sweep(args.config)
    cache = ScoreCache(None) if args.no_cache else None
    result = run_sweep(config, args.out, address=args.address, quiet=args.quiet, cache=cache,
                       retry_errors=args.retry_errors, apply_orientation=args.apply_orientation)
    print(result.summary())
    print(f"leaderboard: {Path(args.out) / 'leaderboard.md'}")
    return 0


def _cmd_score(args: argparse.Namespace) -> int:
    from harness.engine.score import run_score, score_config

    config = score_config(args.detector, args.param, args.config, args.perturb)
    result = run_score(args.paths, config, args.out, address=args.address, quiet=args.quiet,
                       apply_orientation=args.apply_orientation, retry_errors=args.retry_errors)
    if result.ignored:
        print(f"note: {result.ignored} files in the folders and archives given were left out (hidden, or without an "
              "image extension)", file=sys.stderr)
    print(result.summary())
    if result.failed_files:
        print(f"exifbench: {result.failed_files} files could not be scored (their rows say why)", file=sys.stderr)
        return 1
    return 0


def _cmd_train(args: argparse.Namespace) -> int:
    from harness.config import load_train
    from harness.engine.plan import read_dataset
    from harness.train.jobs import run_training

    config = load_train(args.config, trainer=args.name)
    samples = [s for ds in config.datasets for s in read_dataset(ds)]
    out = run_training(args.name, config.param_dict, samples, args.out, seed=config.run.seed,
                       num_gpus=args.num_gpus, address=args.address, force=args.force)
    print(f"checkpoint: {out}")
    return 0


def _cmd_leaderboard(args: argparse.Namespace) -> int:
    from harness.leaderboard import render_leaderboard

    run_dir = args.run_dirs[0]
    if len(args.run_dirs) > 1:
        from harness.leaderboard.runs import merge_runs
        from harness.stats import Bootstrap

        if args.out is None:
            raise ExifbenchError("several runs are merged into a new folder: give --out DIR")
        run_dir = merge_runs(args.run_dirs, args.out, Bootstrap(args.bootstrap, args.ci, args.seed))
    elif args.out is not None:
        raise ExifbenchError("--out is for merging several runs; one run's leaderboard is written into its folder")
    path = render_leaderboard(run_dir, args.spec)
    print(path.read_text())
    return 0


def _cmd_compare(args: argparse.Namespace) -> int:
    from tabulate import tabulate

    from harness.leaderboard.runs import compare_runs
    from harness.stats import Bootstrap

    table = compare_runs(args.run_dirs, Bootstrap(args.bootstrap, args.ci, args.seed))
    shown = table.map(lambda v: f"{v:.3f}" if isinstance(v, float) else v) if not table.empty else table
    text = tabulate(shown, headers="keys", tablefmt="github", showindex=False) if not table.empty else "no detector in common"
    note = ("Differences are run b - run a; paired (same images, same bootstrap weights) where the runs share "
            "images, else from independent bootstraps. p_auc: DeLong (paired) or bootstrap; p_*_holm: Holm-adjusted "
            "over this table.")
    print(text + "\n\n" + note)
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        table.to_csv(args.out.with_suffix(".csv"), index=False)
        args.out.with_suffix(".md").write_text(f"# exifbench compare\n\n{text}\n\n{note}\n")
    return 0


def _cmd_protocol(args: argparse.Namespace) -> int:
    from harness.protocol import load_protocol, run_protocol

    result = run_protocol(load_protocol(args.config), args.out, address=args.address, quiet=args.quiet)
    print(result.summary())
    print(f"matrices: {Path(args.out) / 'matrix.md'} (also matrix.csv, summary.csv, matrix.html, heatmap-*.png)")
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from harness.demo import run_demo

    run_demo(args.out, protocol=args.protocol, address=args.address, quiet=args.quiet)
    return 0


def _cmd_data_fetch(args: argparse.Namespace) -> int:
    if args.name != "zoo":
        from harness.data.catalogue import load_catalogue

        entry = load_catalogue()[args.name]
        print(f"{entry.name} cannot be downloaded by exifbench; how to obtain it:\n  {entry.obtain}")
        return 2
    from harness.data.zoo import build_zoo

    zoo = build_zoo(args.protocol)
    print(f"zoo ({args.protocol}): {zoo.manifest}")
    for key, value in zoo.counts.items():
        print(f"  {key}: {value}")
    return 0


def _check_entry(args: argparse.Namespace):
    """The catalogue entry NAME, or one for a folder with no entry (``--layout``), with the
    ``--option`` and ``--checksums`` given on top of its layout options."""
    from dataclasses import replace

    from harness import plugins
    from harness.api import ConfigError
    from harness.data.catalogue import adhoc_entry, load_catalogue
    from harness.data.check import parse_options
    from harness.data.sources import root_name

    if (args.name is None) == (args.layout is None):
        raise ConfigError("data check takes a catalogue NAME (exifbench list datasets) or --layout LAYOUT "
                          "for a folder with no catalogue entry, one of the two")
    if args.layout is not None:
        plugins.layouts()[args.layout]  # an unknown layout is refused, with the closest name
    entry = load_catalogue()[args.name] if args.name else adhoc_entry(args.layout, root_name(args.root) or "data")
    options = {**entry.layout_options, **parse_options(args.option)}
    if args.checksums is not None:
        options["checksums"] = str(args.checksums.expanduser().resolve())
    return replace(entry, layout_options=options)


def _cmd_data_check(args: argparse.Namespace) -> int:
    from harness.data.check import check_dataset

    report = check_dataset(_check_entry(args), args.root, decode=not args.no_decode, workers=args.workers,
                           probe=args.probe)
    print(report.render())
    return report.exit_code(strict=args.strict)


def _cmd_data_simulate(args: argparse.Namespace) -> int:
    from harness.data.camera import simulate
    from harness.data.camera.render import REALISM_V1, Realism
    from harness.data.layouts import image_files

    scenes = image_files(args.scenes) if args.scenes else None
    out = simulate(args.cameras, args.photos, args.out, scenes=scenes, seed=args.seed, size=tuple(args.size),
                   address=args.address, progress=not args.quiet,
                   realism=REALISM_V1 if args.realism == "v1" else Realism())
    print(f"{args.photos} simulated photographs in {out / 'images'} (manifest: {out / 'manifest.csv'})")
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="exifbench", description=__doc__)
    p.add_argument("-v", "--verbose", action="store_true", help="log what happens")
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("list", help="show what is registered")
    s.add_argument("what", choices=["detectors", "perturbations", "layouts", "datasets", "trainers"])
    s.set_defaults(func=_cmd_list)

    def ray_opts(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("--address", default=None, help="Ray cluster to join (default: RAY_ADDRESS or a local Ray)")

    s = sub.add_parser("sweep", help="run every dataset x detector x perturbation cell")
    s.add_argument("config", type=Path)
    s.add_argument("--out", type=Path, required=True)
    s.add_argument("--quiet", action="store_true", help="no progress display")
    s.add_argument("--no-cache", action="store_true", help="neither read nor write the score cache")
    s.add_argument("--retry-errors", action="store_true", help="recompute cells that failed before")
    s.add_argument("--apply-orientation", action="store_true", help="rotate images by their EXIF orientation")
    ray_opts(s)
    s.set_defaults(func=_cmd_sweep)

    s = sub.add_parser("score", help="score images (files, folders, globs, archives): one row per image and detector")
    s.add_argument("paths", nargs="+", metavar="PATH",
                   help="image files, folders (searched recursively), globs, archives (.zip, .tar, .tar.gz) or "
                        "ARCHIVE::MEMBER")
    s.add_argument("--detector", action="append", default=[], metavar="NAME", help="a detector (repeatable)")
    s.add_argument("--param", action="append", default=[], metavar="KEY=VALUE",
                   help="a detector parameter; with several detectors DETECTOR.KEY=VALUE (repeatable)")
    s.add_argument("--config", type=Path, default=None,
                   help="TOML with [[detectors]] tables (and optional [run], [perturbations]) as in a sweep config")
    s.add_argument("--perturb", action="append", default=[], metavar="SPEC",
                   help="score perturbed images, e.g. 'jpeg(quality=[90,70])' (repeatable; default: none)")
    s.add_argument("--out", type=Path, required=True, help="FILE.csv, FILE.jsonl or FILE.parquet")
    s.add_argument("--quiet", action="store_true", help="no progress display")
    s.add_argument("--retry-errors", action="store_true", help="recompute cells that failed before")
    s.add_argument("--apply-orientation", action="store_true", help="rotate images by their EXIF orientation")
    ray_opts(s)
    s.set_defaults(func=_cmd_score)

    s = sub.add_parser("train", help="run a training job (a trainable detector or a trainer)")
    s.add_argument("name")
    s.add_argument("--config", type=Path, required=True)
    s.add_argument("--out", type=Path, required=True)
    s.add_argument("--num-gpus", type=float, default=None, help="GPUs for the job (default: 1 if the cluster has any)")
    s.add_argument("--force", action="store_true", help="train even if OUT holds this job's checkpoint")
    ray_opts(s)
    s.set_defaults(func=_cmd_train)

    def bootstrap_opts(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("--bootstrap", type=int, default=1000, help="bootstrap replicates (0: no intervals)")
        sp.add_argument("--ci", type=float, default=0.95, help="interval level")
        sp.add_argument("--seed", type=int, default=0, help="seed of the bootstrap")

    s = sub.add_parser("leaderboard", help="render the leaderboard of a run folder, or of several runs merged")
    s.add_argument("run_dirs", type=Path, nargs="+", metavar="RUN_DIR")
    s.add_argument("--spec", type=Path, default=None, help="leaderboard spec (default: the packaged default.toml)")
    s.add_argument("--out", type=Path, default=None, help="with several runs: the folder of the merged run")
    bootstrap_opts(s)
    s.set_defaults(func=_cmd_leaderboard)

    s = sub.add_parser("compare", help="runs side by side: differences with intervals, paired where images are shared")
    s.add_argument("run_dirs", type=Path, nargs="+", metavar="RUN_DIR")
    s.add_argument("--out", type=Path, default=None, help="write OUT.md and OUT.csv")
    bootstrap_opts(s)
    s.set_defaults(func=_cmd_compare)

    s = sub.add_parser("protocol", help="cross-generator protocol: train on each (or all but one) generator, "
                                        "test on every generator; train x test matrices")
    s.add_argument("config", type=Path)
    s.add_argument("--out", type=Path, required=True)
    s.add_argument("--quiet", action="store_true", help="no progress display")
    ray_opts(s)
    s.set_defaults(func=_cmd_protocol)

    s = sub.add_parser("demo", help="the embedded default: train and sweep on the offline zoo")
    s.add_argument("--out", type=Path, default=Path("runs/demo"))
    s.add_argument("--protocol", choices=["harmonised", "matched", "as-is"], default="harmonised",
                   help="zoo protocol: matched (each generator's reals through its history), harmonised, as-is")
    s.add_argument("--quiet", action="store_true")
    ray_opts(s)
    s.set_defaults(func=_cmd_demo)

    data = sub.add_parser("data", help="datasets: fetch, check, simulate").add_subparsers(dest="data_command",
                                                                                         required=True)
    s = data.add_parser("fetch", help="download and build a dataset that exifbench can fetch (the zoo)")
    s.add_argument("name")
    s.add_argument("--protocol", choices=["harmonised", "matched", "as-is"], default="harmonised",
                   help="zoo protocol: matched (each generator's reals through its history), harmonised, as-is")
    s.set_defaults(func=_cmd_data_fetch)
    s = data.add_parser("check", help="compare a folder with its catalogue entry (or, with --layout, "
                                      "its layout alone) before any model runs")
    s.add_argument("name", nargs="?", default=None, help="catalogue entry (exifbench list datasets); or give --layout")
    s.add_argument("--root", type=Path, required=True,
                   help="the folder, archive, manifest, shard pattern or saved dataset to check")
    s.add_argument("--layout", default=None, help="check a folder with no catalogue entry against this layout alone")
    s.add_argument("--option", action="append", default=[], metavar="KEY=VALUE",
                   help="a layout option (repeatable; VALUE is read as TOML when it parses, e.g. "
                        "label_map={real=0,fake=1}, else as text)")
    s.add_argument("--checksums", type=Path, default=None,
                   help="a checksum file to verify (sha256sum/md5sum lines, or GenImage's checksums.csv)")
    s.add_argument("--no-decode", action="store_true", help="read headers only (fast; misses corrupt pixel data)")
    s.add_argument("--workers", type=int, default=min(8, os.cpu_count() or 1), help="processes that decode")
    s.add_argument("--probe", type=int, default=200, metavar="N",  # harness.data.check.PROBE_PER_CLASS
                   help="images per class and generator the shortcut probe reads (0: no probe)")
    s.add_argument("--strict", action="store_true", help="exit non-zero on warnings too (format bias, imbalance)")
    s.set_defaults(func=_cmd_data_check)
    s = data.add_parser("simulate", help="simulated camera photographs with EXIF (a real-only folder)")
    s.add_argument("--cameras", type=int, required=True, help="number of camera models")
    s.add_argument("--photos", type=int, required=True, help="number of photographs")
    s.add_argument("--out", type=Path, required=True)
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--scenes", type=Path, default=None, help="folder of scene photos (default: built-in samples)")
    s.add_argument("--size", type=int, nargs=2, default=(512, 384), metavar=("W", "H"))
    s.add_argument("--realism", choices=("full", "v1"), default="full",
                   help="v1: the first simulator (darktable's noise profiles as they are, no hand shake, neutral "
                        "auto white balance)")
    s.add_argument("--quiet", action="store_true")
    ray_opts(s)
    s.set_defaults(func=_cmd_data_simulate)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(message)s")
    func: Callable[[argparse.Namespace], int] = args.func
    try:
        return func(args)
    except ExifbenchError as exc:
        print(f"exifbench: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\nexifbench: interrupted; finished cells are kept in the cache, rerun to resume", file=sys.stderr)
        return 130
    except OSError as exc:  # a fault of the machine (disk full, folder not writable): no traceback
        from harness.files import is_storage_fault, storage_error

        if not is_storage_fault(exc):
            raise
        print(f"exifbench: error: {storage_error(exc)} (finished cells are kept in the cache)", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
