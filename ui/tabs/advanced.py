"""The 高级设置 / Advanced tab, an operator page read top-down: is the service well (a status line), what
it is doing (charts of the last minutes, refreshed by themselves), what the internal names mean, then
what Triton serves and with which weights, importing or restoring a network, and the machine.

The charts are rates and averages between successive readings of Triton's metrics, worked out in
serving.metrics_rates; the readings live in this session (a bounded window). Over a third of the file is the
tab's Chinese and English strings.
"""

from __future__ import annotations

import logging
import platform
from datetime import datetime
from pathlib import Path
from typing import Callable

import numpy as np
import onnxruntime
import pandas as pd
import streamlit as st
import tritonclient.grpc as triton_grpc
from tritonclient.utils import InferenceServerException

from matting import contract
from serving.admin import (
    IMPORT_KINDS,
    IMPORTED_NETWORK,
    MODEL_IMPORT_MAX_MB,
    ModelImportError,
    import_network,
    repository_models,
    restore_default,
)
from serving.admin_key import KEY_FILE_ENV, control_client
from serving.environment import accelerator_report
from serving.metrics_rates import (
    BUSY,
    RESTARTING,
    Interval,
    ModelRates,
    SampleWindow,
    active_models,
    is_pipeline,
    service_status,
    take_sample,
)
from serving.repository import served_network
from serving.repository.onnx_files import exported_from
from serving.weights import PINNED, WeightsError, fetch_weights, sha256_of
from ui.context import clear_served_model

LOG = logging.getLogger(__name__)

