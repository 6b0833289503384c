"""Chinese (the original product's language) and English, chosen in the sidebar.

Each tab keeps its own strings as ``{"en": {...}, "zh": {...}}`` and looks them up with
:func:`text`; a missing Chinese string falls back to English rather than showing a key.
"""

from __future__ import annotations

LANGUAGES = {"zh": "中文", "en": "English"}
DEFAULT_LANGUAGE = "zh"

COMMON = {
    "en": {
        "title": "CV-UNet Universal Matting",
        "language": "Language",
        "tab_single": "Single image",
        "tab_batch": "Batch",
        "tab_history": "History",
        "tab_advanced": "Advanced",
        "server_down": "The inference server at {url} is not answering: it is restarting, or not started (`make run` starts it). Try again in a moment.",
        "server_restarting": "The matting service is restarting. This page works again by itself once it is back; try again in a moment.",
        "bad_image": "This file cannot be processed: {reason}",
        "server_fault": "The server failed on this photo (a fault on our side, written to its log). Try again, or try another photo.",
        "unexpected": "Something went wrong: {reason}",
        "server_status_ok": "Triton ready at {url}",
        "server_status_down": "Triton not reachable at {url}",
        "model": "Model",
        "model_u2net": "Quality (U²-Net)",
        "model_u2netp": "Fast (U²-Netp)",
        "model_recent": "{label}: {seconds:.1f} s per photo lately",
        "model_help": "U²-Net gives the better matte; U²-Netp is about twice as fast. Times are this server's recent jobs.",
    },
    "zh": {
        "title": "CV-UNet 通用抠图",
        "language": "语言",
        "tab_single": "单图处理",
        "tab_batch": "批量处理",
        "tab_history": "历史记录",
        "tab_advanced": "高级设置",
        "server_down": "推理服务器 {url} 暂无响应：正在重启，或尚未启动（`make run` 可启动）。请稍后再试。",
        "server_restarting": "抠图服务正在重启。恢复后本页面会自动可用，请稍后再试。",
        "bad_image": "无法处理该文件：{reason}",
        "server_fault": "服务器处理这张照片时出错（是我们这边的问题，已记入服务器日志）。请重试，或换一张照片。",
        "unexpected": "处理出错：{reason}",
        "server_status_ok": "Triton 已就绪：{url}",
        "server_status_down": "无法连接 Triton：{url}",
        "model": "模型",
        "model_u2net": "精细（U²-Net）",
        "model_u2netp": "快速（U²-Netp）",
        "model_recent": "{label}：最近每张约 {seconds:.1f} 秒",
        "model_help": "U²-Net 抠图效果更好；U²-Netp 速度约快一倍。时间为本服务器最近任务的平均耗时。",
    },
}


def text(table: dict[str, dict[str, str]], language: str, key: str, **values) -> str:
    strings = table.get(language, {})
    template = strings.get(key) or table["en"][key]
    return template.format(**values) if values else template
