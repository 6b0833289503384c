"""The 高级设置 / Advanced tab: what Triton serves and with which weights, the machine it runs on,
importing a network (serving.admin does the work), and live metrics.

Over ~350 lines only because a third of it is the tab's Chinese and English strings.
"""

from __future__ import annotations

import platform
import urllib.error
import urllib.request
from datetime import datetime
from pathlib import Path

import numpy as np
import onnxruntime
import pandas as pd
import streamlit as st
import tritonclient.grpc as triton_grpc
from tritonclient.utils import InferenceServerException

from matting import contract
from serving.admin import (
    IMPORT_KINDS,
    MODEL_IMPORT_MAX_MB,
    ModelImportError,
    import_network,
    restore_default,
    server_reason,
)
from serving.admin_key import control_client
from serving.environment import accelerator_report
from serving.repository import served_network
from serving.repository.onnx_files import exported_from
from serving.triton_metrics import parse_metrics
from serving.weights import PINNED, WeightsError, fetch_weights, sha256_of
from ui.context import clear_served_model

STRINGS = {
    "en": {
        "server_heading": "Triton server",
        "server_ok": "Triton {version} is live and ready.",
        "server_not_ready": "Triton {version} is live but not ready: a model failed to load or is loading.",
        "models_unavailable": "The model list could not be read: {reason}",
        "col_model": "Model",
        "col_state": "State",
        "col_ready": "Ready",
        "col_version": "Version",
        "col_backend": "Backend / platform",
        "col_max_batch": "Max batch size",
        "col_dynamic_batching": "Dynamic batching",
        "col_instances": "Instances",
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
        "fetch_failed": "The default weights could not be verified: {reason}",
        "import_upload": "Import a CV-UNet checkpoint (.pt) or ONNX export (.onnx)",
        "import_button": "Import and serve",
        "importing": "Validating {name}, rebuilding the repository and reloading the models…",
        "import_ok": "{name} is served as cvunet ({path}).",
        "import_refused": "Not imported: {reason}. The served network is unchanged.",
        "restore_button": "Restore the defaults (U²-Net and U²-Netp)",
        "restoring": "Rebuilding the default repository and reloading the models…",
        "restore_ok": "U²-Net (default) and U²-Netp are served again ({path}).",
        "restore_failed": "The default could not be restored: {reason}",
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
        "metrics_heading": "Live metrics",
        "refresh": "Refresh",
        "metrics_unavailable": "Metrics are not available from {url}: {reason}",
        "metrics_empty": "No inference metrics yet: they appear after the first request.",
        "col_requests": "Successful requests",
        "col_inferences": "Inferences",
        "col_queue_ms": "Avg queue (ms)",
        "col_compute_ms": "Avg compute (ms)",
        "chart_caption": "Successful requests per model (cumulative), one point per refresh.",
    },
    "zh": {
        "server_heading": "Triton 服务器",
        "server_ok": "Triton {version} 运行正常，已就绪。",
        "server_not_ready": "Triton {version} 在运行但未就绪：有模型加载失败或正在加载。",
        "models_unavailable": "无法读取模型列表：{reason}",
        "col_model": "模型",
        "col_state": "状态",
        "col_ready": "就绪",
        "col_version": "版本",
        "col_backend": "后端 / 平台",
        "col_max_batch": "最大批大小",
        "col_dynamic_batching": "动态批处理",
        "col_instances": "实例数",
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
        "fetch_failed": "默认权重校验失败：{reason}",
        "import_upload": "导入 CV-UNet 检查点（.pt）或 ONNX 导出文件（.onnx）",
        "import_button": "导入并启用",
        "importing": "正在校验 {name}、重建模型仓库并重新加载模型…",
        "import_ok": "{name} 已作为 cvunet 提供服务（{path}）。",
        "import_refused": "未导入：{reason}。当前服务的网络保持不变。",
        "restore_button": "恢复默认模型（U²-Net 和 U²-Netp）",
        "restoring": "正在重建默认模型仓库并重新加载模型…",
        "restore_ok": "已恢复默认的 U²-Net 和 U²-Netp（{path}）。",
        "restore_failed": "无法恢复默认模型：{reason}",
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
        "metrics_heading": "实时指标",
        "refresh": "刷新",
        "metrics_unavailable": "无法从 {url} 获取指标：{reason}",
        "metrics_empty": "暂无推理指标：第一次请求后显示。",
        "col_requests": "成功请求数",
        "col_inferences": "推理次数",
        "col_queue_ms": "平均排队 (ms)",
        "col_compute_ms": "平均计算 (ms)",
        "chart_caption": "各模型成功请求数（累计），每次刷新记录一个点。",
    },
}

METRICS_SAMPLES_KEPT = 120
SERVER_TIMEOUT_S = 5


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