STRINGS = {
    "en": {
        "status_running": "Running normally: photos are processed as they arrive.",
        "status_busy": "Busy: photos are queuing ({waiting} waiting now; up to {queue} average wait before a step lately). Results still come, only later.",
        "status_restarting": "Restarting: the matting service is not answering (restarting or not started). This page updates by itself once it is back.",
        "metrics_unavailable": "The charts cannot be updated: Triton's metrics address ({url}) does not answer. They resume by themselves once it does; if this lasts, check TRITON_METRICS_URL.",
        "metrics_waiting": "The charts start after the next reading (one every {seconds} s).",
        "no_traffic": "No photo was processed in the last {minutes} minutes: the charts start with the next one.",
        "now_caption": "The last {seconds:.0f} seconds, per pipeline (whole jobs). Charts: the last {minutes} minutes, refreshed every {refresh} s.",
        "col_pipeline": "Pipeline",
        "col_requests_per_s": "Requests / s",
        "col_failures_per_s": "Failures / s",
        "col_latency_ms": "Average time (ms)",
        "col_p50_ms": "p50 (ms)",
        "col_p95_ms": "p95 (ms)",
        "axis_time": "Time",
        "axis_model": "Model",
        "chart_requests": "Requests per second",
        "chart_requests_help": "Photos finished per second by each pipeline.",
        "chart_latency_quantiles": "Time per photo: median (p50) and 95th percentile (p95)",
        "chart_latency_quantiles_help": "Triton's own percentiles over its recent requests: half the photos took less than p50, 95 in 100 less than p95.",
        "chart_latency_average": "Time per photo: average",
        "chart_latency_average_help": "The average time of the photos finished in each interval (percentiles need Triton's latency summaries, which this server does not report).",
        "chart_queue": "Queue time per step",
        "chart_queue_help": "How long a photo waited for a free worker before each step started, on average.",
        "chart_steps": "Time per step",
        "chart_steps_help": "How long each step worked on a photo, on average: where the time goes.",
        "chart_failures": "Failures per second",
        "chart_failures_help": "Requests that ended with an error (a photo that cannot be read, or a fault on the server).",
        "no_failures": "No failed requests in the last {minutes} minutes.",
        "axis_per_s": "per second",
        "axis_ms": "ms",
        "series_p50": "{label} p50",
        "series_p95": "{label} p95",
        "glossary": "What the names on this page mean",
        "label": "{model} ({role})",
        "about_line": "**{label}**: {line}",
        "role_default": "default",
        "role_flip": "{role}, mirrored",
        "role_network": "{word} network",
        "role_preprocess": "preparing",
        "role_stream": "video",
        "role_postprocess": "finishing",
        "word_u2net": "Fine",
        "word_u2netp": "Fast",
        "word_cvunet": "imported",
        "about_default": "the whole pipeline used when a request names no model; it runs {network} now.",
        "about_pipeline": "the whole pipeline for {word}: preprocess → {network} → postprocess.",
        "about_flip": "the same pipeline, run on the photo and on its mirror image with the mattes averaged: steadier edges, about twice the time.",
        "about_preprocess": "decodes the photo and prepares the network input (a small square copy).",
        "about_stream": "video frames streamed in one after another; it runs the networks on several frames at once.",
        "about_network": "the network itself: it decides, for each pixel, how much belongs to the subject.",
        "about_postprocess": "scales the matte back to the photo's size, puts in the background and writes the PNG, JPG or WebP.",
        "term_requests": "Requests per second: photos finished each second, worked out between two readings.",
        "term_latency": "Time per photo: from arriving at Triton to the result leaving it (the upload and download are not included).",
        "term_queue": "Queue time: how long a photo waited for a free worker before a step started. It grows when photos arrive faster than they are processed.",
        "term_steps": "Time per step: how long a step worked on a photo, without the waiting.",
        "term_failures": "Failures: requests that ended with an error.",
        "server_heading": "Server and models",
        "server_ok": "Triton {version} is live and ready.",
        "server_not_ready": "Triton {version} is live but not ready: a model failed to load or is loading.",
        "no_admin_key": "The model list needs the server's administration key, and its file {path} cannot be read. Start everything with `make run`, or set {variable} to the key file of the running server.",
        "models_unavailable": "The model list cannot be read from Triton right now (details in the dashboard's log). Reload the page in a moment.",
        "col_model": "Model",
        "col_role": "Role",
        "col_state": "State",
        "col_ready": "Ready",
        "col_version": "Version",
        "col_backend": "Backend / platform",
        "col_max_batch": "Max batch size",
        "col_dynamic_batching": "Dynamic batching",
        "col_instances": "Instances",
        "state_READY": "loaded",
        "state_UNAVAILABLE": "not loaded",
        "state_LOADING": "loading",
        "state_UNLOADING": "unloading",
        "weights_heading": "Weights in use",
        "no_network": "{repository} serves no known network: restore the default below.",
        "weights_missing": "The served network file {path} is missing: restore the default below.",
        "weights_file": "Served file: `{path}` ({size_mb:.1f} MB)",
        "weights_sha256": "sha256 `{sha256}`",
        "pinned_source_ok": "The {network} source `{path}` matches the pinned sha256 `{sha256}`.",
        "pinned_source_bad": "The {network} source `{path}` has sha256 `{actual}`, not the pinned `{sha256}`: use “Download / verify” below.",
        "pinned_source_missing": "The pinned {network} source `{path}` is missing: use “Download / verify” below.",
        "served_from_pin": "The served file is our export of {network}, ported from the pinned file.",
        "served_not_from_pin": "The served file is not our export of the pinned {network}: restore the default below.",
        "served_fine_tuned": "The served file is our export of {network} fine-tuned from the pinned weights ({how}).",
        "models_heading": "Models",
        "fetch_default": "Download / verify the default model (U²-Net)",
        "fetching": "Fetching and verifying the pinned U²-Net weights…",
        "fetch_ok": "Verified: `{path}` (sha256 `{sha256}`)",
        "fetch_failed": "The default weights could not be downloaded or do not match the pinned checksum. Check the server's internet connection and free disk space, then try again (details in the dashboard's log).",
        "import_upload": "Import a CV-UNet checkpoint (.pt) or ONNX export (.onnx)",
        "import_button": "Import and serve",
        "importing": "Validating {name}, rebuilding the repository and reloading the models…",
        "import_ok": "{name} is served as cvunet ({path}).",
        "import_refused": "Not imported: {name} could not be checked or loaded as a matting network (a CV-UNet checkpoint .pt or its ONNX export is needed). The served network is unchanged; the details are in the dashboard's log.",
        "restore_heading": "Restore the defaults",
        "restore_explained": "Serves U²-Net (Fine, the default) and U²-Netp (Fast) again, from the pinned and checked files; an imported network stops being served. The models reload, which takes up to a minute: photos sent meanwhile wait or fail.",
        "restore_confirm": "I'm sure: replace the served networks with the defaults",
        "restore_button": "Restore the defaults (U²-Net and U²-Netp)",
        "restoring": "Rebuilding the default repository and reloading the models…",
        "restore_ok": "U²-Net (default) and U²-Netp are served again ({path}).",
        "restore_failed": "The defaults could not be restored; the served network is unchanged. Check the server's internet connection (the pinned weights may need downloading) and try again (details in the dashboard's log).",
        "environment_heading": "Environment",
        "col_item": "Item",
        "col_value": "Value",
        "env_python": "Python",
        "env_numpy": "NumPy",
        "env_ort": "ONNX Runtime",
        "env_ort_providers": "ONNX Runtime providers",
        "env_torch": "PyTorch",
        "env_cuda": "CUDA (PyTorch)",
        "env_nvidia_smi": "nvidia-smi",
        "env_tensorrt": "TensorRT",
        "env_triton": "Triton server",
        "not_installed": "not installed",
        "not_found": "not found",
        "no_gpu": "no GPU visible",
        "unknown": "unknown (server not reachable)",
        "numpy_too_new": "NumPy {version} is installed: the Triton python backend needs NumPy < 2.",
    },
    "zh": {
        "status_running": "服务正常：照片到达后立即处理。",
        "status_busy": "繁忙：照片正在排队（现在有 {waiting} 个在等待；最近在某一步前平均最多等待 {queue}）。结果仍会返回，只是慢一些。",
        "status_restarting": "重启中：抠图服务暂时没有响应（正在重启或尚未启动）。恢复后本页会自动更新。",
        "metrics_unavailable": "图表暂时无法更新：Triton 的指标地址（{url}）没有响应。恢复后会自动继续；如果一直如此，请检查 TRITON_METRICS_URL 设置。",
        "metrics_waiting": "下一次读取后开始显示图表（每 {seconds} 秒读取一次）。",
        "no_traffic": "最近 {minutes} 分钟没有处理照片：处理下一张后开始显示图表。",
        "now_caption": "最近 {seconds:.0f} 秒，按流程（完整任务）统计。图表：最近 {minutes} 分钟，每 {refresh} 秒自动刷新。",
        "col_pipeline": "流程",
        "col_requests_per_s": "每秒请求数",
        "col_failures_per_s": "每秒失败数",
        "col_latency_ms": "平均耗时 (ms)",
        "col_p50_ms": "p50 (ms)",
        "col_p95_ms": "p95 (ms)",
        "axis_time": "时间",
        "axis_model": "模型",
        "chart_requests": "每秒请求数",
        "chart_requests_help": "每个流程每秒处理完成的照片数。",
        "chart_latency_quantiles": "每张照片耗时：中位数（p50）和 95 百分位（p95）",
        "chart_latency_quantiles_help": "Triton 对最近请求统计的百分位：一半照片耗时少于 p50，95% 少于 p95。",
        "chart_latency_average": "每张照片耗时：平均值",
        "chart_latency_average_help": "每个时间段内完成的照片的平均耗时（百分位需要 Triton 开启耗时统计摘要，本服务器未提供）。",
        "chart_queue": "各步骤排队时间",
        "chart_queue_help": "每个步骤开始前，照片等待空闲处理单元的平均时间。",
        "chart_steps": "各步骤耗时",
        "chart_steps_help": "每个步骤处理一张照片的平均时间：时间花在哪里。",
        "chart_failures": "每秒失败数",
        "chart_failures_help": "以错误结束的请求（照片无法读取，或服务器出错）。",
        "no_failures": "最近 {minutes} 分钟没有失败的请求。",
        "axis_per_s": "每秒",
        "axis_ms": "ms",
        "series_p50": "{label} p50",
        "series_p95": "{label} p95",
        "glossary": "本页名称说明",
        "label": "{model}（{role}）",
        "about_line": "**{label}**：{line}",
        "role_default": "默认",
        "role_flip": "{role}，镜像增强",
        "role_network": "{word}网络",
        "role_preprocess": "预处理",
        "role_stream": "视频",
        "role_postprocess": "后处理",
        "word_u2net": "精细",
        "word_u2netp": "快速",
        "word_cvunet": "导入的",
        "about_default": "请求未指定模型时使用的完整流程，目前运行 {network}。",
        "about_pipeline": "{word}模式的完整流程：preprocess → {network} → postprocess。",
        "about_flip": "同一流程，再处理一次镜像照片并把两次结果平均：边缘更稳定，耗时约为两倍。",
        "about_preprocess": "解码照片，并生成网络需要的输入（缩小的方形副本）。",
        "about_stream": "视频帧逐帧连续传入；一次把多帧一起交给网络处理。",
        "about_network": "抠图网络本身：判断每个像素有多少属于主体。",
        "about_postprocess": "把抠图结果放大回照片尺寸，合成背景，并写出 PNG、JPG 或 WebP。",
        "term_requests": "每秒请求数：每秒处理完成的照片数，由相邻两次读取的差值算出。",
        "term_latency": "每张照片耗时：从照片到达 Triton 到结果离开（不含上传和下载）。",
        "term_queue": "排队时间：某一步开始前，照片等待空闲处理单元的时间。照片到达速度超过处理速度时会变长。",
        "term_steps": "步骤耗时：某一步实际处理一张照片的时间，不含等待。",
        "term_failures": "失败：以错误结束的请求。",
        "server_heading": "服务器与模型",
        "server_ok": "Triton {version} 运行正常，已就绪。",
        "server_not_ready": "Triton {version} 在运行但未就绪：有模型加载失败或正在加载。",
        "no_admin_key": "读取模型列表需要服务器的管理密钥，但无法读取密钥文件 {path}。请用 `make run` 启动全部服务，或把 {variable} 设为正在运行的服务器的密钥文件。",
        "models_unavailable": "暂时无法从 Triton 读取模型列表（详情已记入控制台日志）。请稍后刷新页面。",
        "col_model": "模型",
        "col_role": "作用",
        "col_state": "状态",
        "col_ready": "就绪",
        "col_version": "版本",
        "col_backend": "后端 / 平台",
        "col_max_batch": "最大批大小",
        "col_dynamic_batching": "动态批处理",
        "col_instances": "实例数",
        "state_READY": "已加载",
        "state_UNAVAILABLE": "未加载",
        "state_LOADING": "加载中",
        "state_UNLOADING": "卸载中",
        "weights_heading": "当前权重",
        "no_network": "{repository} 未提供已知网络：请在下方恢复默认模型。",
        "weights_missing": "服务的网络文件 {path} 不存在：请在下方恢复默认模型。",
        "weights_file": "服务文件：`{path}`（{size_mb:.1f} MB）",
        "weights_sha256": "sha256 `{sha256}`",
        "pinned_source_ok": "{network} 源文件 `{path}` 与固定的 sha256 `{sha256}` 一致。",
        "pinned_source_bad": "{network} 源文件 `{path}` 的 sha256 为 `{actual}`，与固定值 `{sha256}` 不符：请使用下方的“下载 / 校验”。",
        "pinned_source_missing": "固定的 {network} 源文件 `{path}` 不存在：请使用下方的“下载 / 校验”。",
        "served_from_pin": "服务文件是本项目从固定的 {network} 权重移植并导出的模型。",
        "served_not_from_pin": "服务文件并非由固定的 {network} 权重导出：请在下方恢复默认模型。",
        "served_fine_tuned": "服务文件是在固定的 {network} 权重基础上微调后导出的模型（{how}）。",
        "models_heading": "模型管理",
        "fetch_default": "下载 / 校验默认模型（U²-Net）",
        "fetching": "正在获取并校验固定版本的 U²-Net 权重…",
        "fetch_ok": "校验通过：`{path}`（sha256 `{sha256}`）",
        "fetch_failed": "默认权重无法下载，或与固定的校验值不符。请检查服务器的网络连接和磁盘空间后重试（详情已记入控制台日志）。",
        "import_upload": "导入 CV-UNet 检查点（.pt）或 ONNX 导出文件（.onnx）",
        "import_button": "导入并启用",
        "importing": "正在校验 {name}、重建模型仓库并重新加载模型…",
        "import_ok": "{name} 已作为 cvunet 提供服务（{path}）。",
        "import_refused": "未导入：{name} 无法作为抠图网络通过校验或加载（需要 CV-UNet 检查点 .pt 或其 ONNX 导出文件）。当前服务的网络保持不变；详情已记入控制台日志。",
        "restore_heading": "恢复默认模型",
        "restore_explained": "重新启用 U²-Net（精细，默认）和 U²-Netp（快速），使用固定且已校验的文件；导入的网络将停止服务。模型会重新加载，最多约一分钟：期间发送的照片会等待或失败。",
        "restore_confirm": "我确定：用默认模型替换当前服务的网络",
        "restore_button": "恢复默认模型（U²-Net 和 U²-Netp）",
        "restoring": "正在重建默认模型仓库并重新加载模型…",
        "restore_ok": "已恢复默认的 U²-Net 和 U²-Netp（{path}）。",
        "restore_failed": "无法恢复默认模型；当前服务的网络保持不变。请检查服务器的网络连接（可能需要下载固定版本的权重）后重试（详情已记入控制台日志）。",
        "environment_heading": "运行环境",
        "col_item": "项目",
        "col_value": "值",
        "env_python": "Python",
        "env_numpy": "NumPy",
        "env_ort": "ONNX Runtime",
        "env_ort_providers": "ONNX Runtime 执行提供程序",
        "env_torch": "PyTorch",
        "env_cuda": "CUDA（PyTorch）",
        "env_nvidia_smi": "nvidia-smi",
        "env_tensorrt": "TensorRT",
        "env_triton": "Triton 服务器",
        "not_installed": "未安装",
        "not_found": "未找到",
        "no_gpu": "未检测到 GPU",
        "unknown": "未知（无法连接服务器）",
        "numpy_too_new": "已安装 NumPy {version}：Triton python 后端需要 NumPy < 2。",
    },
}

