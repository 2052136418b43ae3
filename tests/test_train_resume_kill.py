"""A Ray worker killed in the middle of a training job: Ray runs the job's task again, the
trainer resumes from the ``state.pt`` it last saved, and the checkpoint written at the end is
the one an uninterrupted run writes, bit for bit (a deterministic CPU trainer: the
``exif-backbone`` pretext at a tiny size, one thread, a fixed seed).
"""
from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from harness.checkpoint import file_sha256, read_checkpoint, write_checkpoint
from harness.data.layouts import read_real_only
from harness.train import jobs
from harness.train.jobs import run_training
from tests.helpers import exif_photo

PARAMS = {"preset": "cpu-small", "steps": 60, "batch_pairs": 2, "n_crops": 2, "width": 4, "patch_size": 16,
          "save_every": 5, "log_every": 5}
SEED = 5


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    folder = tmp_path_factory.mktemp("resume_kill") / "photos"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(8):
        exif_photo(folder / f"p{i}.jpg", rng, ["Canon", "Nikon"][i % 2], [2.8, 4.0, 8.0][i % 3], 100 * (1 + i % 4))
    return read_real_only(folder)


def _ancestors(pid: int) -> set[int]:
    seen = set()
    while pid > 1 and pid not in seen:
        seen.add(pid)
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            break
        pid = int(stat.rsplit(")", 1)[1].split()[1])
    return seen


def _training_workers() -> list[int]:
    """This test session's Ray workers running a training task (their process title is
    ``ray::<task>``); never a process of another Ray on the machine."""
    task = getattr(jobs, "_fit_task", None)
    title = f"ray::{task.__name__}" if task is not None else "ray::job"
    me, found = os.getpid(), []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().split(b"\0")[0].decode(errors="replace")
        except OSError:
            continue
        if cmdline.strip() == title and me in _ancestors(int(entry.name)):
            found.append(int(entry.name))
    return found


def _saved_step(state: Path) -> int | None:
    try:
        return int(torch.load(state, map_location="cpu", weights_only=True)["step"])
    except Exception:  # noqa: BLE001 - not there yet, or replaced while read
        return None


class Killer(threading.Thread):
    """Kills the training worker once it has saved a state, then records every step that
    ``state.pt`` holds until the job ends (a job that started afresh would save a step
    below the one it was killed at)."""

    def __init__(self, out: Path):
        super().__init__(daemon=True)
        self.out, self.killed_at, self.killed_pid, self.steps = out, None, None, []
        self.done = threading.Event()

    def run(self) -> None:
        state, deadline = self.out / "state.pt", time.monotonic() + 600
        while self.killed_at is None and not self.done.is_set() and time.monotonic() < deadline:
            step = _saved_step(state) if state.is_file() else None
            workers = _training_workers() if step else []
            if step and len(workers) == 1 and not (self.out / "weights.pt").exists():
                os.kill(workers[0], signal.SIGKILL)
                self.killed_at, self.killed_pid = step, workers[0]
            time.sleep(0.01)
        while not self.done.is_set():
            step = _saved_step(state)
            if step is not None and (not self.steps or self.steps[-1] != step):
                self.steps.append(step)
            time.sleep(0.01)


@pytest.mark.ray
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="finds the worker's process in /proc")
def test_killed_training_worker_resumes_to_the_uninterrupted_checkpoint(photos, ray_session, tmp_path):
    straight = run_training("exif-backbone", PARAMS, photos, tmp_path / "straight", seed=SEED, num_gpus=0)

    killer = Killer(tmp_path / "killed")
    killer.start()
    try:
        resumed = run_training("exif-backbone", PARAMS, photos, tmp_path / "killed", seed=SEED, num_gpus=0)
    finally:
        killer.done.set()
        killer.join(timeout=30)
    assert killer.killed_at is not None, "the job ended before a worker could be killed"
    assert 0 < killer.killed_at < PARAMS["steps"]
    assert killer.killed_pid not in _training_workers()
    # the task ran again and went on from the saved step, never back to the start
    assert all(s >= killer.killed_at for s in killer.steps), (killer.killed_at, killer.steps)

    wa, ma = read_checkpoint(straight, "exif-backbone")
    wb, mb = read_checkpoint(resumed, "exif-backbone")
    assert wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)
    assert ma["weights_sha256"] == mb["weights_sha256"] == file_sha256(resumed / "weights.pt")
    assert (straight / "loss.csv").read_text() == (resumed / "loss.csv").read_text()
    assert ma["extra"]["job"] == mb["extra"]["job"]


