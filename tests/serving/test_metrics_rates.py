"""Rates and averages between readings of Triton's metrics, on synthetic metric texts."""

from __future__ import annotations

import pytest

from serving.metrics_rates import (
    BUSY,
    RESTARTING,
    RUNNING,
    Sample,
    SampleWindow,
    active_models,
    interval,
    is_pipeline,
    service_status,
)
from serving.triton_metrics import parse_metrics


def reading(taken_at: float, model: str = "matting", success: int = 0, failures: tuple[int, ...] = (0,),
            request_us: int = 0, queue_us: int = 0, compute_us: tuple[int, int, int] = (0, 0, 0), waiting: int = 0,
            quantiles: tuple[str, str] | None = None, **others: dict[str, int]) -> Sample:
    """A Sample parsed from Triton-style text for ``model`` (and ``others``: model → its success count)."""
    lines = [
        f'nv_inference_request_success{{model="{model}",version="1"}} {success}',
        *(f'nv_inference_request_failure{{model="{model}",reason="R{index}",version="1"}} {count}'
          for index, count in enumerate(failures)),
        f'nv_inference_request_duration_us{{model="{model}",version="1"}} {request_us}',
        f'nv_inference_queue_duration_us{{model="{model}",version="1"}} {queue_us}',
        f'nv_inference_compute_input_duration_us{{model="{model}",version="1"}} {compute_us[0]}',
        f'nv_inference_compute_infer_duration_us{{model="{model}",version="1"}} {compute_us[1]}',
        f'nv_inference_compute_output_duration_us{{model="{model}",version="1"}} {compute_us[2]}',
        f'nv_inference_pending_request_count{{model="{model}",version="1"}} {waiting}',
    ]
    if quantiles:
        lines += [f'nv_inference_request_summary_us{{model="{model}",version="1",quantile="{quantile}"}} {value}'
                  for quantile, value in zip(("0.5", "0.95"), quantiles)]
    lines += [f'nv_inference_request_success{{model="{name}",version="1"}} {count}' for name, count in others.items()]
    return Sample(taken_at, parse_metrics("\n".join(lines)))


def test_rates_are_deltas_over_elapsed_seconds_and_averages_are_per_request():
    before = reading(100.0, success=10, failures=(1, 0), request_us=20_000_000, queue_us=1_000_000,
                     compute_us=(1000, 18_000_000, 2000))
    after = reading(104.0, success=14, failures=(2, 1), request_us=28_000_000, queue_us=1_400_000,
                    compute_us=(1400, 25_000_000, 2600), waiting=3)
    rates = interval(before, after).models["matting"]
    assert rates.requests_per_s == 4 / 4
    assert rates.failures_per_s == 2 / 4
    assert rates.latency_ms == 8_000_000 / 4 / 1000
    assert rates.queue_ms == 400_000 / 4 / 1000
    assert rates.compute_ms == (400 + 7_000_000 + 600) / 4 / 1000
    assert rates.waiting == 3
    assert rates.latency_p50_ms is None and rates.latency_p95_ms is None
    assert interval(before, after).seconds == 4.0


def test_an_idle_interval_has_zero_rates_and_no_averages():
    rates = interval(reading(0.0, success=5, request_us=9000), reading(5.0, success=5, request_us=9000)).models["matting"]
    assert (rates.requests_per_s, rates.failures_per_s) == (0, 0)
    assert rates.latency_ms is rates.queue_ms is rates.compute_ms is None


def test_a_counter_that_went_down_counts_from_zero_again():
    """Triton restarted (or reloaded the model) between the readings: what it counted since is the new value."""
    before = reading(0.0, success=500, request_us=1_000_000_000)
    after = reading(10.0, success=3, request_us=6_000_000)
    rates = interval(before, after).models["matting"]
    assert rates.requests_per_s == 3 / 10
    assert rates.latency_ms == 2000


def test_a_reset_of_any_counter_resets_the_whole_model():
    """Mixing a new count with an old duration would give a nonsense average."""
    before = reading(0.0, success=2, failures=(5,), request_us=4_000_000)
    after = reading(2.0, success=4, failures=(0,), request_us=8_000_000)
    rates = interval(before, after).models["matting"]
    assert rates.requests_per_s == 4 / 2
    assert rates.latency_ms == 2000


@pytest.mark.parametrize("elapsed", [0.0, -3.0])
def test_no_interval_without_elapsed_time(elapsed):
    assert interval(reading(50.0, success=1), reading(50.0 + elapsed, success=9)) is None


def test_a_model_missing_from_the_first_reading_gets_its_rate_from_the_next_interval():
    first, second, third = reading(0.0, success=1), reading(5.0, success=2, u2netp=4), reading(10.0, success=2, u2netp=9)
    assert set(interval(first, second).models) == {"matting"}
    assert interval(second, third).models["u2netp"].requests_per_s == 5 / 5


