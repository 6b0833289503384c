"""Choices that survive a language switch and a hidden widget.

A Streamlit radio or selectbox remembers its value by its *label* in the browser, so translating the
labels loses the choice, and a widget not drawn in a run loses its state. Each choice therefore lives
under its own name in the session (``choice.<name>``); the widget drawing it gets a key per language,
seeded from that choice, and writes every change back.
"""

from __future__ import annotations

from typing import Any, Callable

import streamlit as st


def widget_key(name: str, language: str) -> str:
    """The key of ``name``'s widget on the ``language`` page (tests address widgets by it)."""
    return f"{name}.{language}"


def choice(name: str, default: Any = None) -> Any:
    """The current choice for ``name`` (``default`` before the user made one)."""
    return st.session_state.get(f"choice.{name}", default)


def set_choice(name: str, value: Any) -> None:
    st.session_state[f"choice.{name}"] = value


def sticky(widget: Callable[..., Any], name: str, language: str, default: Any, *args, **kwargs) -> Any:
    """Draw ``widget(*args, key=…, **kwargs)`` showing the remembered choice for ``name``; returns the value.

    Options a widget no longer offers fall back to ``default``.
    """
    key = widget_key(name, language)
    value = choice(name, default)
    options = kwargs.get("options", args[1] if len(args) > 1 else None)
    offered = list(options) if options is not None else None
    if offered is not None and value not in offered:
        value = default
    if key not in st.session_state or offered is not None and st.session_state[key] not in offered:
        st.session_state[key] = value

    def remember() -> None:
        set_choice(name, st.session_state[key])

    value = widget(*args, key=key, on_change=remember, **kwargs)
    set_choice(name, value)
    return value