def render(context) -> None:
    def say(key: str, **values) -> str:
        return context.text(STRINGS, key, **values)

    control = _control(context.settings.triton_grpc_url, str(context.settings.admin_key_file))
    sections = (
        lambda: _server_section(context, control, say),
        lambda: _weights_section(context.settings, say),
        lambda: _models_section(context, control, say),
        lambda: _environment_section(control, say),
        lambda: _metrics_section(context.settings, say),
    )
    for section in sections:
        try:
            section()
        except Exception as exc:  # noqa: BLE001 - one broken section must not hide the others
            context.show_failure(exc)


def _server_version(control: triton_grpc.InferenceServerClient) -> str:
    return control.get_server_metadata(as_json=True, client_timeout=SERVER_TIMEOUT_S)["version"]


def _server_section(context, control, say) -> None:
    st.subheader(say("server_heading"))
    try:
        live = control.is_server_live(client_timeout=SERVER_TIMEOUT_S)
        ready = control.is_server_ready(client_timeout=SERVER_TIMEOUT_S)
        version = _server_version(control)
    except InferenceServerException:
        st.error(context.common("server_down", url=context.settings.triton_grpc_url))
        return
    if live and ready:
        st.success(say("server_ok", version=version))
    else:
        st.warning(say("server_not_ready", version=version))
    try:
        index = control.get_model_repository_index(as_json=True, client_timeout=SERVER_TIMEOUT_S).get("models", [])
    except InferenceServerException as exc:
        st.warning(say("models_unavailable", reason=server_reason(exc)))
        return
    st.dataframe(pd.DataFrame([_model_row(control, model, say) for model in index]), hide_index=True)


def _model_row(control, model: dict, say) -> dict:
    name = model["name"]
    ready = model.get("state") == "READY" and control.is_model_ready(name, client_timeout=SERVER_TIMEOUT_S)
    config = control.get_model_config(name, as_json=True, client_timeout=SERVER_TIMEOUT_S)["config"] if ready else {}
    instances = sum(group.get("count", 1) for group in config.get("instance_group", []))
    state = model.get("state", "—")
    return {
        say("col_model"): name,
        say("col_state"): f"{state} ({model['reason']})" if model.get("reason") else state,
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
                st.error(say("fetch_failed", reason=exc))
            else:
                st.success(say("fetch_ok", path=path, sha256=_cached_sha256(path)))

    uploaded = st.file_uploader(say("import_upload"), type=[suffix.lstrip(".") for suffix in IMPORT_KINDS],
                                key="advanced_import_file", max_upload_size=MODEL_IMPORT_MAX_MB)
    import_column, restore_column = st.columns(2)
    if import_column.button(say("import_button"), type="primary", disabled=uploaded is None, key="advanced_import"):
        with st.spinner(say("importing", name=uploaded.name)):
            try:
                served = import_network(context.settings.repository, control, uploaded.name, uploaded.getvalue())
            except ModelImportError as exc:
                outcome = {"ok": False, "message": say("import_refused", reason=exc)}
            else:
                outcome = {"ok": True, "message": say("import_ok", name=uploaded.name, path=served)}
        _rerun_with(outcome)
    if restore_column.button(say("restore_button"), key="advanced_restore"):
        with st.spinner(say("restoring")):
            try:
                served = restore_default(context.settings.repository, control)
            except ModelImportError as exc:
                outcome = {"ok": False, "message": say("restore_failed", reason=exc)}
            else:
                outcome = {"ok": True, "message": say("restore_ok", path=served)}
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


def _metrics_section(settings, say) -> None:
    st.subheader(say("metrics_heading"))
    # A click reruns the script, and every run takes a new sample.
    st.button(say("refresh"), key="advanced_refresh_metrics")
    try:
        with urllib.request.urlopen(settings.triton_metrics_url, timeout=SERVER_TIMEOUT_S) as response:
            metrics = parse_metrics(response.read().decode("utf-8", errors="replace"))
    except (urllib.error.URLError, OSError) as exc:
        st.warning(say("metrics_unavailable", url=settings.triton_metrics_url, reason=getattr(exc, "reason", exc)))
        return
    if not metrics:
        st.info(say("metrics_empty"))
        return
    samples = st.session_state.setdefault("advanced_metrics_samples", [])
    samples.append({"time": datetime.now(), "metrics": metrics})
    del samples[:-METRICS_SAMPLES_KEPT]

    def average_ms(values: dict, duration: str) -> float:
        requests = values["nv_inference_request_success"]
        return round(values[duration] / requests / 1000, 2) if requests else 0.0

    st.dataframe(pd.DataFrame([{
        say("col_model"): model,
        say("col_requests"): int(values["nv_inference_request_success"]),
        say("col_inferences"): int(values["nv_inference_count"]),
        say("col_queue_ms"): average_ms(values, "nv_inference_queue_duration_us"),
        say("col_compute_ms"): average_ms(values, "nv_inference_compute_infer_duration_us"),
    } for model, values in sorted(metrics.items())]), hide_index=True)
    series = pd.DataFrame(
        [{model: values["nv_inference_request_success"] for model, values in sample["metrics"].items()} for sample in samples],
        index=[sample["time"] for sample in samples],
    )
    st.line_chart(series)
    st.caption(say("chart_caption"))
