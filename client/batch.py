"""Batch folder client: every image under a folder through the Triton ensemble.

    python -m client.batch IN_DIR [OUT_DIR] [--recursive] [--concurrency 4] [--alpha-only | --bg-color C]

Keeps several requests in flight (reading and writing overlap with inference), mirrors sub-folders,
writes every output atomically, skips outputs that already exist and are valid (re-run to resume),
never stops on a bad file, retries with backoff when the server is unreachable and then reports the
rest as failed. Writes ``report.json`` beside the outputs; exits 1 when any file failed.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path

from PIL import Image
from tqdm import tqdm

from client.matting_client import DEFAULT_URLS, MattingClient, MattingError
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


@dataclass
class FileOutcome:
    file: str
    output: str | None
    status: str  # "ok" | "skipped" (valid output already there) | "failed"
    error: str | None = None
    ms: float | None = None


@dataclass
class BatchReport:
    input_dir: str
    output_dir: str
    outcomes: list[FileOutcome] = field(default_factory=list)
    elapsed_s: float = 0.0

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
        ]

    def to_json(self) -> str:
        summary = {"total": len(self.outcomes), **{key: self.counts[key] for key in ("ok", "skipped", "failed")},
                   "average_ms": self.average_ms, "elapsed_s": self.elapsed_s}
        return json.dumps({"input_dir": self.input_dir, "output_dir": self.output_dir, "summary": summary,
                           "files": [asdict(outcome) for outcome in self.outcomes]}, indent=2, ensure_ascii=False)


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


class _ServerState:
    """Shared between workers: once retries are exhausted, the rest fail fast unless the server is back."""

    def __init__(self):
        self.down_reason: str | None = None
        self.lock = threading.Lock()


def _matte_with_retries(client: MattingClient, data: bytes, settings: BatchSettings, state: _ServerState) -> bytes:
    options = settings.options
    attempt = 0
    while True:
        if state.down_reason and not client.is_ready():
            raise MattingError(f"inference server unavailable: {state.down_reason}")
        try:
            return client.remove_background(data, options.kind, options.format, options.bg_color_hex, with_alpha=False,
                                            foreground=options.foreground).data
        except MattingError as exc:
            if exc.bad_input:
                raise
            if attempt >= settings.retries:
                with state.lock:
                    state.down_reason = state.down_reason or str(exc)
                raise MattingError(f"inference server unavailable after {attempt + 1} attempts: {exc}") from exc
        time.sleep(settings.backoff_s * 2**attempt)
        attempt += 1


def run_batch(
    input_dir: Path,
    output_dir: Path,
    url: str | None = None,
    protocol: str = "grpc",
    settings: BatchSettings = BatchSettings(),
    recursive: bool = False,
    progress: bool = True,
    on_outcome: Callable[[FileOutcome, int, int], None] | None = None,
    confine: bool = False,
) -> BatchReport:
    """Process every image under ``input_dir`` into ``output_dir``; ``on_outcome(outcome, done, total)`` per file.

    ``confine``: see :func:`find_images`.
    """
    input_dir, output_dir = Path(input_dir), Path(output_dir)
    if not input_dir.is_dir():
        raise NotADirectoryError(f"input folder {input_dir} does not exist or is not a folder")
    sources = find_images(input_dir, recursive, exclude=output_dir, confine=confine)
    targets = output_paths(sources, input_dir, output_dir, settings.options.format)
    report = BatchReport(str(input_dir), str(output_dir))
    state, local = _ServerState(), threading.local()

    def process(source: Path) -> FileOutcome:
        relative, target = str(source.relative_to(input_dir)), targets[source]
        if not settings.overwrite and target.exists() and is_valid_image(target):
            return FileOutcome(relative, str(target), "skipped")
        started = time.perf_counter()
        try:
            if not hasattr(local, "client"):
                local.client = MattingClient(url, protocol)
            result = _matte_with_retries(local.client, source.read_bytes(), settings, state)
            atomic_write_bytes(target, result)
        except (MattingError, OSError) as exc:
            return FileOutcome(relative, None, "failed", str(exc), (time.perf_counter() - started) * 1000)
        return FileOutcome(relative, str(target), "ok", None, (time.perf_counter() - started) * 1000)

    started = time.perf_counter()
    with tqdm(total=len(sources), unit="img", disable=not progress, desc="matting") as bar, \
            ThreadPoolExecutor(max(1, settings.concurrency)) as pool:
        futures = [pool.submit(process, source) for source in sources]
        for future in as_completed(futures):
            outcome = future.result()
            report.outcomes.append(outcome)
            bar.update()
            if on_outcome:
                on_outcome(outcome, len(report.outcomes), len(sources))
    report.elapsed_s = time.perf_counter() - started
    report.outcomes.sort(key=lambda outcome: outcome.file)
    atomic_write_bytes(output_dir / REPORT_NAME, report.to_json().encode())
    return report


def timestamped_output_dir(root: Path = Path("outputs")) -> Path:
    """``root/outputs_YYYYMMDDHHMMSS``, the original product's naming for a job's outputs."""
    return root / datetime.now().strftime("outputs_%Y%m%d%H%M%S")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m client.batch", description="Remove backgrounds of every image in a folder.")
    parser.add_argument("input_dir", type=Path)
    parser.add_argument("output_dir", type=Path, nargs="?", help="default: outputs/outputs_YYYYMMDDHHMMSS/")
    parser.add_argument("-r", "--recursive", action="store_true", help="include sub-folders (mirrored in the output)")
    parser.add_argument("-c", "--concurrency", type=int, default=DEFAULT_CONCURRENCY, help="requests in flight")
    parser.add_argument("--overwrite", action="store_true", help="redo outputs that already exist")
    parser.add_argument("--alpha-only", action="store_true", help="write grayscale mattes")
    parser.add_argument("--bg-color", help="composite on this colour instead of transparency")
    parser.add_argument("--format", choices=["png", "webp"], default="png")
    parser.add_argument("--decontaminate", action="store_true", help="estimate foreground colours (no background colour in soft edges)")
    parser.add_argument("--retries", type=int, default=BatchSettings.retries, help="per file, when the server is unreachable")
    parser.add_argument("--protocol", choices=["grpc", "http"], default="grpc")
    parser.add_argument("--url", help=f"server address (default {DEFAULT_URLS['grpc']} for gRPC)")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)

    kind = "alpha" if args.alpha_only else "composite" if args.bg_color else "rgba"
    try:
        options = OutputOptions.parse(kind, args.format, args.bg_color, "estimate" if args.decontaminate else None)
    except OptionsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    output_dir = args.output_dir or timestamped_output_dir()
    settings = BatchSettings(options, args.concurrency, args.overwrite, args.retries)
    try:
        report = run_batch(args.input_dir, output_dir, args.url, args.protocol, settings, args.recursive, not args.no_progress)
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
