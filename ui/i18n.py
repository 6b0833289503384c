"""Chinese (the default: most of our users are Chinese-speaking shop owners) and English.

Each tab keeps its own strings as ``{"en": {...}, "zh": {...}}`` and looks them up with :func:`text`;
a missing Chinese string falls back to English rather than showing a key (tests check none is missing).
The language lives in the URL (``?lang=en``), so a reload or a shared link keeps it.
"""

from __future__ import annotations

LANGUAGES = {"zh": "中文", "en": "English"}
DEFAULT_LANGUAGE = "zh"
#: The URL query parameter holding the language.
QUERY_PARAMETER = "lang"
#: The page's ``<html lang>`` for each language (screen readers, fonts, browser translation offers).
HTML_LANG = {"zh": "zh-CN", "en": "en"}

COMMON = {
    "en": {
        "title": "Background removal",
        "subtitle": "Cut-outs, white product shots and ID photos, on your own server",
        "language": "Language",
        "tab_single": "Single image",
        "tab_batch": "Batch",
        "tab_video": "Video",
        "tab_history": "History",
        "tab_advanced": "Advanced",
        "server_down": "The matting service is not answering: it is restarting or not started (`make run` starts it). Try again in a moment.",
        "server_restarting": "The matting service is restarting. This page works again by itself once it is back; try again in a moment.",
        "bad_image": "This file cannot be processed: {reason}",
        "server_fault": "The server failed on this photo (a fault on our side, written to its log). Try again, or try another photo.",
        "unexpected": "Something went wrong on this page (written to its log). Reload the page and try again.",
        "server_status_ok": "Service ready",
        "server_status_down": "Service not reachable",
        "model": "Model",
        "model_u2net": "Fine (U²-Net)",
        "model_u2netp": "Fast (U²-Netp)",
        "model_recent": "{label}: {seconds:.1f} s per photo lately",
        "model_help": "Fine gives the cleaner edges; Fast takes about half the time. Times are this server's recent jobs.",
        "reason_empty": "the file is empty (0 bytes). Choose the photo again.",
        "reason_not_image": "this is not a picture we can read. Save it as JPG or PNG and try again.",
        "reason_too_many_pixels": "the picture is too large (over {megapixels} megapixels). Reduce it and try again.",
        "reason_damaged": "the file is damaged or was not copied completely. Open it on your computer, save it again, and retry.",
        "reason_bad_size": "the picture has no pixels. Choose another file.",
        "reason_webp_too_large": "the picture is too large for WebP (at most 16383 pixels a side). Choose PNG or JPG.",
        "reason_background": "the background picture cannot be read. Choose another background.",
        "reason_option": "one of the chosen options was not accepted. Reset the options and try again.",
        "reason_other": "the server could not read it. Try another JPG or PNG photo.",
        "reason_unavailable": "the matting service was not answering. Try again in a moment.",
        "reason_no_subject": "no subject was found in it, so the layout cannot be made. Choose a photo where the subject stands out.",
        "reason_server_fault": "the server failed on it (a fault on our side, in its log). Try again.",
        "reason_file_too_large": "the file is over the {limit} MB upload limit. Make it smaller and try again.",
        "reason_not_video": "this is not a video we can read, or it is damaged. Send an MP4, MOV, WebM, MKV or GIF file.",
        "reason_video_empty": "the file is empty (0 bytes). Choose the video again.",
        "reason_no_video": "the file holds no picture (sound only, or no frames). Choose a video file.",
        "reason_video_damaged": "the video is damaged or was not copied completely. Export it again and retry.",
        "reason_video_too_large": "the picture is larger than {video_size}. Export it at 4K or less and try again.",
        "reason_video_too_long": "the video lasts more than {minutes} minutes. Cut it shorter and try again.",
        "reason_video_file_too_large": "the file is over the {video_mb} MB limit for videos. Export it smaller and try again.",
        "reason_video_other": "the server could not finish it. Try again, or export the video as MP4 and retry.",
        "upload_drop_one": "Drop a photo here, paste one (Ctrl+V), or",
        "upload_drop_many": "Drop photos or a ZIP here, or",
        "upload_limit": "up to {limit} per file",
        "upload_button": "choose files",
        "upload_more": "add files",
        "upload_refused": "This file was not uploaded: it is over the size limit shown above, or not a file this box takes.",
        "running": "Working…",
        "stop": "Stop",
        "skip_to_content": "Skip to main content",
        "pasted_name": "pasted",
    },
    "zh": {
        "title": "智能抠图",
        "subtitle": "透明背景、电商白底图、证件照，在您自己的服务器上完成",
        "language": "语言",
        "tab_single": "单图处理",
        "tab_batch": "批量处理",
        "tab_video": "视频抠图",
        "tab_history": "历史记录",
        "tab_advanced": "高级设置",
        "server_down": "抠图服务暂无响应：正在重启或尚未启动（运行 `make run` 可启动）。请稍后再试。",
        "server_restarting": "抠图服务正在重启。恢复后本页面会自动可用，请稍后再试。",
        "bad_image": "无法处理该文件：{reason}",
        "server_fault": "服务器处理这张照片时出错（是我们这边的问题，已记入服务器日志）。请重试，或换一张照片。",
        "unexpected": "页面出了点问题（已记入日志）。请刷新页面后再试。",
        "server_status_ok": "服务正常",
        "server_status_down": "无法连接服务",
        "model": "模型",
        "model_u2net": "精细（U²-Net）",
        "model_u2netp": "快速（U²-Netp）",
        "model_recent": "{label}：最近每张约 {seconds:.1f} 秒",
        "model_help": "精细模式边缘更干净；快速模式耗时约为一半。时间为本服务器最近任务的平均耗时。",
        "reason_empty": "文件是空的（0 字节）。请重新选择照片。",
        "reason_not_image": "这不是可以识别的图片。请另存为 JPG 或 PNG 后再试。",
        "reason_too_many_pixels": "图片太大（超过 {megapixels} 百万像素）。请缩小后再试。",
        "reason_damaged": "文件已损坏或没有复制完整。请在电脑上打开并重新保存后再试。",
        "reason_bad_size": "图片没有像素内容。请换一个文件。",
        "reason_webp_too_large": "图片太大，WebP 格式放不下（每边最多 16383 像素）。请选择 PNG 或 JPG。",
        "reason_background": "背景图片无法读取。请换一张背景图片。",
        "reason_option": "所选的某个选项不被接受。请恢复默认选项后再试。",
        "reason_other": "服务器无法读取它。请换一张 JPG 或 PNG 照片再试。",
        "reason_unavailable": "抠图服务当时没有响应。请稍后再试。",
        "reason_no_subject": "照片中没有找到主体，无法排版。请换一张主体清晰的照片。",
        "reason_server_fault": "服务器处理时出错（是我们这边的问题，已记入日志）。请重试。",
        "reason_file_too_large": "文件超过 {limit} MB 的上传上限。请压缩后再试。",
        "reason_not_video": "这不是可以识别的视频，或文件已损坏。请上传 MP4、MOV、WebM、MKV 或 GIF 文件。",
        "reason_video_empty": "文件是空的（0 字节）。请重新选择视频。",
        "reason_no_video": "文件中没有画面（只有声音或没有帧）。请选择视频文件。",
        "reason_video_damaged": "视频已损坏或没有复制完整。请重新导出后再试。",
        "reason_video_too_large": "画面大于 {video_size}。请导出为 4K 或更小的分辨率后再试。",
        "reason_video_too_long": "视频超过 {minutes} 分钟。请剪短后再试。",
        "reason_video_file_too_large": "文件超过视频 {video_mb} MB 的上限。请压缩导出后再试。",
        "reason_video_other": "服务器没能处理完这个视频。请重试，或把视频导出为 MP4 后再试。",
        "upload_drop_one": "把照片拖到这里，或直接粘贴（Ctrl+V），或",
        "upload_drop_many": "把多张照片或 ZIP 压缩包拖到这里，或",
        "upload_limit": "每个文件最大 {limit}",
        "upload_button": "选择文件",
        "upload_more": "添加文件",
        "upload_refused": "该文件未上传：超过上方显示的大小上限，或不是此处支持的文件类型。",
        "running": "处理中…",
        "stop": "停止",
        "skip_to_content": "跳到主要内容",
        "pasted_name": "粘贴的图片",
    },
}


def language_from(value: str | list[str] | None) -> str:
    """The language a URL asks for; anything unknown is the default."""
    if isinstance(value, list):
        value = value[0] if value else None
    return value if value in LANGUAGES else DEFAULT_LANGUAGE


def text(table: dict[str, dict[str, str]], language: str, key: str, **values) -> str:
    strings = table.get(language, {})
    template = strings.get(key) or table["en"][key]
    return template.format(**values) if values else template
