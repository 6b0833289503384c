"""The page around the tabs: CSS, the ``<html lang>``, Streamlit's own strings in the chosen language,
and pasting an image into the single-image drop zone (a keyed container named ``paste-target``).

Streamlit does not translate its uploader texts or its status widget; ``assets/page.js`` rewrites
exactly those strings (matched whole, in Streamlit's elements only), so user content is never touched.
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from ui import i18n

ASSETS = Path(__file__).resolve().parent / "assets"
#: The elements whose text page.js may rewrite: the uploaders, the status widget, the skip link.
SCOPES = ("[data-testid='stFileUploader']", "[data-testid='stStatusWidget']", "[data-testid='stSkipToContent']")

_page_script = st.components.v2.component("cvunet_page", js=(ASSETS / "page.js").read_text(encoding="utf-8"))
#: Read once, like the script: every click reruns the page.
_PAGE_STYLE = f"<style>{(ASSETS / 'page.css').read_text(encoding='utf-8')}</style>"


def translation_rules(language: str) -> list[tuple[str, str]]:
    """(regular expression over a whole text node, replacement) for Streamlit's built-in English strings."""
    def say(key: str, **values) -> str:
        return i18n.text(i18n.COMMON, language, key, **values)
    return [
        (r"^Drag and drop (a )?file here$", say("upload_drop_one")),
        (r"^Drag and drop files here$", say("upload_drop_many")),
        (r"^(\S+) per file$", say("upload_limit", limit="$1")),
        (r"^• (.*)$", " · $1"),
        (r"^(Upload|Browse files)$", say("upload_button")),
        (r"^Add files$", say("upload_button")),
        (r"^add icon$", say("upload_more")),
        (r"^Running\.\.\.$", say("running")),
        (r"^Stop$", say("stop")),
        (r"^Skip to main content$", say("skip_to_content")),
    ]


def dress(language: str) -> None:
    """Style the page and hand the page script this language's words (run once per script run)."""
    st.html(_PAGE_STYLE)
    _page_script(key="cvunet_page", height=0, data={
        "lang": i18n.HTML_LANG[language], "scopes": list(SCOPES), "rules": translation_rules(language),
        "refused": i18n.text(i18n.COMMON, language, "upload_refused"),
        "pasted": i18n.text(i18n.COMMON, language, "pasted_name"),
    })