SERVER_TIMEOUT_S = 5
#: The live part reads Triton's metrics this often, and the charts cover this many minutes.
LIVE_REFRESH_S = 5
WINDOW_MINUTES = 10
#: Readings closer than this are not kept (a click reruns the page right after a timed reading).
MIN_SAMPLE_SPACING_S = 2.0
#: The table above the charts covers about this many seconds (a photo takes seconds on a CPU: one interval is too jumpy).
RECENT_S = 60
METRICS_TIMEOUT_S = 3
SAMPLES_KEY = "advanced_metrics"
CONFIRM_KEY = "advanced_restore_confirm"
TERMS = ("term_requests", "term_latency", "term_queue", "term_steps", "term_failures")


@st.cache_resource
def _control(url: str, admin_key_file: str) -> triton_grpc.InferenceServerClient:
    return control_client(url, Path(admin_key_file))


@st.cache_data(show_spinner=False, max_entries=16)
def _file_sha256(path: str, mtime_ns: int, size: int) -> str:
    """Hashing 100+ MB on every rerun is too slow: mtime and size make the cache key follow the file."""
    return sha256_of(Path(path))


def _cached_sha256(path: Path) -> str:
    stat = path.stat()
    return _file_sha256(str(path), stat.st_mtime_ns, stat.st_size)