def test_missing_series_count_as_zero():
    before = Sample(0.0, parse_metrics('nv_inference_request_success{model="matting",version="1"} 1'))
    after = Sample(2.0, parse_metrics('nv_inference_request_success{model="matting",version="1"} 3'))
    rates = interval(before, after).models["matting"]
    assert rates.requests_per_s == 1
    assert rates.failures_per_s == 0 and rates.waiting == 0
    assert rates.latency_ms == 0


def test_latency_quantiles_come_from_triton_summaries_when_reported():
    before = reading(0.0, success=1, quantiles=("1500", "2000"))
    after = reading(5.0, success=2, quantiles=("1800", "4200"))
    rates = interval(before, after).models["matting"]
    assert (rates.latency_p50_ms, rates.latency_p95_ms) == (1.8, 4.2)
    idle = interval(after, reading(10.0, success=2, quantiles=("NaN", "NaN"))).models["matting"]
    assert idle.latency_p50_ms is None and idle.latency_p95_ms is None


def test_the_window_keeps_spaced_recent_readings():
    window = SampleWindow(window_s=60, min_spacing_s=2)
    assert window.add(reading(0.0, success=0))
    assert not window.add(reading(1.0, success=1)), "too close to the previous reading"
    assert not window.add(reading(-5.0, success=1)), "before the previous reading"
    for second in range(5, 70, 5):
        assert window.add(reading(float(second), success=second))
    assert [sample.taken_at for sample in window.samples][0] == 5.0
    assert window.samples[-1].taken_at - window.samples[0].taken_at <= 60
    assert len(window.intervals()) == len(window.samples) - 1
    assert all(found.models["matting"].requests_per_s == 1 for found in window.intervals())


def test_the_window_is_bounded_in_count():
    window = SampleWindow(window_s=10, min_spacing_s=1)
    for second in range(100):
        window.add(reading(second * 1.0))
    assert len(window.samples) <= 11


def test_latency_quantiles_are_reported_only_when_triton_has_them():
    window = SampleWindow(window_s=60, min_spacing_s=1)
    assert not window.has_latency_quantiles()
    window.add(reading(0.0))
    assert not window.has_latency_quantiles()
    window.add(reading(5.0, quantiles=("1", "2")))
    assert window.has_latency_quantiles()


def window_of(*samples: Sample) -> SampleWindow:
    window = SampleWindow(window_s=600, min_spacing_s=1)
    for sample in samples:
        window.add(sample)
    return window


def test_status_is_restarting_while_not_ready_whatever_the_metrics():
    assert service_status(False, window_of()).state == RESTARTING
    assert service_status(False, window_of(reading(0.0), reading(5.0))).state == RESTARTING


def test_status_is_running_when_nothing_waits():
    window = window_of(reading(0.0, success=1, queue_us=100), reading(5.0, success=3, queue_us=200_100, waiting=1))
    status = service_status(True, window)
    assert status.state == RUNNING
    assert status.waiting == 1 and status.queue_ms == 100


def test_status_is_busy_when_requests_wait_now():
    status = service_status(True, window_of(reading(0.0, waiting=1, u2net=0), reading(5.0, waiting=1)))
    assert status.state == RUNNING
    status = service_status(True, window_of(reading(0.0), reading(5.0, waiting=2)))
    assert (status.state, status.waiting) == (BUSY, 2)
    assert service_status(True, window_of(reading(0.0, waiting=2))).state == BUSY, "one reading is enough for waiting"


def test_status_is_busy_when_requests_waited_over_the_threshold_in_the_last_interval():
    slow = window_of(reading(0.0, model="u2net"), reading(5.0, model="u2net", success=2, queue_us=2_400_000))
    status = service_status(True, slow)
    assert (status.state, status.queue_ms) == (BUSY, 1200)
    recovered = window_of(*slow.samples, reading(10.0, model="u2net", success=4, queue_us=2_400_000))
    assert service_status(True, recovered).state == RUNNING, "only the last interval counts"


def test_pipelines_and_active_models():
    assert is_pipeline("matting") and is_pipeline("matting_u2netp") and is_pipeline("matting_u2net_flip")
    assert not any(is_pipeline(model) for model in ("preprocess", "u2net", "postprocess", "cvunet", "mattingx"))
    window = window_of(reading(0.0, success=1, u2net=3, u2netp=2), reading(5.0, success=2, u2net=3, u2netp=2),
                       reading(10.0, success=2, failures=(0,), u2net=3, u2netp=3))
    assert active_models(window.intervals()) == ["matting", "u2netp"]


def test_recent_rates_span_about_the_asked_seconds():
    window = window_of(*(reading(float(second), success=second // 10) for second in range(0, 125, 5)))
    recent = window.recent(60)
    assert (recent.start, recent.end) == (60.0, 120.0)
    assert recent.models["matting"].requests_per_s == (12 - 6) / 60
    young = window_of(reading(0.0, success=1), reading(5.0, success=3))
    assert young.recent(60).models["matting"].requests_per_s == 2 / 5, "since the oldest reading when younger"
    assert window_of(reading(0.0)).recent(60) is None
