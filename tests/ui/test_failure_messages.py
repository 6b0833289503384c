"""Failures in the user's words: every refusal the image library and the options can raise maps to its own
plain sentence (never the library's English), and each kind of failure gets its own message."""

from __future__ import annotations

import pytest
from PIL import Image

from client import RequestError, ServerError, ServerUnavailable
from matting.codec import ImageError, check_encodable, decode_image
from matting.layouts import LayoutError, ProductLayout, product_photo
from matting.options import OptionsError, OutputOptions
from tests import support
from ui import i18n
from ui.context import UiContext
from ui.reasons import engineer_text, reason_key
from ui.settings import UiSettings


def refusal(make) -> str:
    with pytest.raises((ImageError, OptionsError, LayoutError)) as caught:
        make()
    return str(caught.value)


LIBRARY_REFUSALS = {
    "empty": (lambda: decode_image(b""), "reason_empty"),
    "text": (lambda: decode_image(b"this is not an image"), "reason_not_image"),
    "truncated": (lambda: decode_image(support.truncated_jpeg()), "reason_damaged"),
    "huge header": (lambda: decode_image(support.png_with_declared_size(20000, 20000)), "reason_too_many_pixels"),
    "oversized text chunk": (lambda: decode_image(support.png_with_oversized_text()), "reason_damaged"),
    "webp side": (lambda: check_encodable((20000, 10), "webp"), "reason_webp_too_large"),
    "bad colour": (lambda: OutputOptions.parse(kind="composite", bg_color="nope"), "reason_option"),
    "bad kind": (lambda: OutputOptions.parse(kind="sideways"), "reason_option"),
    "no subject": (lambda: product_photo(Image.new("RGBA", (8, 8)), ProductLayout()), "reason_no_subject"),
}


@pytest.mark.parametrize("name", LIBRARY_REFUSALS)
def test_every_library_refusal_has_its_own_plain_reason(name):
    make, key = LIBRARY_REFUSALS[name]
    assert reason_key(refusal(make)) == key


@pytest.mark.parametrize(("error", "key"), [
    (RequestError("unreadable image header: the file is damaged"), "bad_image"),
    (ServerError("INTERNAL: boom"), "server_fault"),
    (ServerUnavailable("connection refused"), "server_down"),
    (RuntimeError("a bug"), "unexpected"),
])
@pytest.mark.parametrize("language", i18n.LANGUAGES)
def test_each_kind_of_failure_gets_its_own_sentence_without_library_text(monkeypatch, language, error, key):
    monkeypatch.setenv("TRITON_GRPC_URL", "127.0.0.1:1")
    message = UiContext(UiSettings.from_env(), language).failure_message(error)
    assert message.startswith(i18n.COMMON[language][key].split("{")[0].split("：")[0].split(":")[0])
    assert str(error) not in message and "header" not in message


@pytest.mark.parametrize(("error", "key"), [
    (ServerUnavailable("connection refused"), "reason_unavailable"),
    (ServerUnavailable("inference server unavailable: 1 of 1 down"), "reason_unavailable"),
    (ServerError("INTERNAL: boom"), "reason_server_fault"),
    (RequestError("not a supported image: send JPEG"), "reason_not_image"),
])
def test_a_recorded_failure_reads_back_as_its_reason(error, key):
    assert reason_key(engineer_text(error)) == key


def test_both_languages_have_every_common_string():
    assert set(i18n.COMMON["zh"]) == set(i18n.COMMON["en"])