def test_the_same_weights_make_the_same_checkpoint_file(tmp_path):
    """The weights file is a function of the weights alone (torch.save would otherwise name
    the archive inside it after the random temporary file it writes first)."""
    weights = {"a": torch.arange(6.0).reshape(2, 3), "b": torch.ones(4, dtype=torch.int64)}
    one = write_checkpoint(tmp_path / "one", "x", weights)
    two = write_checkpoint(tmp_path / "two", "x", weights)
    assert file_sha256(one / "weights.pt") == file_sha256(two / "weights.pt")


def test_two_jobs_into_one_checkpoint_folder_run_one_at_a_time(tmp_path):
    """The checkpoint folder's lock: a job that finds the folder locked waits; when the holder
    left exactly its checkpoint it does not train again, and otherwise it trains after it."""
    import threading

    from filelock import FileLock

    from harness.testing import synthetic_training_set
    from harness.train.local import fit_locally

    train = synthetic_training_set(tmp_path / "train", n=8)
    out = tmp_path / "ckpt"
    holder = FileLock(str(tmp_path / ".ckpt.lock"))

    def waiting_job(params, done):
        done.append(fit_locally("spectrum", params, train.samples, out))

    for params, trains_again in (({"n_bins": 16}, False), ({"n_bins": 8}, True)):
        holder.acquire()
        done: list = []
        job = threading.Thread(target=waiting_job, args=(params, done))
        job.start()
        time.sleep(0.5)
        assert job.is_alive() and not done  # waits for the lock
        # the holder writes the checkpoint of the first job while the other waits
        from harness.plugins import trainers
        from harness.train.local import record_job, training_set

        result = trainers()["spectrum"].create(n_bins=16).fit(training_set(train.samples), out, seed=0, device="cpu")
        record_job(result or out, "spectrum", {"n_bins": 16}, train.samples, 0, "cpu")
        written = (out / "weights.pt").stat().st_mtime_ns, (out / "manifest.json").read_text()
        time.sleep(0.05)
        holder.release()
        job.join(60)
        assert done == [str(out)]
        again = (out / "weights.pt").stat().st_mtime_ns, (out / "manifest.json").read_text()
        assert (again != written) == trains_again
        if trains_again:
            assert json.loads(again[1])["params"]["n_bins"] == 8


@pytest.mark.ray
def test_a_job_starts_once_the_jobs_it_reads_have_finished(photos, ray_session, tmp_path):
    """``run_training_jobs(after=...)``: the one-class job, listed first, reads the backbone
    that the second job makes; it runs after it. Jobs that wait for each other are refused."""
    from harness.train.jobs import TrainingJob, run_training_jobs

    backbone = TrainingJob("exif-backbone", {**PARAMS, "steps": 0}, tuple(photos), tmp_path / "bb")
    one_class = TrainingJob("exif-oc", {"width": 4, "patch_size": 16, "tiling": "center", "backbone": str(tmp_path / "bb"),
                                        "covariance": "diag", "n_components": 1}, tuple(photos), tmp_path / "oc")
    outcomes = run_training_jobs([one_class, backbone], after=[(1,), ()])
    assert [o.trained for o in outcomes] == [True, True]
    assert read_checkpoint(tmp_path / "oc", "exif-oc")[1]["detector"] == "exif-oc"
    again = run_training_jobs([one_class, backbone], after=[(1,), ()])
    assert [o.trained for o in again] == [False, False]
    loop = [TrainingJob("spectrum", {"n_bins": 8 * (k + 1)}, tuple(photos), tmp_path / f"s{k}") for k in range(2)]
    with pytest.raises(ValueError, match="wait for each other"):
        run_training_jobs(loop, after=[(1,), (0,)])
