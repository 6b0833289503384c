"""Child processes that stop with their launcher, readiness probes, and the one run loop both
launchers share (Ctrl-C or SIGTERM stops everything cleanly; a child that dies is reported)."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from pathlib import Path

from matting.contract import DEFAULT_HOST


class ServiceStartError(RuntimeError):
    """A service did not come up; the message says which and where its log is."""


def stop_with_parent() -> None:
    """In the child before exec: ask Linux to SIGTERM it if the launcher dies, even by SIGKILL."""
    import ctypes

    PR_SET_PDEATHSIG = 1
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def http_ok(url: str, timeout_s: float = 2.0) -> bool:
    """True when ``url`` answers 200; False when it answers otherwise or not at all."""
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


def free_ports(count: int, host: str = DEFAULT_HOST) -> list[int]:
    """``count`` different ports nothing listens on now: all are held while they are chosen, so the
    system cannot hand out the same one twice."""
    with contextlib.ExitStack() as stack:
        probes = [stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) for _ in range(count)]
        for probe in probes:
            probe.bind((host, 0))
        return [probe.getsockname()[1] for probe in probes]


def free_port(host: str = DEFAULT_HOST) -> int:
    return free_ports(1, host)[0]


def wait_http_ok(url: str, process: subprocess.Popen, name: str, log: Path, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise ServiceStartError(f"{name} exited with code {process.returncode} while starting; see {log}")
        if http_ok(url):
            return
        time.sleep(0.3)
    raise ServiceStartError(f"{name} did not answer {url} within {timeout_s:.0f} s; see {log}")


def start_service(name: str, command: list[str], health_url: str, log_path: Path, cwd: Path,
                  env: Mapping[str, str] | None = None) -> subprocess.Popen:
    """Start a child service (stopped with us, even on SIGKILL) and wait until ``health_url`` answers 200."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "wb") as log:
        process = subprocess.Popen(command, cwd=cwd, stdout=log, stderr=subprocess.STDOUT,
                                   env={**os.environ, **(env or {})}, preexec_fn=stop_with_parent)
    wait_http_ok(health_url, process, name, log_path)
    return process


def _raise_interrupt(signum, frame):
    raise KeyboardInterrupt


def run_until_stopped(start: Callable[[], Mapping[str, subprocess.Popen]], stop: Callable[[], None],
                      start_errors: tuple[type[Exception], ...], logs: str, stopping: str = "stopping …") -> int:
    """Start the children, then wait: 0 after Ctrl-C or SIGTERM (printing ``stopping``), 1 when starting
    failed or a child died.

    ``stop`` always runs, with further signals ignored (a terminal or `timeout` signals the whole
    group, and a second Ctrl-C must not abort the clean-up half-way).
    """
    signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        children = start()
        while all(process.poll() is None for process in children.values()):
            time.sleep(0.5)
        stopped = ", ".join(f"{name} (exit code {process.returncode})" for name, process in children.items()
                            if process.poll() is not None)
        print(f"error: {stopped} stopped unexpectedly; stopping the rest (logs in {logs})", file=sys.stderr)
        return 1
    except start_errors as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(stopping, flush=True)
        return 0
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        stop()
