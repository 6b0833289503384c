"""End to end through a real embedded Triton: encoded bytes → ensemble → encoded result."""

from __future__ import annotations

import hashlib
import io
import subprocess
import sys
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import onnxruntime as ort
import pytest
import tritonclient.grpc as tritonclient_grpc
import tritonclient.http as tritonclient_http
from PIL import Image
from tritonclient.utils import InferenceServerException

from client import MattingClient, MattingError, RequestError
from client.matting_client import classify
from matting.contract import DEFAULT_NETWORK
from matting.options import OptionsError, OutputOptions
from matting.networks import network_spec, normalised_output, prepare_input
from matting.paths import MODEL_REPOSITORY, PROJECT_ROOT, REMBG_FIXTURES
from matting.refine import full_resolution_matte
from serving.triton_metrics import parse_metrics
from cvunet.synthetic import HELD_OUT_SEEDS, synthetic_sample
from tests import support



@pytest.fixture(scope="module", params=["grpc", "http"])
def client(request, triton):
    url = triton.grpc_url if request.param == "grpc" else triton.http_url.removeprefix("http://")
    with MattingClient(url, protocol=request.param) as matting:
        yield matting


def decode(data: bytes) -> Image.Image:
    return Image.open(io.BytesIO(data))


@pytest.mark.parametrize("network", ["u2net", "u2netp"])
def test_each_model_reproduces_rembg(client, network):
    """The raw served matte of our export matches rembg's output with the same network within 1/255."""
    result = client.remove_background(support.PHOTO.read_bytes(), OutputOptions(model=network))
    cutout = decode(result.data)
    assert (cutout.format, cutout.mode, cutout.size) == ("PNG", "RGBA", (850, 601))
    ours = np.asarray(cutout)[..., 3].astype(float)
    assert (ours == result.alpha).all(), "the alpha output and the PNG's alpha channel disagree"
    rembg = np.asarray(Image.open(REMBG_FIXTURES / f"anime-girl-1.{network}.png"))[..., 3].astype(float)
    difference = np.abs(ours - rembg)
    assert difference.mean() <= 1.0 and np.percentile(difference, 99) <= 8.0, (difference.mean(), np.percentile(difference, 99))
    visible = ours > 0
    assert (np.asarray(cutout)[visible, :3] == np.asarray(support.photo())[visible]).all(), "colours must be the original's"


def test_no_model_named_means_the_default_and_a_bad_name_is_refused(client):
    photo = support.PHOTO.read_bytes()
    default = client.remove_background(photo).alpha
    assert (default == client.remove_background(photo, OutputOptions(model=DEFAULT_NETWORK)).alpha).all()
    assert not (default == client.remove_background(photo, OutputOptions(model="u2netp")).alpha).all()
    with pytest.raises(OptionsError, match="model must be one of u2net, u2netp"):
        OutputOptions.parse(model="isnet")


def test_output_options(client):
    photo = support.PHOTO.read_bytes()
    matte = decode(client.remove_background(photo, OutputOptions(kind="alpha")).data)
    assert matte.mode == "L" and matte.size == (850, 601)
    composite = client.remove_background(photo, OutputOptions.parse(kind="composite", bg_color="#00ff00"))
    image = np.asarray(decode(composite.data))
    assert image.shape == (601, 850, 3)
    assert (image[composite.alpha == 0] == (0, 255, 0)).all()
    webp = client.remove_background(photo, OutputOptions(format="webp"))
    assert webp.media_type == "image/webp" and decode(webp.data).format == "WEBP"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "0 bytes"),
        (b"just text pretending to be a jpeg\n" * 4, "not a supported image"),
        (support.truncated_jpeg(), "truncated or corrupt"),
        (support.png_with_declared_size(20000, 20000), "too large"),
    ],
    ids=["zero-bytes", "text", "truncated-jpeg", "bomb-20000"],
)
def test_bad_inputs_get_clear_errors_and_the_server_keeps_serving(client, data, message):
    with pytest.raises(MattingError, match=message) as refused:
        client.remove_background(data)
    assert refused.value.bad_input, "a bad image is the caller's error (INVALID_ARGUMENT / HTTP 400)"
    assert client.is_ready()
    assert client.remove_background(support.encode(support.photo((64, 48)), "PNG")).alpha.shape == (48, 64)


