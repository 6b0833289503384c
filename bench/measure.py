"""What the benchmark tables report: latency percentiles and the peak memory of a process tree."""

from __future__ import annotations

import re
import statistics
import threading
from collections import defaultdict

import numpy as np
import psutil


def percentiles(samples_ms: list[float]) -> tuple[float, float]:
    """(p50, p95) of latency samples."""
    return statistics.median(samples_ms), float(np.percentile(samples_ms, 95))


def role(process: psutil.Process) -> str:
    """What a serving process is: a Triton python stub by the model its command line names, else its name."""
    command = " ".join(process.cmdline())
    model = re.search(r"/([^/ ]+)/1/model\.py", command)
    return model.group(1) if model and "triton_python_backend_stub" in command else process.name()


def tree_memory(root: psutil.Process) -> dict[tuple[str, int], tuple[int, int]]:
    """(role, pid) → (RSS, PSS) in bytes of each process in ``root``'s tree; one that ends meanwhile is
    left out. RSS counts a shared page (libraries, Triton's shared-memory pool) in every process that maps
    it, so a tree's RSS sum overstates it; PSS splits each shared page among its sharers, so the tree's
    PSS sum is what it holds."""
    try:
        tree = [root, *root.children(recursive=True)]
    except psutil.Error:  # a process ended while the tree was listed
        return {}
    sizes = {}
    for process in tree:
        try:
            memory = process.memory_full_info()
        except psutil.Error:
            continue
        sizes[(role(process), process.pid)] = (memory.rss, memory.pss)
    return sizes


class PeakMemory:
    """Samples the memory of a process and all its children until stopped: the peak of their RSS sum
    and of their PSS sum, and each process's own peak PSS (:attr:`by_role` adds those up per role)."""

    def __init__(self, pid: int, interval_s: float = 0.05):
        self.process, self.interval_s, self.peak_rss, self.peak_pss = psutil.Process(pid), interval_s, 0, 0
        self.process_peaks: dict[tuple[str, int], int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.is_set():
            sizes = tree_memory(self.process)
            for key, (_, pss) in sizes.items():
                self.process_peaks[key] = max(self.process_peaks.get(key, 0), pss)
            self.peak_rss = max(self.peak_rss, sum(rss for rss, _ in sizes.values()))
            self.peak_pss = max(self.peak_pss, sum(pss for _, pss in sizes.values()))
            self._stop.wait(self.interval_s)

    @property
    def by_role(self) -> dict[str, tuple[int, float]]:
        """Role → (process count, sum of their peak PSS in MB), largest first."""
        sums: dict[str, list[float]] = defaultdict(lambda: [0, 0.0])
        for (name, _), peak in self.process_peaks.items():
            sums[name][0] += 1
            sums[name][1] += peak / 2**20
        return dict(sorted(((name, (int(count), mb)) for name, (count, mb) in sums.items()), key=lambda item: -item[1][1]))

    def __enter__(self) -> PeakMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._stop.set()
        self._thread.join()

    @property
    def rss_mb(self) -> float:
        return self.peak_rss / 2**20

    @property
    def pss_mb(self) -> float:
        return self.peak_pss / 2**20
