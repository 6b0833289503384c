"""What every tab needs: settings, the chosen language, the Triton client, the history store,
and one way of turning failures into friendly messages (never a traceback)."""

from __future__ import annotations

from dataclasses import dataclass

import streamlit as st

from client import MattingClient, MattingError, ServerError
from matting.codec import DEFAULT_MAX_PIXELS, ImageError
from matting.contract import IMAGE_SUFFIXES
from matting.layouts import LayoutError
from matting.options import OptionsError, OutputOptions
from ui import i18n
from ui.reasons import reason_key
from ui.history import HistoryStore
from ui.settings import UiSettings


#: What the dashboard's uploaders accept (Streamlit wants suffixes without the dot).
UPLOAD_TYPES = [suffix.lstrip(".") for suffix in IMAGE_SUFFIXES]


@st.cache_resource
def _client(url: str) -> MattingClient:
    return MattingClient(url)


@st.cache_resource
def _history(path: str, limit: int) -> HistoryStore:
    return HistoryStore(path, limit)


@st.cache_data(ttl=300, show_spinner=False)
def _served_model(url: str, ensemble: str) -> tuple[str, str]:
    """Keyed by the ensemble, the only part of the options that decides the network."""
    return _client(url).served_model(ensemble)


def clear_served_model() -> None:
    """After a model swap: the next job asks the server again."""
    _served_model.clear()


@dataclass
class UiContext:
    settings: UiSettings
    language: str

    @property
    def client(self) -> MattingClient:
        return _client(self.settings.triton_grpc_url)

    @property
    def history(self) -> HistoryStore:
        return _history(str(self.settings.history_db), self.settings.history_limit)

    def served_model(self, options: OutputOptions) -> tuple[str, str]:
        """(networks, version) serving ``options``, as Triton says, asked at most every five minutes;
        ("unknown", "unknown") while it cannot say."""
        try:
            return _served_model(self.settings.triton_grpc_url, options.ensemble)
        except Exception:  # noqa: BLE001 - a history row must not fail because metadata is unavailable
            return "unknown", "unknown"

    def text(self, table: dict[str, dict[str, str]], key: str, **values) -> str:
        return i18n.text(table, self.language, key, **values)

    def common(self, key: str, **values) -> str:
        return i18n.text(i18n.COMMON, self.language, key, **values)

    def reason(self, message: str) -> str:
        """The plain sentence for a refusal the server (or the library) explained as ``message``."""
        return self.common(reason_key(message), megapixels=f"{DEFAULT_MAX_PIXELS / 1e6:.0f}",
                           limit=self.settings.max_upload_mb)

    def failure_message(self, exc: Exception) -> str:
        """A sentence for the user: bad input, a server fault, server down, or anything else (logged by Streamlit)."""
        if isinstance(exc, MattingError) and exc.bad_input or isinstance(exc, (ImageError, OptionsError, LayoutError)):
            return self.common("bad_image", reason=self.reason(str(exc)))
        if isinstance(exc, ServerError):
            return self.common("server_fault")
        if isinstance(exc, MattingError):
            return self.common("server_down")
        return self.common("unexpected")

    def show_failure(self, exc: Exception) -> None:
        st.error(self.failure_message(exc))