#: What a decoder library says, which must never reach a user.
LIBRARY_WORDS = ("MAX_TEXT", "Truncated File Read", "PngImagePlugin", "Traceback", "ZeroDivisionError")

#: Requests the server must refuse with INVALID_ARGUMENT before the network runs:
#: (image, options, background picture, words of the error).
REFUSED_BEFORE_THE_NETWORK = {
    "65500x1-as-webp": (support.strip_jpeg, OutputOptions(format="webp"), None,
                        "65500×1 is too large for WebP, which holds at most 16383"),
    "ppm": (support.ppm, OutputOptions(), None, "not a supported image: send JPEG, PNG, WebP, BMP, TIFF or GIF"),
    "png-oversized-text": (support.png_with_oversized_text, OutputOptions(), None, "unreadable image header"),
    "png-cut-in-text": (support.png_cut_in_a_text_chunk, OutputOptions(), None, "unreadable image header"),
    "bg-image-without-composite": (support.one_pixel_png, OutputOptions(), support.one_pixel_png(),
                                   "a background image needs kind=composite"),
    "bg-image-ppm": (support.one_pixel_png, OutputOptions(kind="composite"), support.ppm(),
                     "background image: not a supported image"),
}


def network_runs(triton) -> float:
    """How many images the default network has run, as Triton's metrics say."""
    with urllib.request.urlopen(triton.metrics_url, timeout=10) as response:
        return parse_metrics(response.read().decode())[DEFAULT_NETWORK]["nv_inference_count"]


@pytest.mark.parametrize(("make", "options", "background", "message"), REFUSED_BEFORE_THE_NETWORK.values(),
                         ids=REFUSED_BEFORE_THE_NETWORK.keys())
def test_requests_that_cannot_be_served_are_refused_before_the_network(client, triton, make, options, background, message):
    before = network_runs(triton)
    with pytest.raises(RequestError, match=message) as refused:
        client.remove_background(make(), options, background)
    assert not any(word in str(refused.value) for word in LIBRARY_WORDS), refused.value
    assert network_runs(triton) == before, "refused after the network ran"
    assert client.remove_background(support.one_pixel_png()).alpha.shape == (1, 1)
    assert network_runs(triton) == before + 1, "the metrics must count a served image, or the check above proves nothing"


def test_a_one_pixel_image_is_served_with_the_foreground_estimate(triton):
    """pymatting's estimate divided by zero on it: an INTERNAL error, which the batch client retried."""
    with MattingClient(triton.grpc_url) as matting:
        for options in (OutputOptions(foreground="estimate"), OutputOptions(kind="composite", foreground="estimate", format="webp")):
            result = matting.remove_background(support.one_pixel_png(), options)
            assert decode(result.data).size == (1, 1) and result.alpha.shape == (1, 1), options


def kserve_infer(triton, protocol: str, inputs: dict[str, bytes | str], model: str = "matting"):
    """A raw KServe request, as any client could send it: bytes as UINT8 [1, n], strings as BYTES [1, 1]."""
    triton_client = tritonclient_grpc if protocol == "grpc" else tritonclient_http
    tensors = []
    for name, value in inputs.items():
        if isinstance(value, bytes):
            tensor = triton_client.InferInput(name, [1, len(value)], "UINT8")
            tensor.set_data_from_numpy(np.frombuffer(value, dtype=np.uint8)[np.newaxis])
        else:
            tensor = triton_client.InferInput(name, [1, 1], "BYTES")
            tensor.set_data_from_numpy(np.array([[value.encode()]], dtype=object))
        tensors.append(tensor)
    url = triton.grpc_url if protocol == "grpc" else triton.http_url.removeprefix("http://")
    with triton_client.InferenceServerClient(url) as server:
        return server.infer(model, tensors)


