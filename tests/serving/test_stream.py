"""``matting_stream`` through a real embedded Triton: raw frames in over gRPC streaming, one matte per frame, in
order, for several streams at once; bad frames refused one by one; a client that leaves frees the model.

Frames are a bright disc on a dark background (what photo-trained networks segment), placed differently in
every frame and stream, so each matte shows which frame it belongs to. Most tests use U²-Netp, the fast network.
"""

from __future__ import annotations

import importlib
import io
import json
import queue
import sys
import time
import types
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import tritonclient.grpc as tritonclient_grpc
from PIL import Image
from tritonclient.utils import InferenceServerException, np_to_triton_dtype

from client import MattingClient, RequestError, ServerError, ServerUnavailable
from client.matting_client import stream_error
from matting import contract
from matting.options import OutputOptions
from matting.paths import MODEL_REPOSITORY
from matting.temporal import STRENGTH
from serving.admin_key import control_client
from serving.repository import read_config
from tests.video_clips import iou, plain_frame

SIZE = (200, 150)
FAST = OutputOptions(model="u2netp")
#: Measured: the networks' mattes of the disc have an IoU of … per frame; neighbouring frames' discs overlap
#: with an IoU of 0.47 at most, so a matte this close to its disc is that frame's.
MIN_IOU = 0.8


def disc(center: tuple[int, int], radius: int = 24) -> tuple[np.ndarray, np.ndarray]:
    """(RGB frame, its alpha) with the disc at ``center``."""
    rows, columns = np.mgrid[0:SIZE[1], 0:SIZE[0]]
    alpha = np.where((columns - center[0]) ** 2 + (rows - center[1]) ** 2 <= radius**2, 255, 0).astype(np.uint8)
    return plain_frame(alpha), alpha


def flicker(mattes: list[np.ndarray]) -> float:
    """Mean absolute change of the matte between consecutive frames (0–255)."""
    return float(np.mean([np.abs(after.astype(float) - before).mean() for before, after in zip(mattes, mattes[1:])]))


def execution_counts(triton, model: str) -> tuple[int, int]:
    """(frames, executions) the model has run: fewer executions than frames means it got batches."""
    with control_client(triton.grpc_url, triton.admin_key_file) as control:  # statistics need the key
        stats = control.get_inference_statistics(model, as_json=True)["model_stats"][0]
    return int(stats.get("inference_count", 0)), int(stats.get("execution_count", 0))


def test_the_stream_is_decoupled_batched_and_runs_one_instance():
    config = read_config(MODEL_REPOSITORY / contract.STREAM / "config.pbtxt")
    assert config.backend == "python" and config.model_transaction_policy.decoupled
    assert config.HasField("dynamic_batching")
    assert sum(group.count for group in config.instance_group) == 1, "one instance sees each stream in order"
    for network in contract.PRETRAINED_NETWORKS:
        assert config.max_batch_size <= read_config(MODEL_REPOSITORY / network / "config.pbtxt").max_batch_size
    assert "serving.stream import StreamStep" in (MODEL_REPOSITORY / contract.STREAM / "1" / "model.py").read_text()


def test_concurrent_streams_keep_frame_order_and_are_batched_within_the_network_batch(triton):
    """The stream model takes the frames queued meanwhile as one batch; a network gets at most ``network_batch``."""
    clips = {stream: [disc((30 + 14 * index, 40 + 35 * stream)) for index in range(8)] for stream in range(3)}
    network_batch = int(read_config(MODEL_REPOSITORY / contract.STREAM / "config.pbtxt").parameters["network_batch"].string_value)
    before, stream_before = execution_counts(triton, "u2netp"), execution_counts(triton, contract.STREAM)

    def matte(clip):
        with MattingClient(triton.grpc_url) as matting:
            return [result.alpha for result in matting.stream([frame for frame, _ in clip], FAST)]

    with ThreadPoolExecutor(max_workers=len(clips)) as pool:
        mattes = dict(zip(clips, pool.map(matte, clips.values())))
    for stream, clip in clips.items():
        ious = [iou(matte, alpha) for matte, (_, alpha) in zip(mattes[stream], clip)]
        print(f"stream {stream} IoU per frame:", [round(value, 3) for value in ious])
        assert len(ious) == len(clip) and min(ious) >= MIN_IOU, ious
    frames, executions = (after - start for after, start in zip(execution_counts(triton, "u2netp"), before))
    streamed, batches = (after - start for after, start in zip(execution_counts(triton, contract.STREAM), stream_before))
    print(f"{streamed} frames in {batches} stream executions, {executions} network executions")
    assert streamed == frames == 24 and batches < streamed
    assert frames / network_batch <= executions <= frames


