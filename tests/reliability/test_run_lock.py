"""The run lock: visible only with its contents, a stale lock broken by one racer, another
host's lock never judged stale without --force."""

from __future__ import annotations

import multiprocessing
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from cnnzoo.errors import RunDirError
from cnnzoo.train.rundir import LockOwner, RunLock, read_lock


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def _race(folder: str, barrier, results, release) -> None:
    barrier.wait()
    try:
        RunLock(Path(folder)).acquire()
    except RunDirError as err:
        results.put(("refused", str(err)))
        return
    results.put(("held", os.getpid()))
    release.wait(30)  # hold it until every racer has tried


@pytest.mark.parametrize("stale", [True, False])
def test_racers_for_a_lock_one_wins(tmp_path: Path, stale: bool) -> None:
    """Six processes start taking the lock at the same moment, on a free folder or on one whose
    lock was left by a dead process: exactly one holds it, the others are told who does."""
    if stale:
        (tmp_path / "run.lock").write_text(LockOwner(_dead_pid(), socket.gethostname(), "").text())
    mp = multiprocessing.get_context("fork")
    barrier, results, release = mp.Barrier(6), mp.Queue(), mp.Event()
    racers = [
        mp.Process(target=_race, args=(str(tmp_path), barrier, results, release)) for _ in range(6)
    ]
    for racer in racers:
        racer.start()
    outcomes = [results.get(timeout=60) for _ in racers]
    holders = [value for kind, value in outcomes if kind == "held"]
    assert len(holders) == 1, outcomes
    assert read_lock(tmp_path / "run.lock").pid == holders[0]
    for kind, message in outcomes:
        if kind == "refused":
            assert f"is in use by another run (process {holders[0]})" in message
    release.set()
    for racer in racers:
        racer.join(30)
    assert not [p.name for p in tmp_path.iterdir() if p.name.startswith(".run.lock")]


def test_the_lock_is_never_seen_without_its_contents(tmp_path: Path) -> None:
    """A reader polling the lock while another process takes and releases it 100 times sees
    either no lock or a whole one (the O_EXCL create, then write, left an empty file)."""
    taker = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys; from pathlib import Path; from cnnzoo.train.rundir import RunLock\n"
            "for _ in range(100):\n"
            "    lock = RunLock(Path(sys.argv[1])); lock.acquire(); lock.release()\n",
            str(tmp_path),
        ]
    )
    seen = 0
    while taker.poll() is None:
        try:
            text = (tmp_path / "run.lock").read_text()
        except FileNotFoundError:
            continue
        seen += 1
        pid, host, started, end = text.split("\n")
        assert int(pid) == taker.pid and host == socket.gethostname() and started and not end
    assert taker.returncode == 0
    assert seen > 0  # the reader did look at locks (else the test proves nothing)


def test_a_lock_from_another_host_is_kept_unless_forced(tmp_path: Path) -> None:
    """On shared storage a live run on another machine has a pid this host cannot check."""
    other = LockOwner(_dead_pid(), "gpu-node-7", "2026-12-01T10:00:00+0000")
    (tmp_path / "run.lock").write_text(other.text())
    with pytest.raises(RunDirError) as info:
        RunLock(tmp_path).acquire()
    assert str(info.value) == (
        f"{tmp_path} is locked by process {other.pid} on host gpu-node-7 (started "
        "2026-12-01T10:00:00+0000), which cannot be checked from here; wait for it to finish, "
        "or pass --force if you know it is no longer running"
    )
    assert read_lock(tmp_path / "run.lock") == other  # untouched
    lock = RunLock(tmp_path)
    lock.acquire(force=True)
    assert read_lock(tmp_path / "run.lock").pid == os.getpid()
    lock.release()


def test_a_lock_of_the_old_format_is_read(tmp_path: Path) -> None:
    """cnnzoo 0.1 wrote only the pid: it is read as a lock of this host."""
    (tmp_path / "run.lock").write_text(str(os.getpid()))
    assert read_lock(tmp_path / "run.lock") == LockOwner(os.getpid(), socket.gethostname(), "")
    (tmp_path / "run.lock").write_text("garbage")
    with pytest.raises(RunDirError, match="is not a cnnzoo lock"):
        RunLock(tmp_path).acquire()
