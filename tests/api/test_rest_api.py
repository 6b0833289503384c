"""The REST front end (``python -m api``) as a real uvicorn process in front of a real embedded Triton."""

from __future__ import annotations

import io
import os
import subprocess
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

import httpx
import numpy as np
import pytest
from PIL import Image

from api.app import DEFAULT_MAX_UPLOAD_BYTES
from launch.processes import free_port
from tests import support
from tests.support import ARTIFACTS

SMALL_UPLOAD_LIMIT = 200_000


@contextmanager
def rest_app(name: str, triton_url: str, **environment: str):
    """Run ``python -m api`` on a free port until the block ends; yields its base URL once it answers."""
    with support.rest_process(name, triton_url, ARTIFACTS / f"video-jobs-{name}", **environment) as rest:
        assert f"serving {rest.url}/api/matting" in rest.log_path.read_text()
        yield rest.url


@pytest.fixture(scope="module")
def api_url(triton):
    with rest_app("default", triton.grpc_url, CVUNET_MAX_UPLOAD_BYTES=str(DEFAULT_MAX_UPLOAD_BYTES)) as url:
        yield url


@pytest.fixture(scope="module")
def small_limit_api_url(triton):
    with rest_app("small-limit", triton.grpc_url, CVUNET_MAX_UPLOAD_BYTES=str(SMALL_UPLOAD_LIMIT)) as url:
        yield url


@pytest.fixture(scope="module")
def no_triton_api_url():
    with rest_app("no-triton", f"127.0.0.1:{free_port()}") as url:
        yield url


def post_image(base_url: str, data: bytes, filename: str = "photo.jpg", **options: str) -> httpx.Response:
    return httpx.post(f"{base_url}/api/matting", files={"image": (filename, data)}, data=options, timeout=120)


def decode(response: httpx.Response) -> Image.Image:
    return Image.open(io.BytesIO(response.content))


def assert_error(response: httpx.Response, status_code: int, fragment: str) -> None:
    assert response.status_code == status_code, response.text[:300]
    assert response.headers["content-type"] == "application/json"
    assert fragment in response.json()["error"]
    assert "Traceback" not in response.text


def assert_healthy(base_url: str) -> None:
    response = httpx.get(f"{base_url}/healthz", timeout=30)
    assert (response.status_code, response.json()) == (200, {"status": "ok", "triton": "ready"})


def test_upload_returns_the_rgba_cutout(api_url):
    response = post_image(api_url, support.PHOTO.read_bytes(), "test.jpg")
    assert response.status_code == 200, response.text[:300]
    assert response.headers["content-type"] == "image/png"
    assert float(response.headers["x-processing-ms"]) > 0
    cutout = decode(response)
    assert (cutout.format, cutout.mode, cutout.size) == ("PNG", "RGBA", (850, 601))
    pixels = np.asarray(cutout)
    visible = pixels[..., 3] > 0
    assert visible.any() and not visible.all(), "a real matte has foreground and background"
    assert (pixels[visible][:, :3] == np.asarray(support.photo())[visible]).all(), "visible colours must be the original's"