def test_rgba_and_composite_frames_come_back_raw(triton):
    frame, _ = disc((100, 75))
    with MattingClient(triton.grpc_url) as matting:
        [rgba] = matting.stream([frame], FAST)
        [composite] = matting.stream([frame], OutputOptions.parse(model="u2netp", kind="composite", bg_color="#00ff00"))
        [alpha] = matting.stream([frame], OutputOptions(model="u2netp", kind="alpha"))
    assert rgba.image.shape == (150, 200, 4) and (rgba.image[..., 3] == rgba.alpha).all()
    assert composite.image.shape == (150, 200, 3) and (composite.image[composite.alpha == 0] == (0, 255, 0)).all()
    assert alpha.image is None and (alpha.alpha == rgba.alpha).all()


def test_the_model_option_picks_the_network_and_matches_the_image_pipeline(triton):
    frame, truth = disc((100, 75))
    png = io.BytesIO()
    Image.fromarray(frame).save(png, "PNG")
    with MattingClient(triton.grpc_url) as matting:
        [fast] = matting.stream([frame], FAST)
        [quality] = matting.stream([frame], OutputOptions(model="u2net"))
        [default] = matting.stream([frame])
        image_matte = matting.remove_background(png.getvalue(), OutputOptions(model="u2net")).alpha
    assert iou(fast.alpha, truth) >= MIN_IOU and iou(quality.alpha, truth) >= MIN_IOU
    assert (default.alpha == quality.alpha).all(), "no model named means the server's default, U²-Net"
    assert not (fast.alpha == quality.alpha).all()
    assert (quality.alpha == image_matte).all(), "the same preparation and upsampling as a single image"


def test_on_a_plain_stream_a_bad_frame_gets_its_error_and_the_others_their_mattes(triton):
    good, truth = disc((100, 75))
    frames = [good, np.dstack([good, truth]), good, good.astype(np.float32), good]
    answers: queue.Queue = queue.Queue()
    client = tritonclient_grpc.InferenceServerClient(triton.grpc_url)
    client.start_stream(lambda result, error: answers.put((result, error)))
    model = tritonclient_grpc.InferInput("model", [1, 1], "BYTES")
    model.set_data_from_numpy(np.array([[b"u2netp"]], dtype=object))
    for index, pixels in enumerate(frames):
        tensor = tritonclient_grpc.InferInput(contract.FRAME, [1, *pixels.shape], np_to_triton_dtype(pixels.dtype))
        tensor.set_data_from_numpy(pixels[np.newaxis])
        client.async_stream_infer(contract.STREAM, [tensor, model], request_id=str(index))
    got = [answers.get(timeout=60) for _ in frames]
    client.stop_stream()
    client.close()
    served = {int(result.get_response().id): result.as_numpy(contract.ALPHA)[0] for result, error in got if error is None}
    assert sorted(served) == [0, 2, 4] and all(iou(alpha, truth) >= MIN_IOU for alpha in served.values())
    errors = sorted(str(error) for _, error in got if error is not None)
    print(errors)
    assert len(errors) == 2
    assert "this one has 4 channels" in errors[0] + errors[1]
    assert "data-type is 'FP32', but model 'matting_stream' expects 'UINT8'" in errors[0] + errors[1]


def test_the_client_raises_a_refused_frame_in_its_place(triton):
    good, truth = disc((100, 75))
    with MattingClient(triton.grpc_url) as matting:
        results = matting.stream([good, good, np.dstack([good, truth]), good], FAST)
        assert next(results).alpha.shape == next(results).alpha.shape == (150, 200)
        with pytest.raises(RequestError, match="this one has 4 channels"):
            next(results)
        results = matting.stream([good, good.astype(np.float32), good], FAST)
        assert next(results).alpha.shape == (150, 200)
        with pytest.raises(RequestError, match="frame 1: a frame is uint8"):
            next(results)
        assert len(list(matting.stream([good], FAST))) == 1, "the next stream is served"


def test_a_client_that_leaves_mid_stream_does_not_hold_the_model(triton):
    frames = [disc((30 + 8 * index, 75))[0] for index in range(16)]
    with MattingClient(triton.grpc_url, timeout=60) as matting:
        results = matting.stream(frames)  # U²-Net, the slow network: frames are still in flight when it leaves
        next(results)
        results.close()  # the frames in flight are cancelled
        started = time.perf_counter()
        assert len(list(matting.stream(frames[:2], FAST))) == 2
    print(f"the next stream took {time.perf_counter() - started:.1f} s")