@st.cache_data(show_spinner=False, max_entries=4)
def _served_source(path: str, mtime_ns: int) -> dict[str, str]:
    """Reading a 176 MB ONNX file on every rerun is too slow: the modification time keys the cache."""
    return exported_from(Path(path))


@st.cache_data(show_spinner=False)
def _accelerators() -> dict:
    return accelerator_report()


class Names:
    """Triton's model names in the user's words: 'matting_u2net (Fine)', and one line on what each does."""

    def __init__(self, say, default_network: str | None):
        self.say = say
        self.default_network = default_network

    def _word(self, network: str) -> str:
        known = network in (*contract.PRETRAINED_NETWORKS, IMPORTED_NETWORK)
        return self.say(f"word_{network}") if known else network

    def role(self, model: str) -> str:
        if model == contract.STREAM:
            return self.say("role_stream")
        if model.endswith("_flip") and is_pipeline(model):
            return self.say("role_flip", role=self.role(model.removesuffix("_flip")))
        if model == contract.ENSEMBLE:
            return self.say("role_default")
        if is_pipeline(model):
            return self._word(model.removeprefix(f"{contract.ENSEMBLE}_"))
        if model in (contract.PREPROCESS, contract.POSTPROCESS):
            return self.say(f"role_{model}")
        return self.say("role_network", word=self._word(model))

    def label(self, model: str) -> str:
        return self.say("label", model=model, role=self.role(model))

    def about(self, model: str) -> str:
        if model == contract.STREAM:
            line = self.say("about_stream")
        elif model.endswith("_flip") and is_pipeline(model):
            line = self.say("about_flip")
        elif model == contract.ENSEMBLE:
            network = self.default_network or "—"
            line = self.say("about_default", network=self.label(network))
        elif is_pipeline(model):
            network = model.removeprefix(f"{contract.ENSEMBLE}_")
            line = self.say("about_pipeline", word=self._word(network), network=network)
        elif model in (contract.PREPROCESS, contract.POSTPROCESS):
            line = self.say(f"about_{model}")
        else:
            line = self.say("about_network")
        return self.say("about_line", label=self.label(model), line=line)