def test_curl_command_writes_the_png(api_url, tmp_path):
    (tmp_path / "test.jpg").write_bytes(support.PHOTO.read_bytes())
    command = f'/usr/bin/curl -X POST -F "image=@test.jpg" {api_url}/api/matting > result.png'
    done = subprocess.run(["bash", "-euo", "pipefail", "-c", command], cwd=tmp_path, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    cutout = Image.open(tmp_path / "result.png")
    assert (cutout.format, cutout.mode, cutout.size) == ("PNG", "RGBA", (850, 601))


def test_output_options(api_url):
    photo = support.PHOTO.read_bytes()
    response = post_image(api_url, photo, kind="alpha")
    matte = decode(response)
    assert (response.headers["content-type"], matte.mode, matte.size) == ("image/png", "L", (850, 601))
    composite = np.asarray(decode(post_image(api_url, photo, kind="composite", bg_color="0,255,0")))
    assert composite.shape == (601, 850, 3)
    assert (composite[np.asarray(matte) == 0] == (0, 255, 0)).all()
    decontaminated = post_image(api_url, photo, foreground="estimate")
    assert decontaminated.status_code == 200 and decode(decontaminated).mode == "RGBA"
    webp = post_image(api_url, photo, format="webp")
    assert webp.headers["content-type"] == "image/webp"
    assert (decode(webp).format, decode(webp).mode) == ("WEBP", "RGBA")


@pytest.mark.parametrize(
    ("options", "message"),
    [({"kind": "sepia"}, "kind must be one of rgba, alpha, composite"),
     ({"format": "gif"}, "format must be one of png, webp"),
     ({"kind": "composite", "bg_color": "not-a-colour"}, "is not a colour"),
     ({"kind": "composite", "bg_color": "300,0,0"}, "bg_color '300,0,0' is not a colour"),
     ({"kind": "composite", "bg_color": "rgb(300,0,0)"}, "bg_color 'rgb(300,0,0)' is not a colour"),
     ({"foreground": "magic"}, "foreground must be one of original, estimate"),
     ({"kind": "x" * 900_000}, "kind is 900,000 characters long; option values are at most 64"),
     ({"bg_color": " " * 900_000}, "bg_color is 900,000 characters long")],
    ids=["kind", "format", "bg_color", "bg_color-300", "bg_color-rgb-300", "foreground", "900kb-kind", "900kb-blank-bg_color"],
)
def test_bad_options_are_refused(api_url, options, message):
    response = post_image(api_url, support.PHOTO.read_bytes(), **options)
    assert_error(response, 400, message)
    assert len(response.content) < 300, "the error must not repeat the value"


def _text_named_jpg() -> bytes:
    return b"just text pretending to be a jpeg\n" * 4


def _exif_rotated_jpeg() -> bytes:
    return support.exif_rotated_jpeg()[0]


#: Inputs the service must refuse, with the words the error has to contain.
REFUSED_INPUTS = {
    "zero-bytes": (lambda: b"", "0 bytes"),
    "truncated-jpeg": (support.truncated_jpeg, "truncated or corrupt"),
    "text-named-jpg": (_text_named_jpg, "not a supported image"),
    "bomb-30000": (lambda: support.png_with_declared_size(30000, 30000), "too large"),
    "ppm-named-jpg": (support.ppm, "not a supported image: send JPEG, PNG, WebP, BMP, TIFF or GIF"),
    "png-oversized-text": (support.png_with_oversized_text, "unreadable image header"),
    "png-cut-in-text": (support.png_cut_in_a_text_chunk, "unreadable image header"),
}

#: Awkward but valid inputs, with the upright size of their cut-out.
MATTED_INPUTS = {
    "cmyk": (support.cmyk_jpeg, (160, 120)),
    "16-bit": (support.png16, (160, 120)),
    "grayscale": (support.grayscale_jpeg, (160, 120)),
    "palette-transparency": (support.palette_png_with_transparency, (160, 120)),
    "rgba": (support.rgba_png, (160, 120)),
    "exif-rotated": (_exif_rotated_jpeg, (120, 160)),
    "animated-gif": (support.animated_gif, (96, 64)),
    "animated-webp": (support.animated_webp, (96, 64)),
    "1x1": (support.one_pixel_png, (1, 1)),
    "10000x200": (support.wide_jpeg, (10000, 200)),
}


@pytest.mark.parametrize(("make", "message"), REFUSED_INPUTS.values(), ids=REFUSED_INPUTS.keys())
def test_bad_inputs_get_a_clear_400_and_the_service_keeps_serving(api_url, make, message):
    response = post_image(api_url, make(), "upload.jpg")
    assert_error(response, 400, message)
    assert not any(word in response.text for word in ("MAX_TEXT", "Truncated File Read", "PngImagePlugin"))
    assert_healthy(api_url)


def test_an_image_webp_cannot_hold_is_a_400_and_a_single_pixel_is_matted_with_any_option(api_url):
    """Both were INTERNAL errors, answered 503 as if Triton were down."""
    assert_error(post_image(api_url, support.strip_jpeg(), format="webp"), 400,
                 "65500×1 is too large for WebP, which holds at most 16383 pixels a side: ask for format=png")
    response = post_image(api_url, support.one_pixel_png(), "dot.png", foreground="estimate")
    assert response.status_code == 200, response.text[:300]
    assert decode(response).size == (1, 1)
    assert_healthy(api_url)


@pytest.mark.parametrize(("make", "size"), MATTED_INPUTS.values(), ids=MATTED_INPUTS.keys())
def test_awkward_inputs_are_matted(api_url, make, size):
    response = post_image(api_url, make(), "upload.jpg")
    assert response.status_code == 200, response.text[:300]
    cutout = decode(response)
    assert (cutout.format, cutout.mode, cutout.size) == ("PNG", "RGBA", size)
    assert_healthy(api_url)


def test_missing_or_misused_image_field_is_a_clear_400(api_url):
    assert_error(httpx.post(f"{api_url}/api/matting", data={"kind": "rgba"}), 400, "missing the 'image' field")
    assert_error(httpx.post(f"{api_url}/api/matting"), 400, "missing the 'image' field")
    assert_error(httpx.post(f"{api_url}/api/matting", data={"image": "photo.jpg"}), 400, "the 'image' field must be a file")
    raw = httpx.post(f"{api_url}/api/matting", content=support.PHOTO.read_bytes(), headers={"content-type": "image/jpeg"})
    assert_error(raw, 400, 'curl -F "image=@photo.jpg"')


def test_concurrent_requests_all_succeed(api_url):
    sizes = [(200, 150), (320, 240), (150, 300), (640, 480)] * 2
    uploads = [support.encode(support.photo(size), "JPEG") for size in sizes]
    with ThreadPoolExecutor(max_workers=4) as pool:
        responses = list(pool.map(lambda data: post_image(api_url, data), uploads))
    assert [response.status_code for response in responses] == [200] * len(uploads)
    assert [decode(response).size for response in responses] == sizes


def test_oversize_uploads_are_refused_with_413(small_limit_api_url):
    url = f"{small_limit_api_url}/api/matting"
    message = f"at most {SMALL_UPLOAD_LIMIT:,} bytes"
    oversize = os.urandom(300_000)
    # declared Content-Length: refused before the body is read
    assert_error(post_image(small_limit_api_url, oversize), 413, message)
    # chunked, no Content-Length: refused once the bytes received pass the limit
    multipart = httpx.Request("POST", url, files={"image": ("big.jpg", oversize)})
    body = multipart.read()
    chunked = httpx.post(url, content=(body[start:start + 16384] for start in range(0, len(body), 16384)),
                         headers={"content-type": multipart.headers["content-type"]}, timeout=60)
    assert "content-length" not in chunked.request.headers
    assert_error(chunked, 413, message)
    # one byte over, within the multipart allowance: refused by the count of the image's own bytes
    assert_error(post_image(small_limit_api_url, oversize[: SMALL_UPLOAD_LIMIT + 1]), 413, message)
    assert post_image(small_limit_api_url, support.PHOTO.read_bytes()).status_code == 200
    assert_healthy(small_limit_api_url)


def test_triton_down_is_503(no_triton_api_url):
    assert_error(post_image(no_triton_api_url, support.PHOTO.read_bytes()), 503, "inference server is unavailable")
    health = httpx.get(f"{no_triton_api_url}/healthz", timeout=30)
    assert health.status_code == 503 and health.json()["status"] == "unavailable"


def test_background_picture_field_composites_onto_it(api_url):
    background = support.encode(Image.new("RGB", (40, 30), (0, 0, 255)), "PNG")
    response = httpx.post(f"{api_url}/api/matting", data={"kind": "composite"}, timeout=120,
                          files={"image": ("photo.jpg", support.PHOTO.read_bytes()), "bg_image": ("blue.png", background)})
    assert response.status_code == 200, response.text[:300]
    composite = np.asarray(decode(response))
    assert composite.shape == (601, 850, 3) and composite[0, 0, 2] > 200, "the corner is background: the blue picture"
    refused = httpx.post(f"{api_url}/api/matting", timeout=120,
                         files={"image": ("photo.jpg", support.PHOTO.read_bytes()), "bg_image": ("blue.png", background)})
    assert_error(refused, 400, "a background image needs kind=composite")


def test_model_field_picks_the_network(api_url):
    fast = post_image(api_url, support.PHOTO.read_bytes(), model="u2netp")
    quality = post_image(api_url, support.PHOTO.read_bytes(), model="u2net")
    assert fast.status_code == quality.status_code == 200
    assert np.abs(np.asarray(decode(fast)).astype(int) - np.asarray(decode(quality))).mean() > 0.5, "two different networks"
    assert_error(post_image(api_url, support.PHOTO.read_bytes(), model="birefnet"), 400, "model must be one of u2net, u2netp")


def test_tta_field(api_url):
    assert post_image(api_url, support.PHOTO.read_bytes(), tta="flip", model="u2netp").status_code == 200
    assert_error(post_image(api_url, support.PHOTO.read_bytes(), tta="rotate"), 400, "tta must be one of none, flip")
