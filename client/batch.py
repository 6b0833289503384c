"""Batch folder client: every image under a folder through the Triton ensemble, on one server or several.

    python -m client.batch IN_DIR [OUT_DIR] [--recursive] [--concurrency N] [--alpha-only | --bg-color C]
                           [--url HOST:PORT [--url HOST:PORT ...]]

Keeps several requests in flight (reading and writing overlap with inference), mirrors sub-folders,
writes every output atomically, skips outputs that already exist and are valid (re-run to resume),
never stops on a bad file. With several servers (``--url`` repeated or comma-separated) each request
goes to the server with the fewest requests in flight (ties taken in turn); a server that fails a
request (unreachable, unavailable) is taken out and the file is sent to another one at once; a server
taken out is let back in once it answers ready again, checked at most every ``cooldown_s``. Only when
every server is down does it retry with backoff, and then report the rest as failed ("inference server
unavailable"). Writes ``report.json`` beside the outputs (with the files each server handled); exits 1
when any file failed.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path

from PIL import Image
from tqdm import tqdm

from client.matting_client import DEFAULT_URLS, MattingClient, MattingError
from client.output_arguments import add_output_arguments, output_options
from cvunet.files import atomic_write_bytes
from cvunet.imageops import OptionsError, OutputOptions

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff", ".gif"}
REPORT_NAME = "report.json"
#: Measured on 2 cores: 4 requests in flight keep every pipeline step busy (see README, benchmarks).
DEFAULT_CONCURRENCY = 4


@dataclass(frozen=True)
class BatchSettings:
    options: OutputOptions = OutputOptions()
    concurrency: int = DEFAULT_CONCURRENCY
    overwrite: bool = False
    retries: int = 3
    backoff_s: float = 0.5
    #: a server taken out after a failure is asked whether it is ready again at most this often
    cooldown_s: float = 5.0


@dataclass
class FileOutcome:
    file: str
    output: str | None
    status: str  # "ok" | "skipped" (valid output already there) | "failed"
    error: str | None = None
    ms: float | None = None
    server: str | None = None  # the server that produced the output


@dataclass
class BatchReport:
    input_dir: str
    output_dir: str
    outcomes: list[FileOutcome] = field(default_factory=list)
    elapsed_s: float = 0.0
    #: url → {"handled": files written from its results, "errors": failed requests, "down": why it is out, or None}
    servers: dict[str, dict] = field(default_factory=dict)

    @property
    def counts(self) -> Counter:
        return Counter(outcome.status for outcome in self.outcomes)

    @property
    def average_ms(self) -> float | None:
        times = [outcome.ms for outcome in self.outcomes if outcome.status == "ok" and outcome.ms is not None]
        return sum(times) / len(times) if times else None

    def summary_lines(self) -> list[str]:
        counts, average = self.counts, self.average_ms
        rate = counts["ok"] / self.elapsed_s if self.elapsed_s else 0.0
        return [
            f"Total Images: {len(self.outcomes)}",
            f"Success: {counts['ok'] + counts['skipped']} ({counts['skipped']} already done)",
            f"Failed: {counts['failed']}",
            f"Average Time: {average:.0f} ms/image ({rate:.2f} images/s over {self.elapsed_s:.1f} s)" if average else "Average Time: -",
            f"Output Dir: {self.output_dir}",
        ] + ([self.servers_line()] if len(self.servers) > 1 else [])

    def servers_line(self) -> str:
        parts = [f"{url} {server['handled']}" + (" (down)" if server["down"] else "") for url, server in self.servers.items()]
        return "Servers: " + ", ".join(parts)

    def to_json(self) -> str:
        summary = {"total": len(self.outcomes), **{key: self.counts[key] for key in ("ok", "skipped", "failed")},
                   "average_ms": self.average_ms, "elapsed_s": self.elapsed_s,
                   "per_server": {url: server["handled"] for url, server in self.servers.items()}}
        return json.dumps({"input_dir": self.input_dir, "output_dir": self.output_dir, "summary": summary,
                           "servers": self.servers, "files": [asdict(outcome) for outcome in self.outcomes]},
                          indent=2, ensure_ascii=False)


def find_images(root: Path, recursive: bool = False, exclude: Path | None = None, confine: bool = False) -> list[Path]:
    """Image files under ``root`` by suffix (any case), sorted; hidden and temp files are ignored.

    ``confine`` skips files that resolve outside ``root`` (symlinks pointing elsewhere), for callers
    such as the dashboard that must not read beyond the folder they were given.
    """
    candidates = root.rglob("*") if recursive else root.iterdir()
    exclude = exclude.resolve() if exclude else None
    real_root = root.resolve()
    found = []
    for path in candidates:
        relative = path.relative_to(root)
        if any(part.startswith(".") for part in relative.parts) or not path.is_file():
            continue
        if exclude and path.resolve().is_relative_to(exclude):
            continue
        if confine and not path.resolve().is_relative_to(real_root):
            continue
        if path.suffix.lower() in IMAGE_SUFFIXES:
            found.append(path)
    return sorted(found)


def output_paths(sources: list[Path], input_dir: Path, output_dir: Path, format: str) -> dict[Path, Path]:
    """Mirror the input tree; 'a.jpg' → 'a.png', or 'a.jpg.png' when 'a.png' is an input beside it."""
    stems = Counter(source.relative_to(input_dir).with_suffix("") for source in sources)
    mapping = {}
    for source in sources:
        relative = source.relative_to(input_dir)
        name = relative.stem if stems[relative.with_suffix("")] == 1 else relative.name
        mapping[source] = output_dir / relative.parent / f"{name}.{format}"
    return mapping


def is_valid_image(path: Path) -> bool:
    try:
        with Image.open(path) as image:
            image.verify()
        return True
    except Exception:  # noqa: BLE001 - any failure means "redo it"
        return False


def server_urls(url: str | Sequence[str] | None, protocol: str = "grpc") -> list[str]:
    """The servers named by ``url``: one address, a comma-separated list or a list of either; the
    protocol's default address when none; duplicates dropped, order kept."""
    given = [url] if url is None or isinstance(url, str) else list(url)
    urls = [part.strip() for item in given for part in (item or "").split(",") if part.strip()]
    return list(dict.fromkeys(urls)) or [DEFAULT_URLS[protocol]]


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


