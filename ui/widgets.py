"""Widgets more than one tab shows."""

from __future__ import annotations

import streamlit as st

from matting.contract import DEFAULT_NETWORK
from matting.options import MODELS
from ui.context import UiContext
from ui.state import sticky


def model_choice(context: UiContext, name: str) -> str:
    """精细 / 快速: the network for the job, with this server's recent time per photo for each under it
    (in a caption: labels that change between reruns would reset the choice)."""
    model = sticky(st.radio, name, context.language, DEFAULT_NETWORK, context.common("model"), options=MODELS,
                   horizontal=True, format_func=lambda network: context.common(f"model_{network}"),
                   help=context.common("model_help"))
    recent = {network: context.history.recent_average_ms(network) for network in MODELS}
    times = [context.common("model_recent", label=context.common(f"model_{network}"), seconds=ms / 1000)
             for network, ms in recent.items() if ms]
    if times:
        st.caption(" · ".join(times))
    return model