def test_smoothing_calms_a_still_noisy_clip(triton):
    frame, _ = disc((100, 75))
    noise = np.random.default_rng(0).normal(0.0, 12.0, (6, *frame.shape))
    clip = [np.clip(frame + grain, 0, 255).astype(np.uint8) for grain in noise]
    with MattingClient(triton.grpc_url) as matting:
        plain = [result.alpha for result in matting.stream(clip, FAST)]
        smoothed = [result.alpha for result in matting.stream(clip, FAST, smooth=True)]
    print(f"flicker {flicker(plain):.3f} → {flicker(smoothed):.3f}")
    assert (smoothed[0] == plain[0]).all(), "the first frame has nothing to average with"
    assert flicker(smoothed) < flicker(plain)


STEP_MODULES = ("serving.requests", "serving.steps", "serving.stream")


@pytest.fixture
def stream_step(monkeypatch):
    """A StreamStep outside Triton, for its smoothing state (the networks are not called)."""
    utils = types.ModuleType("triton_python_backend_utils")
    utils.TRITONSERVER_RESPONSE_COMPLETE_FINAL, utils.Logger = 1, None
    monkeypatch.setitem(sys.modules, "triton_python_backend_utils", utils)
    for name in STEP_MODULES:
        monkeypatch.delitem(sys.modules, name, raising=False)
    module = importlib.import_module("serving.stream")
    step = module.StreamStep()
    parameters = {"network": "u2netp", "input_size": "320", "networks": "u2net,u2netp", "network_batch": "2"}
    config = {"parameters": {key: {"string_value": value} for key, value in parameters.items()}}
    step.initialize({"model_config": json.dumps(config)})
    yield module, step
    for name in STEP_MODULES:  # imported over the stand-in: gone again
        sys.modules.pop(name, None)


def test_smoothing_state_follows_each_stream_and_is_dropped(stream_step, monkeypatch):
    module, step = stream_step
    still, _ = disc((100, 75))

    def smoothed(stream_id: str, index: int, value: float) -> float:
        frame = module.Frame(still, FAST, "u2netp", None, False, stream_id, index, True)
        return float(step._smoothed(frame, np.full((320, 320), value, np.float32)).mean())

    assert smoothed("a", 0, 0.5) == 0.5, "a stream's first frame is taken as it is"
    assert smoothed("b", 0, 0.0) == 0.0
    averaged = STRENGTH * 0.5 + (1 - STRENGTH) * 0.3
    assert smoothed("a", 1, 0.3) == pytest.approx(averaged), "the same frame again and a flicker of the matte"
    assert smoothed("a", 3, 0.3) == pytest.approx(0.3), "after a missing frame the stream starts over"
    assert list(step.streams) == ["b", "a"], "least recently used first"
    monkeypatch.setattr(module, "MAX_STREAMS", 1)
    step._forget_old_streams()
    assert list(step.streams) == ["a"]
    monkeypatch.setattr(module, "STREAM_IDLE_S", 0.0)
    step._forget_old_streams()
    assert not step.streams, "an idle stream's state is dropped"


def test_a_network_gets_at_most_network_batch_frames_at_once(stream_step, monkeypatch):
    """Queued frames are grouped per network and sent in requests of at most ``network_batch`` (2 here), in order;
    a frame refused while read keeps its error in its place."""
    module, step = stream_step
    sent = []

    def run_network(network, batch):
        sent.append((network, len(batch)))
        return batch[:, :1] + (100 if network == "u2net" else 0)  # each output tells its frame and network

    monkeypatch.setattr(step, "_run_network", run_network)
    frames = [module.Frame(None, OutputOptions(), network, np.full((3, 4, 4), index, np.float32), False, None, None, False)
              for index, network in enumerate(["u2netp", "u2net", "u2netp", "u2netp", "u2net", "u2netp"])]
    refused = ValueError("a bad frame")
    outputs = step._network_outputs([*frames[:3], refused, *frames[3:]])
    assert sent == [("u2netp", 2), ("u2netp", 2), ("u2net", 2)]
    assert outputs[3] is refused
    answered = [output for output in outputs if output is not refused]
    assert [float(output[0, 0, 0]) for output in answered] == [0, 101, 2, 3, 104, 5]


def test_stream_errors_are_told_apart_by_their_status_or_else_their_text(stream_step):
    """On a working stream a frame's error carries only its text; the model's own faults all read the same."""
    internal = sys.modules["serving.requests"].INTERNAL_MESSAGE
    assert isinstance(stream_error(InferenceServerException(msg=internal)), ServerError)
    assert isinstance(stream_error(InferenceServerException(msg="a frame is H×W×3 RGB; this one has 4 channels")), RequestError)
    lost = InferenceServerException(msg="Socket closed", status="StatusCode.UNAVAILABLE")
    assert isinstance(stream_error(lost), ServerUnavailable)