def render(context) -> None:
    def say(key: str, **values) -> str:
        return context.text(STRINGS, key, **values)

    names = Names(say, served_network(context.settings.repository))
    control = _control(context.settings.triton_grpc_url, str(context.settings.admin_key_file))
    _live_section(context, say, names)
    sections = (
        lambda: _glossary(context.settings.repository, say, names),
        lambda: _server_section(context, control, say, names),
        lambda: _weights_section(context.settings, say),
        lambda: _models_section(context, control, say),
        lambda: _environment_section(control, say),
    )
    for section in sections:
        try:
            section()
        except Exception as exc:  # noqa: BLE001 - one broken section must not hide the others
            LOG.exception("Advanced tab section failed")
            context.show_failure(exc)


@st.fragment(run_every=LIVE_REFRESH_S)
def _live_section(context, say, names: Names) -> None:
    """The status line, the last interval and the charts; only this part reruns by itself."""
    try:
        _live(context, say, names)
    except Exception as exc:  # noqa: BLE001 - the page below must stay usable
        LOG.exception("Advanced tab live section failed")
        context.show_failure(exc)


def _live(context, say, names: Names) -> None:
    window = st.session_state.setdefault(SAMPLES_KEY, SampleWindow(WINDOW_MINUTES * 60, MIN_SAMPLE_SPACING_S))
    ready = context.client.is_ready()
    try:
        window.add(take_sample(context.settings.triton_metrics_url, METRICS_TIMEOUT_S))
        reading_failed = False
    except OSError as exc:
        LOG.warning("Triton metrics unreadable at %s: %s", context.settings.triton_metrics_url, exc)
        reading_failed = True
    status = service_status(ready, window)
    if status.state == RESTARTING:
        st.error(say("status_restarting"))
    elif status.state == BUSY:
        queue = "—" if status.queue_ms is None else f"{status.queue_ms:.0f} ms"
        st.warning(say("status_busy", waiting=status.waiting, queue=queue))
    else:
        st.success(say("status_running"))
    if reading_failed and ready:
        st.warning(say("metrics_unavailable", url=context.settings.triton_metrics_url))
    intervals = window.intervals()
    if not intervals:
        st.info(say("metrics_waiting", seconds=LIVE_REFRESH_S))
        return
    active = active_models(intervals)
    pipelines = [model for model in active if is_pipeline(model)]
    steps = [model for model in active if not is_pipeline(model)]
    if not pipelines:
        st.info(say("no_traffic", minutes=WINDOW_MINUTES))
        return
    quantiles = window.has_latency_quantiles()
    _recent_table(window.recent(RECENT_S), pipelines, quantiles, say, names)
    per_s, ms = say("axis_per_s"), say("axis_ms")
    left, right = st.columns(2)
    with left:
        _chart("chart_requests", intervals, pipelines, [(lambda rates: rates.requests_per_s, None)], per_s, say, names)
    with right:
        if quantiles:
            _chart("chart_latency_quantiles", intervals, pipelines, [(lambda rates: rates.latency_p50_ms, "series_p50"),
                                                                     (lambda rates: rates.latency_p95_ms, "series_p95")],
                   ms, say, names)
        else:
            _chart("chart_latency_average", intervals, pipelines, [(lambda rates: rates.latency_ms, None)], ms, say, names)
    left, right = st.columns(2)
    with left:
        _chart("chart_queue", intervals, steps, [(lambda rates: rates.queue_ms, None)], ms, say, names)
    with right:
        _chart("chart_steps", intervals, steps, [(lambda rates: rates.compute_ms, None)], ms, say, names)
    if any(rates.failures_per_s for found in intervals for model, rates in found.models.items() if model in pipelines):
        _chart("chart_failures", intervals, pipelines, [(lambda rates: rates.failures_per_s, None)], per_s, say, names)
    else:
        st.caption(say("no_failures", minutes=WINDOW_MINUTES))


