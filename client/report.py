"""What a batch did: one outcome per file, the summary printed at the end and ``report.json``."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import asdict, dataclass, field

from matting.contract import IMAGE_SUFFIXES

REPORT_NAME = "report.json"


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
    #: url → {"handled": files written from its results, "errors": requests it did not answer, "down": why it is out, or None}
    servers: dict[str, dict] = field(default_factory=dict)
    #: Files of the input folder that were not sent because their type is not one the service reads
    #: (e.g. .heic, .svg), relative to the input folder: listed, so nothing is left out silently.
    unsupported: list[str] = field(default_factory=list)

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
        ] + ([self.servers_line()] if len(self.servers) > 1 else []) + ([self.unsupported_line()] if self.unsupported else [])

    def unsupported_line(self) -> str:
        return (f"Unsupported: {len(self.unsupported)} files not sent (only {' '.join(IMAGE_SUFFIXES)} are read), "
                f"listed in {REPORT_NAME}")

    def servers_line(self) -> str:
        parts = [f"{url} {server['handled']}" + (" (down)" if server["down"] else "") for url, server in self.servers.items()]
        return "Servers: " + ", ".join(parts)

    def to_json(self) -> str:
        summary = {"total": len(self.outcomes), **{key: self.counts[key] for key in ("ok", "skipped", "failed")},
                   "unsupported": len(self.unsupported), "average_ms": self.average_ms, "elapsed_s": self.elapsed_s,
                   "per_server": {url: server["handled"] for url, server in self.servers.items()}}
        return json.dumps({"input_dir": self.input_dir, "output_dir": self.output_dir, "summary": summary,
                           "servers": self.servers, "files": [asdict(outcome) for outcome in self.outcomes],
                           "unsupported": self.unsupported},
                          indent=2, ensure_ascii=False)
