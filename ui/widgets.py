"""Widgets more than one tab shows."""

from __future__ import annotations

import streamlit as st

from matting.contract import DEFAULT_NETWORK
from matting.options import MODELS
from ui.context import UiContext


def model_choice(context: UiContext, key: str) -> str:
    """精细 / 快速: the network for the job, with this server's recent time per photo for each under it
    (in a caption: labels that change between reruns would reset the choice)."""
    model = st.radio(context.common("model"), MODELS, index=MODELS.index(DEFAULT_NETWORK), horizontal=True, key=key,
                     format_func=lambda name: context.common(f"model_{name}"), help=context.common("model_help"))
    recent = {name: context.history.recent_average_ms(name) for name in MODELS}
    times = [context.common("model_recent", label=context.common(f"model_{name}"), seconds=ms / 1000)
             for name, ms in recent.items() if ms]
    if times:
        st.caption(" · ".join(times))
    return model