@pytest.mark.parametrize("protocol", ["grpc", "http"])
@pytest.mark.parametrize(
    ("inputs", "message"),
    [({"kind": "rgba"}, "the request has no 'image' input"),
     ({"image": b"photo", "kind": "x" * 1_000_000}, "kind is 1,000,000 bytes long; option values are at most 64"),
     ({"image": b"photo", "bg_color": " " * 1_000_000}, "bg_color is 1,000,000 bytes long"),
     ({"image": b"photo", "kind": "composite", "bg_color": "300,0,0"}, "bg_color '300,0,0' is not a colour"),
     ({"image": b"photo", "kind": "composite", "bg_color": "rgb(300,0,0)"}, "bg_color 'rgb(300,0,0)' is not a colour"),
     ({"image": b"photo", "kind": "sepia" * 12}, "kind must be one of")],
    ids=["no-image", "1mb-kind", "1mb-blank-bg-color", "bg-color-300", "bg-color-rgb-300", "long-kind"],
)
def test_raw_kserve_requests_get_clear_invalid_argument_errors(triton, protocol, inputs, message):
    inputs = {name: support.PHOTO.read_bytes() if value == b"photo" else value for name, value in inputs.items()}
    before = network_runs(triton)
    with pytest.raises(Exception) as refused:  # tritonclient's own exception, classified below
        kserve_infer(triton, protocol, inputs)
    error = classify(refused.value)
    assert isinstance(error, RequestError) and message in str(error), f"{type(error).__name__}: {error}"
    assert len(str(error)) < 200, "the error must not repeat the value"
    assert network_runs(triton) == before, "refused after the network ran"


def test_bad_option_is_a_request_error(client):
    with pytest.raises(MattingError, match="kind must be one of") as refused:
        client.remove_background(support.PHOTO.read_bytes(), OutputOptions(kind="sepia"))
    assert refused.value.bad_input


@pytest.mark.parametrize(
    "make",
    [support.cmyk_jpeg, support.png16, support.palette_png_with_transparency,
     support.grayscale_jpeg, support.rgba_png, support.animated_gif],
    ids=["cmyk", "16-bit", "palette", "grayscale", "rgba", "animated-gif"],
)
def test_unusual_modes_are_matted(client, make):
    data = make()
    expected = Image.open(io.BytesIO(data)).size
    result = client.remove_background(data)
    assert decode(result.data).size == expected and result.alpha.shape == expected[::-1]
    assert result.alpha.max() > result.alpha.min(), "a real matte has foreground and background"


def test_exif_rotation_is_applied_over_the_wire(client):
    data, upright = support.exif_rotated_jpeg()
    assert decode(client.remove_background(data).data).size == upright


def test_garbage_then_real_image_guards_against_numpy_2_in_the_stub(triton):
    """With numpy 2 the 2.51 stub garbles tensors: a real image would fail after the garbage one."""
    with MattingClient(triton.grpc_url) as matting:
        with pytest.raises(MattingError):
            matting.remove_background(bytes(range(256)) * 16)
        assert matting.remove_background(support.PHOTO.read_bytes()).alpha.shape == (601, 850)


def test_concurrent_requests_all_succeed(triton):
    images = [support.encode(support.photo((w, h)), "JPEG") for w, h in [(200, 150), (320, 240), (150, 300), (640, 480)] * 2]

    def matte(data: bytes) -> tuple[int, int]:
        with MattingClient(triton.grpc_url) as matting:
            return matting.remove_background(data).alpha.shape

    with ThreadPoolExecutor(max_workers=4) as pool:
        shapes = list(pool.map(matte, images))
    assert shapes == [Image.open(io.BytesIO(data)).size[::-1] for data in images]


def test_metadata(triton):
    with MattingClient(triton.grpc_url) as matting:
        assert matting.server_metadata()["version"] == "2.51.0"
        names = {tensor["name"] for tensor in matting.model_metadata()["inputs"]}
        assert names == {"image", "bg_image", "kind", "format", "bg_color", "foreground", "refine"}


def _local_matte(image: Image.Image, refine: str, network: str = DEFAULT_NETWORK) -> np.ndarray:
    """The served pipeline recomputed in-process from the repository's ONNX files and the matting library."""
    def run(name: str, **inputs: np.ndarray) -> np.ndarray:
        session = ort.InferenceSession(str(MODEL_REPOSITORY / name / "1" / "model.onnx"), providers=["CPUExecutionProvider"])
        return session.run(None, {key: value[np.newaxis] for key, value in inputs.items()})[0][0]

    spec = network_spec(network)
    raw = run(network, network_input=prepare_input(image, spec))
    return full_resolution_matte(image, normalised_output(raw, spec), refine)