def _probe_ready(protocol: str) -> Callable[[str], bool]:
    def is_ready(url: str) -> bool:
        client = MattingClient(url, protocol)
        try:
            return client.is_ready()
        finally:
            client.close()

    return is_ready


def _matte_on_pool(pool: ServerPool, client_for: Callable[[str], MattingClient], forget: Callable[[str], None],
                   data: bytes, settings: BatchSettings) -> tuple[bytes, str]:
    """The result and the server that made it. A failed request takes its server out and goes to another
    at once; only with every server out does the file wait (backoff) for one to come back, ``retries`` times."""
    options = settings.options
    rounds = failures = 0
    while True:
        url = pool.acquire()
        if url is None:
            if rounds >= settings.retries or failures > (settings.retries + 1) * len(pool):
                pool.gave_up = True
                raise MattingError(f"inference server unavailable after {rounds + 1} attempts: {pool.down_summary()}")
            if not pool.gave_up:
                time.sleep(settings.backoff_s * 2**rounds)
            rounds += 1
            if not pool.readmit(force=True) and pool.gave_up:
                raise MattingError(f"inference server unavailable: {pool.down_summary()}")
            continue
        try:
            result = client_for(url).remove_background(data, options.kind, options.format, options.bg_color_hex,
                                                       with_alpha=False, foreground=options.foreground,
                                                       refine=options.refine).data
        except MattingError as exc:
            if exc.bad_input:
                pool.release(url)
                raise
            pool.release(url, str(exc))
            forget(url)  # a fresh connection next time: a broken channel may sit in reconnect backoff
            failures += 1
            continue
        pool.release(url)
        return result, url


