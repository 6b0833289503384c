"""A (tiny, untrained) CV-UNet through export → repository → real Triton: the path a trained one takes."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest
import torch

from client import MattingClient
from matting.codec import decode_image
from cvunet.model import build_cvunet, save_checkpoint
from matting.networks import alpha_from_output, network_spec, prepare_input
from serving.repository import build_repository
from tests import support
from tests.support import tiny_cvunet_config, start_triton
from tests.support import check_ensemble_wiring

TINY = tiny_cvunet_config()


@pytest.fixture(scope="module")
def cvunet_repository(tmp_path_factory):
    torch.manual_seed(0)
    checkpoint = save_checkpoint(build_cvunet(TINY), tmp_path_factory.mktemp("checkpoint") / "tiny.pt", note="test")
    return build_repository(tmp_path_factory.mktemp("repository"), "cvunet", checkpoint=checkpoint)


def test_repository_serves_cvunet(cvunet_repository):
    assert check_ensemble_wiring(cvunet_repository) == ["preprocess", "cvunet", "postprocess"]
    assert not (cvunet_repository / "u2netp").exists()


def test_cvunet_served_by_triton_matches_onnx_runtime(cvunet_repository):
    data = support.encode(support.photo((200, 150)), "JPEG")
    server = start_triton(cvunet_repository, "cvunet")
    try:
        with MattingClient(server.grpc_url) as client:
            served = client.remove_background(data).alpha
    finally:
        server.stop()
    spec = network_spec("cvunet", TINY.input_size)
    image = decode_image(data)
    session = ort.InferenceSession(str(cvunet_repository / "cvunet" / "1" / "model.onnx"), providers=["CPUExecutionProvider"])
    output = session.run(None, {session.get_inputs()[0].name: prepare_input(image, spec)[np.newaxis]})[0][0]
    expected = alpha_from_output(output, spec, image.size)
    assert served.shape == (150, 200)
    assert np.abs(served.astype(int) - expected).max() <= 1
