"""What the benchmark tables report: latency percentiles and the peak memory of a process tree."""

from __future__ import annotations

import statistics
import threading

import numpy as np
import psutil


def percentiles(samples_ms: list[float]) -> tuple[float, float]:
    """(p50, p95) of latency samples."""
    return statistics.median(samples_ms), float(np.percentile(samples_ms, 95))


class PeakRss:
    """Samples the resident memory of a process and all its children until stopped."""

    def __init__(self, pid: int, interval_s: float = 0.05):
        self.process, self.interval_s, self.peak = psutil.Process(pid), interval_s, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.is_set():
            try:
                tree = [self.process, *self.process.children(recursive=True)]
                self.peak = max(self.peak, sum(member.memory_info().rss for member in tree))
            except psutil.Error:
                pass
            self._stop.wait(self.interval_s)

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._stop.set()
        self._thread.join()

    @property
    def peak_mb(self) -> float:
        return self.peak / 2**20