def _recent_table(recent: Interval, pipelines: list[str], quantiles: bool, say, names: Names) -> None:
    st.caption(say("now_caption", seconds=recent.seconds, minutes=WINDOW_MINUTES, refresh=LIVE_REFRESH_S))
    rows = []
    for model in pipelines:
        rates = recent.models.get(model)
        if rates is None:
            continue
        row = {say("col_pipeline"): names.label(model), say("col_requests_per_s"): rates.requests_per_s,
               say("col_failures_per_s"): rates.failures_per_s, say("col_latency_ms"): rates.latency_ms}
        if quantiles:
            row |= {say("col_p50_ms"): rates.latency_p50_ms, say("col_p95_ms"): rates.latency_p95_ms}
        rows.append(row)
    frame = pd.DataFrame(rows)
    formats = {say(column): "{:.2f}" for column in ("col_requests_per_s", "col_failures_per_s")}
    formats |= {say(column): "{:.0f}" for column in ("col_latency_ms", "col_p50_ms", "col_p95_ms")}
    # An average over no request is shown as a dash (Streamlit would write "None").
    st.dataframe(frame.style.format({column: form for column, form in formats.items() if column in frame}, na_rep="—"),
                 hide_index=True)


def _chart(title: str, intervals: list[Interval], models: list[str],
           measures: list[tuple[Callable[[ModelRates], float | None], str | None]], unit: str, say, names: Names) -> None:
    """A line per model and measure (named by ``say(series, label=…)`` when there are several) over the
    interval ends, under the strings ``title`` and ``title_help``; an interval where a model has no value
    (no request to average over) is left out of its line."""
    time_column, model_column = say("axis_time"), say("axis_model")
    rows = []
    for found in intervals:
        when = datetime.fromtimestamp(found.end)
        for model in models:
            rates = found.models.get(model)
            for measure, series in measures:
                number = measure(rates) if rates else None
                if number is not None:
                    label = names.label(model)
                    rows.append({time_column: when, model_column: say(series, label=label) if series else label, unit: number})
    st.markdown(f"**{say(title)}**", help=say(f"{title}_help"))
    st.line_chart(pd.DataFrame(rows, columns=[time_column, model_column, unit]), x=time_column, y=unit,
                  color=model_column, x_label=time_column, y_label=unit, height=240)


