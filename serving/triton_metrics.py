"""Triton's Prometheus metrics, read per model for the dashboard."""

from __future__ import annotations

import math
import re
import urllib.request

TRACKED_METRICS = (
    "nv_inference_request_success",
    #: Summed over its reasons (BACKEND, REJECTED, CANCELED, OTHER).
    "nv_inference_request_failure",
    "nv_inference_count",
    "nv_inference_request_duration_us",
    "nv_inference_queue_duration_us",
    "nv_inference_compute_input_duration_us",
    "nv_inference_compute_infer_duration_us",
    "nv_inference_compute_output_duration_us",
    #: A gauge: requests waiting for the model right now.
    "nv_inference_pending_request_count",
)
#: Latency quantiles of Triton's summaries, present only when it runs with ``--metrics-config
#: summary_latencies=true``: (summary, quantile label) → the key they are read under.
LATENCY_QUANTILES = {
    ("nv_inference_request_summary_us", "0.5"): "request_p50_us",
    ("nv_inference_request_summary_us", "0.95"): "request_p95_us",
}
METRIC_LINE = re.compile(r"^(?P<name>[A-Za-z_:][A-Za-z0-9_:]*)(?:\{(?P<labels>[^}]*)\})?\s+(?P<value>\S+)")
METRIC_LABEL = re.compile(r'(?P<key>[A-Za-z_][A-Za-z0-9_]*)="(?P<value>(?:[^"\\]|\\.)*)"')


def parse_metrics(text: str) -> dict[str, dict[str, float]]:
    """``{model: {metric: value}}`` for :data:`TRACKED_METRICS` in Prometheus text, summed over versions,
    plus the :data:`LATENCY_QUANTILES` where Triton reports them (the highest over versions: a sum of
    quantiles means nothing; NaN when Triton saw no request lately)."""
    models: dict[str, dict[str, float]] = {}
    for line in text.splitlines():
        match = METRIC_LINE.match(line)
        if not match:
            continue
        labels = {label["key"]: label["value"] for label in METRIC_LABEL.finditer(match["labels"] or "")}
        quantile_key = LATENCY_QUANTILES.get((match["name"], labels.get("quantile")))
        if "model" not in labels or (match["name"] not in TRACKED_METRICS and quantile_key is None):
            continue
        try:
            value = float(match["value"])
        except ValueError:
            continue
        metrics = models.setdefault(labels["model"], dict.fromkeys(TRACKED_METRICS, 0.0))
        if quantile_key is None:
            metrics[match["name"]] += value
        elif quantile_key not in metrics or math.isnan(metrics[quantile_key]) or value > metrics[quantile_key]:
            metrics[quantile_key] = value
    return models


def read_metrics(url: str, timeout_s: float) -> dict[str, dict[str, float]]:
    """:func:`parse_metrics` of what Triton's metrics address serves; OSError when it does not answer."""
    with urllib.request.urlopen(url, timeout=timeout_s) as response:
        return parse_metrics(response.read().decode("utf-8", errors="replace"))
