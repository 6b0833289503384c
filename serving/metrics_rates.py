"""Rates and averages between successive readings of Triton's metrics, and the service's state, for the
dashboard's operator page.

Triton's counters only ever rise (requests, microseconds spent), so a chart of them says nothing about
now: what an operator wants is the change between two readings divided by the seconds between them
(requests per second) or by the requests in between (milliseconds per request). A counter that went
down means Triton restarted or reloaded the model and counts from zero again: what it counted since is
then its whole value (as Prometheus' ``rate()`` takes it).
"""

from __future__ import annotations

import math
import time
from collections import deque
from dataclasses import dataclass

from matting import contract
from serving.triton_metrics import read_metrics

SUCCESS = "nv_inference_request_success"
FAILURE = "nv_inference_request_failure"
REQUEST_US = "nv_inference_request_duration_us"
QUEUE_US = "nv_inference_queue_duration_us"
COMPUTE_US = ("nv_inference_compute_input_duration_us", "nv_inference_compute_infer_duration_us",
              "nv_inference_compute_output_duration_us")
COUNTERS = (SUCCESS, FAILURE, REQUEST_US, QUEUE_US, *COMPUTE_US)
WAITING = "nv_inference_pending_request_count"
P50_US, P95_US = "request_p50_us", "request_p95_us"

RUNNING, BUSY, RESTARTING = "running", "busy", "restarting"
#: Busy means photos queue, read two ways: the requests waiting for a step at the last reading (one waiting
#: is the normal hand-over when two photos arrive together; two or more is a queue), and the time requests
#: waited before a step started, on average over the last interval (over a second, people notice).
BUSY_WAITING_REQUESTS = 2
BUSY_QUEUE_MS = 1000.0


@dataclass(frozen=True)
class Sample:
    """One reading of Triton's metrics: when (seconds since the epoch) and ``{model: {metric: value}}``."""

    taken_at: float
    models: dict[str, dict[str, float]]


@dataclass(frozen=True)
class ModelRates:
    """One model between two readings. Averages are per successful request in the interval (None without one)."""

    requests_per_s: float
    failures_per_s: float
    #: End-to-end time of a request (for a pipeline: the whole job).
    latency_ms: float | None
    #: Time waiting for a free instance before the model started on it.
    queue_ms: float | None
    #: Time the model worked on it (inputs, run, outputs).
    compute_ms: float | None
    #: Triton's own quantiles over its recent requests, when its summaries are on (else None).
    latency_p50_ms: float | None
    latency_p95_ms: float | None
    #: Requests waiting for the model at the second reading.
    waiting: int


@dataclass(frozen=True)
class Interval:
    start: float
    end: float
    models: dict[str, ModelRates]

    @property
    def seconds(self) -> float:
        return self.end - self.start


def take_sample(metrics_url: str, timeout_s: float) -> Sample:
    """Read Triton's metrics now; OSError when its metrics address does not answer."""
    models = read_metrics(metrics_url, timeout_s)
    return Sample(time.time(), models)