def _glossary(repository: Path, say, names: Names) -> None:
    with st.expander(say("glossary")):
        models = repository_models(repository)
        lines = [names.about(model) for model in sorted(models, key=lambda model: (not is_pipeline(model), model))]
        st.markdown("\n".join(f"- {line}" for line in [*lines, *(say(term) for term in TERMS)]))


def _server_version(control: triton_grpc.InferenceServerClient) -> str:
    return control.get_server_metadata(as_json=True, client_timeout=SERVER_TIMEOUT_S)["version"]


def _server_section(context, control, say, names: Names) -> None:
    st.subheader(say("server_heading"))
    try:
        live = control.is_server_live(client_timeout=SERVER_TIMEOUT_S)
        ready = control.is_server_ready(client_timeout=SERVER_TIMEOUT_S)
        version = _server_version(control)
    except InferenceServerException:
        st.error(context.common("server_down"))
        return
    if live and ready:
        st.success(say("server_ok", version=version))
    else:
        st.warning(say("server_not_ready", version=version))
    try:
        index = control.get_model_repository_index(as_json=True, client_timeout=SERVER_TIMEOUT_S).get("models", [])
    except InferenceServerException as exc:
        LOG.warning("Triton's model index is unreadable: %s", exc)
        key_file = context.settings.admin_key_file
        if key_file.is_file():
            st.warning(say("models_unavailable"))
        else:
            st.warning(say("no_admin_key", path=key_file, variable=KEY_FILE_ENV))
        return
    st.dataframe(pd.DataFrame([_model_row(control, model, say, names) for model in index]), hide_index=True)


def _model_row(control, model: dict, say, names: Names) -> dict:
    name = model["name"]
    ready = model.get("state") == "READY" and control.is_model_ready(name, client_timeout=SERVER_TIMEOUT_S)
    config = control.get_model_config(name, as_json=True, client_timeout=SERVER_TIMEOUT_S)["config"] if ready else {}
    instances = sum(group.get("count", 1) for group in config.get("instance_group", []))
    state = model.get("state")
    return {
        say("col_model"): name,
        say("col_role"): names.role(name),
        say("col_state"): say(f"state_{state}") if state in ("READY", "UNAVAILABLE", "LOADING", "UNLOADING") else "—",
        say("col_ready"): bool(ready),
        say("col_version"): model.get("version", "—"),
        say("col_backend"): config.get("backend") or config.get("platform") or "—",
        say("col_max_batch"): str(config.get("max_batch_size", "—")),
        say("col_dynamic_batching"): "dynamic_batching" in config,
        say("col_instances"): str(instances or "—"),
    }


