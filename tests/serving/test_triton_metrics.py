"""Triton's Prometheus text read per model."""

from __future__ import annotations

import urllib.request

from client import MattingClient
from matting.contract import DEFAULT_NETWORK
from serving.triton_metrics import parse_metrics
from tests import support

METRICS_TEXT = """\
# HELP nv_inference_request_success Number of successful inference requests, all batch sizes
# TYPE nv_inference_request_success counter
nv_inference_request_success{model="matting",version="1"} 3
nv_inference_request_success{model="matting",version="2"} 2
nv_inference_request_failure{model="matting",reason="BACKEND",version="1"} 1
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
    assert metrics["matting"]["nv_inference_count"] == 0
    assert metrics["u2netp"] == {"nv_inference_request_success": 0, "nv_inference_count": 7,
                                 "nv_inference_queue_duration_us": 1500, "nv_inference_compute_infer_duration_us": 42000}
    assert parse_metrics("") == {}


def test_parse_metrics_on_the_served_metrics(triton):
    with MattingClient(triton.grpc_url) as client:
        client.remove_background(support.encode(support.photo((120, 90)), "JPEG"), with_alpha=False)
    with urllib.request.urlopen(triton.metrics_url, timeout=10) as response:
        metrics = parse_metrics(response.read().decode())
    assert {"matting", "preprocess", DEFAULT_NETWORK, "postprocess"} <= set(metrics)
    assert metrics["matting"]["nv_inference_request_success"] >= 1
    assert metrics[DEFAULT_NETWORK]["nv_inference_compute_infer_duration_us"] > 0