def run_batch(
    input_dir: Path,
    output_dir: Path,
    url: str | Sequence[str] | None = None,
    protocol: str = "grpc",
    settings: BatchSettings = BatchSettings(),
    recursive: bool = False,
    progress: bool = True,
    on_outcome: Callable[[FileOutcome, int, int], None] | None = None,
    confine: bool = False,
) -> BatchReport:
    """Process every image under ``input_dir`` into ``output_dir``; ``on_outcome(outcome, done, total)`` per file.

    ``url``: one server, or several (a list, or comma-separated) that the requests are spread across;
    ``settings.concurrency`` is the number of requests in flight over all of them. ``confine``: see
    :func:`find_images`.
    """
    input_dir, output_dir = Path(input_dir), Path(output_dir)
    if not input_dir.is_dir():
        raise NotADirectoryError(f"input folder {input_dir} does not exist or is not a folder")
    sources = find_images(input_dir, recursive, exclude=output_dir, confine=confine)
    targets = output_paths(sources, input_dir, output_dir, settings.options.format)
    report = BatchReport(str(input_dir), str(output_dir))
    servers = ServerPool(server_urls(url, protocol), _probe_ready(protocol), settings.cooldown_s)
    local = threading.local()

    def client_for(server: str) -> MattingClient:
        clients = local.__dict__.setdefault("clients", {})
        if server not in clients:
            clients[server] = MattingClient(server, protocol)
        return clients[server]

    def forget(server: str) -> None:
        client = local.__dict__.get("clients", {}).pop(server, None)
        if client is not None:
            client.close()

    def process(source: Path) -> FileOutcome:
        relative, target = str(source.relative_to(input_dir)), targets[source]
        if not settings.overwrite and target.exists() and is_valid_image(target):
            return FileOutcome(relative, str(target), "skipped")
        started = time.perf_counter()
        try:
            result, server = _matte_on_pool(servers, client_for, forget, source.read_bytes(), settings)
            atomic_write_bytes(target, result)
        except (MattingError, OSError) as exc:
            return FileOutcome(relative, None, "failed", str(exc), (time.perf_counter() - started) * 1000)
        return FileOutcome(relative, str(target), "ok", None, (time.perf_counter() - started) * 1000, server)

    started = time.perf_counter()
    with tqdm(total=len(sources), unit="img", disable=not progress, desc="matting") as bar, \
            ThreadPoolExecutor(max(1, settings.concurrency)) as workers:
        futures = [workers.submit(process, source) for source in sources]
        for future in as_completed(futures):
            outcome = future.result()
            report.outcomes.append(outcome)
            bar.update()
            if on_outcome:
                on_outcome(outcome, len(report.outcomes), len(sources))
    report.elapsed_s = time.perf_counter() - started
    report.outcomes.sort(key=lambda outcome: outcome.file)
    handled = Counter(outcome.server for outcome in report.outcomes if outcome.status == "ok")
    report.servers = {server: {"handled": handled[server], **state} for server, state in servers.summary().items()}
    atomic_write_bytes(output_dir / REPORT_NAME, report.to_json().encode())
    return report


def timestamped_output_dir(root: Path = Path("outputs")) -> Path:
    """``root/outputs_YYYYMMDDHHMMSS``, the original product's naming for a job's outputs."""
    return root / datetime.now().strftime("outputs_%Y%m%d%H%M%S")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m client.batch", description="Remove backgrounds of every image in a folder, on one Triton server or spread across several.",
        epilog="Several servers: --url host1:8001 --url host2:8001 (or --url host1:8001,host2:8001). Each request goes to the "
               "server with the fewest in flight; a failing server is taken out, its files go to the others, and it is "
               "let back in once it answers ready again. report.json says how many files each server handled.")
    parser.add_argument("input_dir", type=Path)
    parser.add_argument("output_dir", type=Path, nargs="?", help="default: outputs/outputs_YYYYMMDDHHMMSS/")
    parser.add_argument("-r", "--recursive", action="store_true", help="include sub-folders (mirrored in the output)")
    parser.add_argument("-c", "--concurrency", type=int,
                        help=f"requests in flight over all servers (default {DEFAULT_CONCURRENCY} per server)")
    parser.add_argument("--overwrite", action="store_true", help="redo outputs that already exist")
    add_output_arguments(parser)
    parser.add_argument("--retries", type=int, default=BatchSettings.retries,
                        help="per file, with backoff, when every server is unreachable")
    parser.add_argument("--protocol", choices=["grpc", "http"], default="grpc")
    parser.add_argument("--url", action="append",
                        help=f"server address; repeat it or separate with commas for several servers "
                             f"(default {DEFAULT_URLS['grpc']} for gRPC, {DEFAULT_URLS['http']} for HTTP)")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)

    try:
        options = output_options(args)
    except OptionsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    output_dir = args.output_dir or timestamped_output_dir()
    urls = server_urls(args.url, args.protocol)
    settings = BatchSettings(options, args.concurrency or DEFAULT_CONCURRENCY * len(urls), args.overwrite, args.retries)
    try:
        report = run_batch(args.input_dir, output_dir, urls, args.protocol, settings, args.recursive, not args.no_progress)
    except NotADirectoryError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print("\n".join(report.summary_lines() + [f"Report: {output_dir / REPORT_NAME}"]))
    for outcome in report.outcomes:
        if outcome.status == "failed":
            print(f"failed: {outcome.file}: {outcome.error}", file=sys.stderr)
    return 1 if report.counts["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
