"""Triton's Prometheus metrics, read per model for the dashboard."""

from __future__ import annotations

import re

TRACKED_METRICS = (
    "nv_inference_request_success",
    "nv_inference_count",
    "nv_inference_queue_duration_us",
    "nv_inference_compute_infer_duration_us",
)
METRIC_LINE = re.compile(r"^(?P<name>[A-Za-z_:][A-Za-z0-9_:]*)(?:\{(?P<labels>[^}]*)\})?\s+(?P<value>\S+)")
METRIC_LABEL = re.compile(r'(?P<key>[A-Za-z_][A-Za-z0-9_]*)="(?P<value>(?:[^"\\]|\\.)*)"')


def parse_metrics(text: str) -> dict[str, dict[str, float]]:
    """``{model: {metric: value}}`` for :data:`TRACKED_METRICS` in Prometheus text, summed over versions."""
    models: dict[str, dict[str, float]] = {}
    for line in text.splitlines():
        match = METRIC_LINE.match(line)
        if not match or match["name"] not in TRACKED_METRICS:
            continue
        labels = {label["key"]: label["value"] for label in METRIC_LABEL.finditer(match["labels"] or "")}
        if "model" not in labels:
            continue
        try:
            value = float(match["value"])
        except ValueError:
            continue
        metrics = models.setdefault(labels["model"], dict.fromkeys(TRACKED_METRICS, 0.0))
        metrics[match["name"]] += value
    return models