def _weights_section(settings, say) -> None:
    st.subheader(say("weights_heading"))
    network = served_network(settings.repository)
    if network is None:
        st.warning(say("no_network", repository=settings.repository))
        return
    served = settings.repository / network / "1" / "model.onnx"
    if not served.exists():
        st.warning(say("weights_missing", path=served))
        return
    served_sha256 = _cached_sha256(served)
    st.markdown(say("weights_file", path=served, size_mb=served.stat().st_size / 1e6))
    st.markdown(say("weights_sha256", sha256=served_sha256))
    pin = PINNED.get(network)
    if pin is None:
        return
    if not pin.path.exists():
        st.warning(say("pinned_source_missing", network=network, path=pin.path))
        return
    source_sha256 = _cached_sha256(pin.path)
    if source_sha256 != pin.sha256:
        st.warning(say("pinned_source_bad", network=network, path=pin.path, actual=source_sha256, sha256=pin.sha256))
        return
    st.success(say("pinned_source_ok", network=network, path=pin.path, sha256=pin.sha256))
    source = _served_source(str(served), served.stat().st_mtime_ns)
    if source.get(contract.SOURCE_SHA256) == pin.sha256 and contract.FINE_TUNED in source:
        st.info(say("served_fine_tuned", network=network, how=source[contract.FINE_TUNED]))
    elif source.get(contract.SOURCE_SHA256) == pin.sha256:
        st.success(say("served_from_pin", network=network))
    else:
        st.warning(say("served_not_from_pin", network=network))


def _models_section(context, control, say) -> None:
    st.subheader(say("models_heading"))
    outcome = st.session_state.pop("advanced_outcome", None)
    if outcome:
        (st.success if outcome["ok"] else st.error)(outcome["message"])

    if st.button(say("fetch_default"), key="advanced_fetch_default"):
        with st.spinner(say("fetching")):
            try:
                path = fetch_weights(contract.DEFAULT_NETWORK)
            except (WeightsError, OSError) as exc:
                LOG.warning("Default weights not verified: %s", exc)
                st.error(say("fetch_failed"))
            else:
                st.success(say("fetch_ok", path=path, sha256=_cached_sha256(path)))

    uploaded = st.file_uploader(say("import_upload"), type=[suffix.lstrip(".") for suffix in IMPORT_KINDS],
                                key="advanced_import_file", max_upload_size=MODEL_IMPORT_MAX_MB)
    if st.button(say("import_button"), type="primary", disabled=uploaded is None, key="advanced_import"):
        with st.spinner(say("importing", name=uploaded.name)):
            try:
                served = import_network(context.settings.repository, control, uploaded.name, uploaded.getvalue())
            except ModelImportError as exc:
                LOG.warning("Import of %s refused: %s", uploaded.name, exc)
                outcome = {"ok": False, "message": say("import_refused", name=uploaded.name)}
            else:
                outcome = {"ok": True, "message": say("import_ok", name=uploaded.name, path=served)}
        _rerun_with(outcome)

    st.markdown(f"**{say('restore_heading')}**")
    st.caption(say("restore_explained"))
    confirmed = st.checkbox(say("restore_confirm"), key=CONFIRM_KEY)
    # Streamlit discards a press of a disabled button on the server too, so this needs no second check.
    if st.button(say("restore_button"), key="advanced_restore", disabled=not confirmed):
        with st.spinner(say("restoring")):
            try:
                served = restore_default(context.settings.repository, control)
            except ModelImportError as exc:
                LOG.warning("Restoring the defaults failed: %s", exc)
                outcome = {"ok": False, "message": say("restore_failed")}
            else:
                outcome = {"ok": True, "message": say("restore_ok", path=served)}
        del st.session_state[CONFIRM_KEY]  # the next restore asks again
        _rerun_with(outcome)


def _rerun_with(outcome: dict) -> None:
    """Rerun so the server and weights sections above show the new state, with the outcome on top."""
    st.session_state["advanced_outcome"] = outcome
    clear_served_model()
    st.rerun()


def _environment_section(control, say) -> None:
    st.subheader(say("environment_heading"))
    accelerators = _accelerators()
    try:
        triton_version = _server_version(control)
    except InferenceServerException:
        triton_version = say("unknown")
    rows = {
        say("env_python"): platform.python_version(),
        say("env_numpy"): np.__version__,
        say("env_ort"): onnxruntime.__version__,
        say("env_ort_providers"): ", ".join(onnxruntime.get_available_providers()),
        say("env_torch"): accelerators.get("torch", say("not_installed")),
        say("env_cuda"): accelerators.get("cuda") or say("no_gpu"),
        say("env_nvidia_smi"): accelerators.get("nvidia_smi", say("not_found")),
        say("env_tensorrt"): accelerators.get("tensorrt", say("not_installed")),
        say("env_triton"): triton_version,
    }
    st.dataframe(pd.DataFrame({say("col_item"): list(rows), say("col_value"): list(rows.values())}), hide_index=True)
    if int(np.__version__.split(".")[0]) >= 2:
        st.warning(say("numpy_too_new", version=np.__version__))
