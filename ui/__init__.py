"""The Streamlit dashboard: single image, batch, history and advanced settings (zh / en).

Rendering only: each tab builds an ``OutputOptions`` from its widgets and calls ``client`` (matting
on Triton), ``serving.admin`` (model swaps) and ``matting`` (previews, folders); no tab imports another.
"""