def counted_since(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    """What each counter counted between two readings of one model (a counter missing counts as 0)."""
    deltas = {name: after.get(name, 0.0) - before.get(name, 0.0) for name in COUNTERS}
    if any(delta < 0 for delta in deltas.values()):
        return {name: after.get(name, 0.0) for name in COUNTERS}
    return deltas


def _per_request_ms(total_us: float, requests: float) -> float | None:
    return total_us / requests / 1000 if requests > 0 else None


def _quantile_ms(value_us: float | None) -> float | None:
    return None if value_us is None or math.isnan(value_us) else value_us / 1000


def interval(before: Sample, after: Sample) -> Interval | None:
    """The rates of every model read in both samples; None when no time passed between them.

    A model only in ``after`` (loaded in between) gets its first rate from the next interval, as a new
    Prometheus series does.
    """
    seconds = after.taken_at - before.taken_at
    if seconds <= 0:
        return None
    models = {}
    for model, values in after.models.items():
        if model not in before.models:
            continue
        counted = counted_since(before.models[model], values)
        requests = counted[SUCCESS]
        models[model] = ModelRates(
            requests_per_s=requests / seconds,
            failures_per_s=counted[FAILURE] / seconds,
            latency_ms=_per_request_ms(counted[REQUEST_US], requests),
            queue_ms=_per_request_ms(counted[QUEUE_US], requests),
            compute_ms=_per_request_ms(sum(counted[name] for name in COMPUTE_US), requests),
            latency_p50_ms=_quantile_ms(values.get(P50_US)),
            latency_p95_ms=_quantile_ms(values.get(P95_US)),
            waiting=int(values.get(WAITING, 0)),
        )
    return Interval(before.taken_at, after.taken_at, models)


class SampleWindow:
    """The readings of the last ``window_s`` seconds, at least ``min_spacing_s`` apart (closer ones would
    divide by almost no time: a page rerun right after the timed one); bounded in count as in age."""

    def __init__(self, window_s: float, min_spacing_s: float):
        self.window_s = window_s
        self.min_spacing_s = min_spacing_s
        self._samples: deque[Sample] = deque(maxlen=int(window_s / min_spacing_s) + 1)

    def add(self, sample: Sample) -> bool:
        """Keep ``sample`` unless it comes too soon after the last one (or before it); forget readings
        older than the window. Returns whether it was kept."""
        if self._samples and sample.taken_at - self._samples[-1].taken_at < self.min_spacing_s:
            return False
        self._samples.append(sample)
        while sample.taken_at - self._samples[0].taken_at > self.window_s:
            self._samples.popleft()
        return True

    @property
    def samples(self) -> list[Sample]:
        return list(self._samples)

    def intervals(self) -> list[Interval]:
        samples = self.samples
        return [found for before, after in zip(samples, samples[1:]) if (found := interval(before, after))]

    def recent(self, seconds: float) -> Interval | None:
        """The rates over about the last ``seconds``: from the newest reading at least that much older than the
        last one (else the oldest) to the last; steadier than the last interval when photos take seconds each."""
        samples = self.samples
        if len(samples) < 2:
            return None
        last = samples[-1]
        start = next((sample for sample in reversed(samples[:-1]) if last.taken_at - sample.taken_at >= seconds), samples[0])
        return interval(start, last)

    def has_latency_quantiles(self) -> bool:
        """Whether Triton reports latency quantiles (its summaries are on) at the last reading."""
        return bool(self._samples) and any(P50_US in values for values in self._samples[-1].models.values())


def is_pipeline(model: str) -> bool:
    """The ensembles (``matting``, ``matting_u2netp``, ``matting_u2net_flip``…): whole jobs, the rest are their steps."""
    return model == contract.ENSEMBLE or model.startswith(f"{contract.ENSEMBLE}_")


def active_models(intervals: list[Interval]) -> list[str]:
    """The models that answered or failed a request in any of ``intervals``, sorted by name."""
    return sorted({model for found in intervals for model, rates in found.models.items()
                   if rates.requests_per_s > 0 or rates.failures_per_s > 0})


@dataclass(frozen=True)
class ServiceStatus:
    state: str
    #: Requests waiting for a step at the last reading.
    waiting: int
    #: The longest average wait before a step in the last interval (None without an interval or a request).
    queue_ms: float | None


def service_status(ready: bool, window: SampleWindow) -> ServiceStatus:
    """:data:`RESTARTING` while Triton does not answer ready; :data:`BUSY` while photos queue
    (:data:`BUSY_WAITING_REQUESTS`, :data:`BUSY_QUEUE_MS`); :data:`RUNNING` otherwise."""
    samples = window.samples
    waiting = int(sum(values.get(WAITING, 0) for values in samples[-1].models.values())) if samples else 0
    intervals = window.intervals()
    waits = [rates.queue_ms for rates in intervals[-1].models.values() if rates.queue_ms is not None] if intervals else []
    queue_ms = max(waits, default=None)
    if not ready:
        state = RESTARTING
    elif waiting >= BUSY_WAITING_REQUESTS or (queue_ms or 0) >= BUSY_QUEUE_MS:
        state = BUSY
    else:
        state = RUNNING
    return ServiceStatus(state, waiting, queue_ms)
