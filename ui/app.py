"""The dashboard: ``streamlit run ui/app.py`` (``make run`` starts it on 127.0.0.1:7860)."""

from __future__ import annotations

import sys
from pathlib import Path

# `streamlit run ui/app.py` puts ui/ on sys.path, not the project root.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import streamlit as st  # noqa: E402

from ui import i18n, page  # noqa: E402
from ui.context import UiContext  # noqa: E402
from ui.settings import UiSettings  # noqa: E402
from ui.tabs import advanced, batch, history, single, video  # noqa: E402


def chosen_language() -> str:
    """The language switch, top right (reachable on a phone without the sidebar), kept in the URL."""
    if "language" not in st.session_state:
        st.session_state["language"] = i18n.language_from(st.query_params.get(i18n.QUERY_PARAMETER))
    language = st.session_state["language"]
    st.segmented_control(i18n.text(i18n.COMMON, language, "language"), list(i18n.LANGUAGES), format_func=i18n.LANGUAGES.get,
                         key="language", required=True, label_visibility="collapsed")
    language = st.session_state["language"]
    st.query_params[i18n.QUERY_PARAMETER] = language
    return language


def main() -> None:
    st.set_page_config(page_title="CV-UNet", page_icon="✂️", layout="wide")
    settings = UiSettings.from_env()
    title_column, language_column = st.columns([5, 1], vertical_alignment="center")
    with language_column:
        language = chosen_language()
    context = UiContext(settings, language)
    page.dress(language)
    ready = context.client.is_ready()
    with title_column:
        st.title(context.common("title"))
        st.caption(f"{context.common('subtitle')} · {context.common('server_status_ok' if ready else 'server_status_down')}")
    if not ready:
        st.warning(context.common("server_restarting"))
    tabs = st.tabs([context.common(key) for key in ("tab_single", "tab_batch", "tab_video", "tab_history", "tab_advanced")])
    for tab, module in zip(tabs, (single, batch, video, history, advanced)):
        with tab:
            module.render(context)


main()