@pytest.mark.parametrize("refine", ["guided", "closed-form"])
def test_refine_modes_serve_what_the_library_computes(client, refine):
    sample = synthetic_sample(HELD_OUT_SEEDS[0])
    data = support.encode(Image.fromarray(sample.image), "PNG")
    plain = client.remove_background(data, OutputOptions(refine="none")).alpha.astype(float)
    served = client.remove_background(data, OutputOptions(refine=refine)).alpha.astype(float)
    expected = _local_matte(Image.fromarray(sample.image), refine).astype(float)
    assert served.shape == expected.shape == (512, 512)
    assert np.abs(served - expected).mean() < 0.5 and np.abs(served - expected).max() <= 8, "not the library's matte"
    assert np.abs(served - plain).mean() > 0.5, f"refine={refine} served the plain matte"


@pytest.mark.parametrize(
    ("model", "refine", "message"),
    [
        ("matting", "sharpen", "refine must be one of"),
        ("matting_u2netp", "refiner", "refine must be one of none, guided, closed-form"),
    ],
)
def test_a_bad_refine_mode_sent_over_kserve_is_a_request_error(triton, model, refine, message):
    photo = support.PHOTO.read_bytes()
    image = tritonclient_grpc.InferInput("image", [1, len(photo)], "UINT8")
    image.set_data_from_numpy(np.frombuffer(photo, dtype=np.uint8)[np.newaxis])
    option = tritonclient_grpc.InferInput("refine", [1, 1], "BYTES")
    option.set_data_from_numpy(np.array([[refine.encode()]], dtype=object))
    with tritonclient_grpc.InferenceServerClient(triton.grpc_url) as control:
        with pytest.raises(InferenceServerException, match=message) as refused:
            control.infer(model, [image, option])
    assert "INVALID_ARGUMENT" in str(refused.value.status())


