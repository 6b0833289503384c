"""Triton's Prometheus text read per model."""

from __future__ import annotations

import time
import urllib.request

from client import MattingClient
from matting.contract import DEFAULT_NETWORK
from serving.triton_metrics import TRACKED_METRICS, parse_metrics, read_metrics
from tests import support

METRICS_TEXT = """\
# HELP nv_inference_request_success Number of successful inference requests, all batch sizes
# TYPE nv_inference_request_success counter
nv_inference_request_success{model="matting",version="1"} 3
nv_inference_request_success{model="matting",version="2"} 2
nv_inference_request_failure{model="matting",reason="BACKEND",version="1"} 1
nv_inference_request_failure{model="matting",reason="REJECTED",version="1"} 2
nv_inference_request_summary_us{model="matting",version="1",quantile="0.5"} 2000
nv_inference_request_summary_us{model="matting",version="1",quantile="0.9"} 2500
nv_inference_request_summary_us{model="matting",version="1",quantile="0.95"} 3000
nv_inference_request_summary_us{model="matting",version="2",quantile="0.5"} NaN
nv_inference_request_summary_us{model="matting",version="2",quantile="0.95"} 3500
nv_inference_request_summary_us_count{model="matting",version="1"} 5
nv_inference_count{model="u2netp",version="1"} 7
nv_inference_queue_duration_us{model="u2netp",version="1"} 1.5e3
nv_inference_compute_infer_duration_us{model="u2netp",version="1"} 42000
nv_gpu_utilization{gpu_uuid="GPU-0"} 0.5
nv_inference_count 9
not a metric line
"""


def test_parse_metrics_sums_versions_and_keeps_only_tracked_model_metrics():
    metrics = parse_metrics(METRICS_TEXT)
    assert set(metrics) == {"matting", "u2netp"}
    assert metrics["matting"]["nv_inference_request_success"] == 5
    assert metrics["matting"]["nv_inference_request_failure"] == 3, "summed over the failure reasons"
    assert metrics["matting"]["nv_inference_count"] == 0
    assert metrics["u2netp"] == {**dict.fromkeys(TRACKED_METRICS, 0.0), "nv_inference_count": 7,
                                 "nv_inference_queue_duration_us": 1500, "nv_inference_compute_infer_duration_us": 42000}
    assert parse_metrics("") == {}


def test_parse_metrics_reads_latency_quantiles_as_the_highest_over_versions():
    """A sum of quantiles means nothing; a version that saw no request lately reports NaN."""
    metrics = parse_metrics(METRICS_TEXT)["matting"]
    assert (metrics["request_p50_us"], metrics["request_p95_us"]) == (2000, 3500)
    assert "request_p50_us" not in parse_metrics(METRICS_TEXT)["u2netp"]


def test_parse_metrics_on_the_served_metrics(triton):
    with MattingClient(triton.grpc_url) as client:
        client.remove_background(support.encode(support.photo((120, 90)), "JPEG"), with_alpha=False)
    def counters(metrics: dict) -> dict:  # quantiles slide with time (and are NaN for an idle model)
        return {model: {name: metrics[model][name] for name in TRACKED_METRICS if name in metrics[model]} for model in metrics}

    def settled() -> dict:  # Triton counts a step's success a moment after the answer has left
        previous = None
        for _ in range(20):
            with urllib.request.urlopen(triton.metrics_url, timeout=10) as response:
                metrics = parse_metrics(response.read().decode())
            if previous is not None and counters(metrics) == counters(previous):
                return metrics
            previous = metrics
            time.sleep(0.5)
        raise AssertionError("Triton's counters kept moving with nothing running")

    metrics = settled()
    assert counters(read_metrics(triton.metrics_url, timeout_s=10)) == counters(metrics), "nothing ran in between"
    assert {"matting", "preprocess", DEFAULT_NETWORK, "postprocess"} <= set(metrics)
    assert metrics["matting"]["nv_inference_request_success"] >= 1
    assert metrics[DEFAULT_NETWORK]["nv_inference_compute_infer_duration_us"] > 0
