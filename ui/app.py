"""The dashboard: ``streamlit run ui/app.py`` (``make run`` starts it on 127.0.0.1:7860)."""

from __future__ import annotations

import sys
from pathlib import Path

# `streamlit run ui/app.py` puts ui/ on sys.path, not the project root.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import streamlit as st  # noqa: E402

from ui import i18n  # noqa: E402
from ui.context import UiContext  # noqa: E402
from ui.settings import UiSettings  # noqa: E402
from ui.tabs import advanced, batch, history, single  # noqa: E402


def main() -> None:
    st.set_page_config(page_title="CV-UNet Matting", page_icon="✂️", layout="wide")
    language = st.sidebar.selectbox(
        i18n.text(i18n.COMMON, st.session_state.get("language", i18n.DEFAULT_LANGUAGE), "language"),
        options=list(i18n.LANGUAGES), format_func=i18n.LANGUAGES.get, key="language",
    )
    context = UiContext(UiSettings.from_env(), language)
    st.title(context.common("title"))
    ready = context.client.is_ready()
    status = "server_status_ok" if ready else "server_status_down"
    (st.sidebar.success if ready else st.sidebar.error)(context.common(status, url=context.settings.triton_grpc_url))
    if not ready:
        st.warning(context.common("server_restarting"))
    tabs = st.tabs([context.common(key) for key in ("tab_single", "tab_batch", "tab_history", "tab_advanced")])
    for tab, module in zip(tabs, (single, batch, history, advanced)):
        with tab:
            module.render(context)


main()
