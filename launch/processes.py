"""Child processes and the one run loop both launchers share: every child runs in its own process group
and is stopped as a group (nothing it started outlives it), a child that dies is restarted with backoff
while the others keep serving, and Ctrl-C or SIGTERM stops everything within seconds."""

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
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import psutil

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


def http_answers(url: str, timeout_s: float = 2.0) -> bool:
    """True when ``url`` gives any HTTP answer: the REST API's /healthz answers 503 while Triton is down,
    and it is serving all the same."""
    try:
        with urllib.request.urlopen(url, timeout=timeout_s):
            return True
    except urllib.error.HTTPError:
        return True
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


def group_members(group: int) -> list[psutil.Process]:
    """The live processes of process group ``group`` (zombies hold nothing and are left out)."""
    members = []
    for process in psutil.process_iter():
        with contextlib.suppress(psutil.Error, OSError):
            if os.getpgid(process.pid) == group and process.status() != psutil.STATUS_ZOMBIE:
                members.append(process)
    return members


def _wait_gone(processes: list[psutil.Process], timeout_s: float) -> list[psutil.Process]:
    """Those of ``processes`` still running (not zombies) after up to ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while True:
        alive = []
        for process in processes:
            with contextlib.suppress(psutil.Error):
                if process.is_running() and process.status() != psutil.STATUS_ZOMBIE:
                    alive.append(process)
        if not alive or time.monotonic() >= deadline:
            return alive
        time.sleep(0.1)


#: What is left of a group once its leader stopped serves no one (the issue saw Triton's python stubs
#: outlive it, ignoring SIGTERM): a short grace, then SIGKILL.
LEFTOVER_GRACE_S = 3.0


def stop_group(process: subprocess.Popen, grace_s: float = 10.0) -> None:
    """Stop a child that leads its own process group, then whatever is left of the group (a server's
    workers): SIGTERM, and SIGKILL if the child still runs ``grace_s`` later (the rest: LEFTOVER_GRACE_S).
    Works as well when the child has already died: then only the rest of its group is stopped."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(grace_s)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    leftovers = group_members(process.pid)
    for member in leftovers:
        with contextlib.suppress(psutil.Error):
            member.terminate()
    for member in _wait_gone(leftovers, LEFTOVER_GRACE_S):
        with contextlib.suppress(psutil.Error):
            member.kill()
    _wait_gone(leftovers, LEFTOVER_GRACE_S)


def wait_answering(url: str, process: subprocess.Popen, name: str, log: Path, timeout_s: float = 60.0) -> None:
    """Return once ``url`` answers; raise ServiceStartError if ``process`` exits or ``timeout_s`` passes first."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise ServiceStartError(f"{name} exited with code {process.returncode} while starting; see {log}")
        if http_answers(url):
            return
        time.sleep(0.3)
    raise ServiceStartError(f"{name} did not answer {url} within {timeout_s:.0f} s; see {log}")


def start_service(name: str, command: list[str], health_url: str, log_path: Path, cwd: Path,
                  env: Mapping[str, str] | None = None) -> subprocess.Popen:
    """Start a child service in its own process group (stopped with us, even on SIGKILL) and wait until
    ``health_url`` answers; if it does not, it is stopped again."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "wb") as log:
        process = subprocess.Popen(command, cwd=cwd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                                   env={**os.environ, **(env or {})}, preexec_fn=stop_with_parent)
    try:
        wait_answering(health_url, process, name, log_path)
    except BaseException:
        stop_group(process)
        raise
    return process


class Supervised(Protocol):
    """What the run loop keeps running: ``start`` returns once it serves, ``stop`` stops it and what it left
    behind (also after it died); ``process`` is the child that runs it."""

    name: str
    process: subprocess.Popen | None

    def start(self) -> object: ...

    def stop(self) -> None: ...


@dataclass
class ChildService:
    """A service run as ``command``, serving once ``health_url`` answers."""

    name: str
    command: list[str]
    health_url: str
    log_path: Path
    cwd: Path
    env: Mapping[str, str] = field(default_factory=dict)
    process: subprocess.Popen | None = None

    def start(self) -> ChildService:
        self.process = start_service(self.name, self.command, self.health_url, self.log_path, self.cwd, self.env)
        return self

    def stop(self) -> None:
        if self.process is not None:
            stop_group(self.process)


@dataclass
class RestartBackoff:
    """Seconds to wait before restarting a service that stopped: 1, doubling up to 30 while it keeps
    stopping, and 1 again once it had served ``stable_s`` before it stopped."""

    first_s: float = 1.0
    longest_s: float = 30.0
    stable_s: float = 60.0
    next_s: float = 1.0

    def delay(self, served_s: float) -> float:
        if served_s >= self.stable_s:
            self.next_s = self.first_s
        delay, self.next_s = self.next_s, min(self.next_s * 2, self.longest_s)
        return delay


def _raise_interrupt(signum, frame):
    raise KeyboardInterrupt


def _keep_running(services: Sequence[Supervised], start_errors: tuple[type[Exception], ...], logs: str) -> None:
    """Restart every service that stops, after its backoff; the others keep serving meanwhile."""
    backoff = {service.name: RestartBackoff() for service in services}
    started = {service.name: time.monotonic() for service in services}
    due: dict[str, float] = {}

    def restart_later(service: Supervised, why: str) -> None:
        delay = backoff[service.name].delay(time.monotonic() - started[service.name])
        print(f"error: {service.name} {why}; restarting it in {delay:g} s (logs in {logs})", file=sys.stderr, flush=True)
        service.stop()
        due[service.name] = time.monotonic() + delay

    while True:
        for service in services:
            if service.name not in due and service.process.poll() is not None:
                restart_later(service, f"stopped unexpectedly (exit code {service.process.returncode})")
            elif service.name in due and time.monotonic() >= due[service.name]:
                del due[service.name]
                started[service.name] = time.monotonic()
                try:
                    service.start()
                except start_errors as exc:
                    restart_later(service, f"did not start again: {exc}")
                else:
                    print(f"{service.name} restarted and serving again", flush=True)
        time.sleep(0.5)


def run_until_stopped(services: Sequence[Supervised], start_errors: tuple[type[Exception], ...], logs: str,
                      announce: Callable[[], None], stopping: str = "stopping …") -> int:
    """Start the services in order and ``announce`` them, then keep them running: 0 after Ctrl-C or SIGTERM
    (printing ``stopping``), 1 when the first start failed.

    Every service is stopped at the end, the last started first, with further signals ignored (a
    terminal or `timeout` signals the whole group, and a second Ctrl-C must not abort the clean-up half-way).
    """
    signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        for service in services:
            service.start()
        announce()
        _keep_running(services, start_errors, logs)
    except start_errors as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(stopping, flush=True)
        return 0
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        for service in reversed(services):
            service.stop()