def test_cli_writes_the_result_and_leaves_the_input_alone(triton, tmp_path):
    source = tmp_path / "photo.jpg"
    source.write_bytes(support.PHOTO.read_bytes())
    before = hashlib.sha256(source.read_bytes()).hexdigest()
    command = [sys.executable, "-m", "client", str(source), "--url", triton.grpc_url]
    done = subprocess.run(command + ["-o", str(tmp_path / "out.png")], cwd=PROJECT_ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert decode((tmp_path / "out.png").read_bytes()).mode == "RGBA"
    done = subprocess.run(command + ["--alpha-only", "-m", "u2netp"], cwd=PROJECT_ROOT, capture_output=True, text=True)
    assert done.returncode == 0 and decode((tmp_path / "photo.matte.png").read_bytes()).mode == "L"
    assert hashlib.sha256(source.read_bytes()).hexdigest() == before
    assert sorted(path.name for path in tmp_path.iterdir()) == ["out.png", "photo.jpg", "photo.matte.png"]


def test_cli_reports_a_bad_file(triton, tmp_path):
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(support.truncated_jpeg())
    done = subprocess.run([sys.executable, "-m", "client", str(bad), "--url", triton.grpc_url],
                          cwd=PROJECT_ROOT, capture_output=True, text=True)
    assert done.returncode == 1 and "truncated or corrupt" in done.stderr
    assert not (tmp_path / "broken.matte.png").exists()


def test_readme_curl_example_works(triton, tmp_path):
    readme = (PROJECT_ROOT / "README.md").read_text()
    block = readme.split("<!-- curl-example: start -->")[1].split("<!-- curl-example: end -->")[0]
    script = block.split("```bash")[1].split("```")[0].replace("http://127.0.0.1:8000", triton.http_url)
    (tmp_path / "photo.jpg").write_bytes(support.PHOTO.read_bytes())
    done = subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=tmp_path, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    cutout = decode((tmp_path / "photo.png").read_bytes())
    assert (cutout.format, cutout.mode, cutout.size) == ("PNG", "RGBA", (850, 601))


def test_foreground_estimate_removes_background_colour_from_soft_edges(client):
    """The composite's semi-transparent pixels carry background colour; the estimate removes it."""
    sample = synthetic_sample(HELD_OUT_SEEDS[3], 256)
    data = support.encode(Image.fromarray(sample.image), "PNG")
    plain = client.remove_background(data)
    estimated = client.remove_background(data, OutputOptions(foreground="estimate"))
    assert (plain.alpha == estimated.alpha).all(), "only colours change"
    soft = (plain.alpha > 25) & (plain.alpha < 230)
    plain_rgb = np.asarray(decode(plain.data))[..., :3].astype(float)
    estimated_rgb = np.asarray(decode(estimated.data))[..., :3].astype(float)
    assert np.abs(estimated_rgb - plain_rgb)[soft].mean() > 1.0
    with pytest.raises(MattingError, match="foreground must be one of") as refused:
        client.remove_background(data, OutputOptions(foreground="magic"))
    assert refused.value.bad_input


def test_background_picture_is_composited_by_the_server(client):
    photo = support.PHOTO.read_bytes()
    background = support.encode(Image.new("RGB", (40, 30), (0, 0, 255)), "PNG")
    result = client.remove_background(photo, OutputOptions(kind="composite"), background)
    image = np.asarray(decode(result.data))
    assert image.shape == (601, 850, 3)
    assert (image[result.alpha == 0] == (0, 0, 255)).all(), "the picture, scaled to cover, replaces the background"
    with pytest.raises(MattingError, match="a background image needs kind=composite") as refused:
        client.remove_background(photo, OutputOptions(), background)
    assert refused.value.bad_input
    with pytest.raises(MattingError, match="background image: not a supported image") as refused:
        client.remove_background(photo, OutputOptions(kind="composite"), b"not a picture")
    assert refused.value.bad_input


def test_served_model_is_what_the_server_says(client):
    assert client.served_model() == (DEFAULT_NETWORK, "1")
    assert client.served_model(OutputOptions(model="u2netp").ensemble) == ("u2netp", "1")


def test_cli_composites_onto_a_background_picture(triton, tmp_path):
    source, background = tmp_path / "photo.jpg", tmp_path / "blue.png"
    source.write_bytes(support.PHOTO.read_bytes())
    background.write_bytes(support.encode(Image.new("RGB", (40, 30), (0, 0, 255)), "PNG"))
    done = subprocess.run([sys.executable, "-m", "client", str(source), "--bg-image", str(background), "--url", triton.grpc_url],
                          cwd=PROJECT_ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    composite = decode((tmp_path / "photo.matte.png").read_bytes())
    assert composite.mode == "RGB" and composite.getpixel((0, 0))[2] > 200
    done = subprocess.run([sys.executable, "-m", "client", str(source), "--bg-image", str(tmp_path / "missing.png")],
                          cwd=PROJECT_ROOT, capture_output=True, text=True)
    assert done.returncode == 2 and "missing.png" in done.stderr


def test_flip_averages_the_mattes_of_the_photo_and_its_mirror(client):
    photo = support.PHOTO.read_bytes()
    plain = client.remove_background(photo, OutputOptions(model="u2netp")).alpha.astype(float)
    flipped = client.remove_background(photo, OutputOptions(model="u2netp", tta="flip")).alpha.astype(float)
    image = Image.open(support.PHOTO).convert("RGB")
    spec = network_spec("u2netp")
    session = ort.InferenceSession(str(MODEL_REPOSITORY / "u2netp" / "1" / "model.onnx"), providers=["CPUExecutionProvider"])
    network_input = prepare_input(image, spec)
    raw, mirrored = (session.run(None, {"network_input": tensor[np.newaxis]})[0][0]
                     for tensor in (network_input, np.ascontiguousarray(network_input[..., ::-1])))
    expected = full_resolution_matte(image, (normalised_output(raw, spec) + normalised_output(mirrored, spec)[:, ::-1]) / 2, "none")
    assert np.abs(flipped - expected).mean() < 0.5 and np.abs(flipped - expected).max() <= 8, "not the averaged matte"
    assert np.abs(flipped - plain).mean() > 0.2, "tta=flip served the plain matte"
    assert client.served_model(OutputOptions(tta="flip").ensemble) == (DEFAULT_NETWORK, "1")
