"""Batch folder client: every image under a folder through the Triton ensemble, on one server or several.

    python -m client.batch IN_DIR [OUT_DIR] [-m u2net|u2netp] [--recursive] [--concurrency N] [--alpha-only | --bg-color C]
                           [--url HOST:PORT [--url HOST:PORT ...]]

Keeps several requests in flight (reading and writing overlap with inference), mirrors sub-folders,
writes every output atomically, skips outputs that already exist and are valid (re-run to resume),
never stops on a bad file: a file the server refuses (its image or the options) or fails is reported
at once, never retried, and its server stays in. With several servers (``--url`` repeated or
comma-separated) each request goes to the server with the fewest requests in flight (ties taken in
turn); a server that does not answer (unreachable, unavailable) is taken out and the file is sent to
another one at once; a server taken out is let back in once it answers ready again, checked at most
every ``cooldown_s``. Only when every server is down does it retry with backoff, and then report the
rest as failed ("inference server unavailable"). Writes ``report.json`` beside the outputs (with the
files each server handled, and the files not sent because their type is unsupported); exits 1 when
any file failed.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from client.arguments import add_output_arguments, add_server_arguments, background_image, output_options
from client.matting_client import MattingError
from client.pool import PooledClient, server_urls
from client.report import REPORT_NAME, BatchReport, FileOutcome
from matting.files import atomic_write_bytes, find_files, is_image_name, is_valid_image, output_paths, timestamped_output_dir
from matting.options import OptionsError, OutputOptions

#: Measured on 2 cores: 4 requests in flight keep every pipeline step busy (see README, benchmarks).
DEFAULT_CONCURRENCY = 4


@dataclass(frozen=True)
class BatchSettings:
    options: OutputOptions = OutputOptions()
    #: An encoded picture to composite every image onto (``options.kind`` composite).
    background: bytes | None = None
    concurrency: int = DEFAULT_CONCURRENCY
    overwrite: bool = False
    retries: int = 3
    backoff_s: float = 0.5
    #: a server taken out after a failure is asked whether it is ready again at most this often
    cooldown_s: float = 5.0
    #: Applied to each server result before it is written (the dashboard lays out its recipe there);
    #: whatever it raises fails that file only.
    finish: Callable[[bytes], bytes] | None = None
    #: The outputs' suffix, e.g. "jpg" when ``finish`` makes JPEGs; None: the options' format.
    suffix: str | None = None


class FinishError(Exception):
    """``BatchSettings.finish`` failed on one file; the message is that of what it raised."""


def _finished(result: bytes, finish: Callable[[bytes], bytes] | None) -> bytes:
    if finish is None:
        return result
    try:
        return finish(result)
    except Exception as exc:  # noqa: BLE001 - the caller's step may raise anything; it fails this file only
        raise FinishError(str(exc)) from exc


def process_file(matting: PooledClient, source: Path, relative: str, target: Path, settings: BatchSettings) -> FileOutcome:
    """One image of a batch into ``target`` (``relative`` names it in the report); skipped when a valid
    output is there already and ``settings.overwrite`` is off. Also how a dashboard retries one file."""
    if not settings.overwrite and target.exists() and is_valid_image(target):
        return FileOutcome(relative, str(target), "skipped")
    started = time.perf_counter()
    try:
        result, server = matting.remove_background(source.read_bytes(), settings.options, settings.background)
        atomic_write_bytes(target, _finished(result, settings.finish))
    except (MattingError, OSError, FinishError) as exc:
        return FileOutcome(relative, None, "failed", str(exc), (time.perf_counter() - started) * 1000)
    return FileOutcome(relative, str(target), "ok", None, (time.perf_counter() - started) * 1000, server)


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
    :func:`matting.files.find_files`.
    """
    input_dir, output_dir = Path(input_dir), Path(output_dir)
    if not input_dir.is_dir():
        raise NotADirectoryError(f"input folder {input_dir} does not exist or is not a folder")
    files = find_files(input_dir, recursive, exclude=output_dir, confine=confine)
    sources = [path for path in files if is_image_name(path)]
    targets = output_paths(sources, input_dir, output_dir, settings.suffix or settings.options.format)
    report = BatchReport(str(input_dir), str(output_dir),
                         unsupported=[str(path.relative_to(input_dir)) for path in files if not is_image_name(path)])
    matting = PooledClient(server_urls(url, protocol), protocol, settings.retries, settings.backoff_s, settings.cooldown_s)

    def process(source: Path) -> FileOutcome:
        return process_file(matting, source, str(source.relative_to(input_dir)), targets[source], settings)

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
    report.servers = {server: {"handled": handled[server], **state} for server, state in matting.pool.summary().items()}
    atomic_write_bytes(output_dir / REPORT_NAME, report.to_json().encode())
    return report


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
    add_server_arguments(parser, several=True)
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)

    try:
        options, background = output_options(args), background_image(args)
    except (OptionsError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    output_dir = args.output_dir or timestamped_output_dir()
    urls = server_urls(args.url, args.protocol)
    settings = BatchSettings(options, background, args.concurrency or DEFAULT_CONCURRENCY * len(urls), args.overwrite, args.retries)
    def print_failure(outcome: FileOutcome, done: int, total: int) -> None:
        if outcome.status == "failed":
            tqdm.write(f"failed: {outcome.file}: {outcome.error}", file=sys.stderr)

    try:
        report = run_batch(args.input_dir, output_dir, urls, args.protocol, settings, args.recursive, not args.no_progress,
                           on_outcome=print_failure)
    except NotADirectoryError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print("\n".join(report.summary_lines() + [f"Report: {output_dir / REPORT_NAME}"]))
    return 1 if report.counts["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
