"""Several Triton servers behind one ``remove_background``: the least-loaded server that is up takes
each request; a server that does not answer (:class:`ServerUnavailable`) is taken out and the request
goes to another at once; a server taken out is let back in once it answers ready again. Only with every
server down does a request wait (backoff) and finally fail with "inference server unavailable". A
request the server refused (:class:`RequestError`) or failed itself (:class:`ServerError`) is reported
at once: never retried, and its server stays in.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from client.matting_client import MattingClient, ServerUnavailable
from matting.contract import DEFAULT_TRITON_URLS
from matting.options import OutputOptions


def server_urls(url: str | Sequence[str] | None, protocol: str = "grpc") -> list[str]:
    """The servers named by ``url``: one address, a comma-separated list or a list of either; the
    protocol's default address when none; duplicates dropped, order kept."""
    given = [url] if url is None or isinstance(url, str) else list(url)
    urls = [part.strip() for item in given for part in (item or "").split(",") if part.strip()]
    return list(dict.fromkeys(urls)) or [DEFAULT_TRITON_URLS[protocol]]


@dataclass
class _Server:
    url: str
    in_flight: int = 0
    errors: int = 0
    down_reason: str | None = None
    probe_at: float = 0.0  # when a server that is down may next be asked whether it is ready


class ServerPool:
    """The servers of one batch, shared by its workers (thread-safe).

    :meth:`acquire` gives the server that is up with the fewest requests in flight, ties taken in turn;
    :meth:`release` with an error takes that server out; it is let back in when ``is_ready(url)`` answers
    True, asked at most every ``cooldown_s`` (or at once with ``readmit(force=True)``). ``gave_up`` records
    that a file already waited through the retries with every server down, so later files fail fast.
    """

    def __init__(self, urls: Sequence[str], is_ready: Callable[[str], bool], cooldown_s: float = 5.0,
                 clock: Callable[[], float] = time.monotonic):
        if not urls:
            raise ValueError("a server pool needs at least one server")
        self._servers = [_Server(url) for url in urls]
        self._is_ready, self._cooldown_s, self._clock = is_ready, cooldown_s, clock
        self._turn = 0
        self._lock = threading.Lock()
        self.gave_up = False

    def __len__(self) -> int:
        return len(self._servers)

    def acquire(self) -> str | None:
        """The least-loaded server that is up, counted as one more request in flight; None when all are down."""
        self.readmit()
        with self._lock:
            count = len(self._servers)
            in_turn = [self._servers[(self._turn + offset) % count] for offset in range(count)]
            up = [server for server in in_turn if server.down_reason is None]
            if not up:
                return None
            chosen = min(up, key=lambda server: server.in_flight)  # the first of the least loaded, in turn
            self._turn = (self._servers.index(chosen) + 1) % count
            chosen.in_flight += 1
            return chosen.url

    def release(self, url: str, error: str | None = None) -> None:
        """The request sent to ``url`` is over; ``error``: it failed that way, so take the server out."""
        with self._lock:
            server = self._server(url)
            server.in_flight -= 1
            if error is None:
                self.gave_up = False
                return
            server.errors += 1
            if server.down_reason is None:
                server.down_reason = error
                server.probe_at = self._clock() + self._cooldown_s

    def readmit(self, force: bool = False) -> bool:
        """Ask the servers that are down (those whose cool-down is over, or all with ``force``) whether
        they are ready, and let back in those that are. True when any server is up afterwards."""
        now = self._clock()
        with self._lock:
            due = [server for server in self._servers if server.down_reason and (force or server.probe_at <= now)]
            for server in due:  # claimed: other workers do not ask the same server meanwhile
                server.probe_at = now + self._cooldown_s
        back = [server for server in due if self._is_ready(server.url)]
        with self._lock:
            for server in back:
                server.down_reason = None
            return any(server.down_reason is None for server in self._servers)

    def down_summary(self) -> str:
        with self._lock:
            down = [server for server in self._servers if server.down_reason]
            if len(self._servers) == 1:
                return down[0].down_reason if down else "no server"
            return "; ".join(f"{server.url}: {server.down_reason}" for server in down)

    def summary(self) -> dict[str, dict]:
        with self._lock:
            return {server.url: {"errors": server.errors, "down": server.down_reason} for server in self._servers}

    def _server(self, url: str) -> _Server:
        return next(server for server in self._servers if server.url == url)


def probe_ready(protocol: str) -> Callable[[str], bool]:
    def is_ready(url: str) -> bool:
        with MattingClient(url, protocol) as client:
            return client.is_ready()

    return is_ready


class PooledClient:
    """``remove_background`` over a :class:`ServerPool`, thread-safe: each worker thread keeps its own
    client per server. ``retries`` rounds of backoff (``backoff_s`` doubling) when every server is down."""

    def __init__(self, urls: Sequence[str], protocol: str = "grpc", retries: int = 3, backoff_s: float = 0.5,
                 cooldown_s: float = 5.0):
        self.pool = ServerPool(urls, probe_ready(protocol), cooldown_s)
        self.protocol, self.retries, self.backoff_s = protocol, retries, backoff_s
        self._local = threading.local()

    def _client(self, url: str) -> MattingClient:
        clients = self._local.__dict__.setdefault("clients", {})
        if url not in clients:
            clients[url] = MattingClient(url, self.protocol)
        return clients[url]

    def _forget(self, url: str) -> None:
        """A fresh connection next time: a broken channel may sit in reconnect backoff."""
        client = self._local.__dict__.get("clients", {}).pop(url, None)
        if client is not None:
            client.close()

    def remove_background(self, data: bytes, options: OutputOptions, background: bytes | None = None) -> tuple[bytes, str]:
        """The encoded result and the server that made it. A RequestError or ServerError is raised at
        once, its server kept in; ServerUnavailable after the retries with every server down."""
        pool = self.pool
        rounds = failures = 0
        while True:
            url = pool.acquire()
            if url is None:
                if rounds >= self.retries or failures > (self.retries + 1) * len(pool):
                    pool.gave_up = True
                    raise ServerUnavailable(f"inference server unavailable after {rounds + 1} attempts: {pool.down_summary()}")
                if not pool.gave_up:
                    time.sleep(self.backoff_s * 2**rounds)
                rounds += 1
                if not pool.readmit(force=True) and pool.gave_up:
                    raise ServerUnavailable(f"inference server unavailable: {pool.down_summary()}")
                continue
            try:
                result = self._client(url).remove_background(data, options, background, with_alpha=False).data
            except ServerUnavailable as exc:
                pool.release(url, str(exc))
                self._forget(url)
                failures += 1
                continue
            except BaseException:  # RequestError, ServerError: this request's answer, not the server's state
                pool.release(url)
                raise
            pool.release(url)
            return result, url
