"""The launchers' process handling: the restart backoff, and stopping a child's whole process group."""

from __future__ import annotations

import os
import signal
import subprocess
import time

import psutil

from launch.processes import LEFTOVER_GRACE_S, RestartBackoff, group_members, stop_group


def test_restart_backoff_doubles_to_30_s_and_starts_over_after_a_stable_run():
    backoff = RestartBackoff()
    assert [backoff.delay(served_s=2) for _ in range(7)] == [1, 2, 4, 8, 16, 30, 30]
    assert backoff.delay(served_s=60) == 1
    assert backoff.delay(served_s=5) == 2


def gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def test_stop_group_ends_what_a_killed_child_left_behind_even_if_it_ignores_sigterm():
    """Like tritonserver killed with SIGKILL and a python stub that stays: the stub is stopped with the group."""
    child = subprocess.Popen(["bash", "-c", "(trap '' TERM; exec sleep 600) & echo $!; wait"], stdout=subprocess.PIPE,
                             text=True, start_new_session=True)
    worker = int(child.stdout.readline())
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    assert [process.pid for process in group_members(child.pid)] == [worker]
    started = time.monotonic()
    stop_group(child)
    assert gone(worker)
    assert time.monotonic() - started < LEFTOVER_GRACE_S + 2


def test_stop_group_stops_a_running_child_and_its_workers():
    child = subprocess.Popen(["bash", "-c", "sleep 600 & echo $!; wait"], stdout=subprocess.PIPE, text=True,
                             start_new_session=True)
    worker = int(child.stdout.readline())
    stop_group(child, grace_s=5)
    assert child.returncode is not None and gone(worker) and not group_members(child.pid)
