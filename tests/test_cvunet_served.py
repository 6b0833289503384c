"""A (tiny, untrained) CV-UNet through export → repository → real Triton: the path a trained one takes."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest
import torch

from client import MattingClient
from cvunet.imageops import decode_image
from cvunet.model import CVUNetConfig, build_cvunet, save_checkpoint
from cvunet.networks import alpha_from_output, network_spec, prepare_input
from export.build_repository import build_repository
from tests import image_cases
from tests.conftest import start_triton
from tests.test_repository import check_ensemble_wiring

TINY = CVUNetConfig(widths=(8, 8, 16, 16, 16), rdb_layers=2, rdb_growth=8, aspp_channels=16, input_size=64)


@pytest.fixture(scope="module")
def cvunet_repository(tmp_path_factory):
    torch.manual_seed(0)
    checkpoint = save_checkpoint(build_cvunet(TINY), tmp_path_factory.mktemp("checkpoint") / "tiny.pt", note="test")
    return build_repository(tmp_path_factory.mktemp("repository"), "cvunet", checkpoint=checkpoint)


def test_repository_serves_cvunet(cvunet_repository):
    assert check_ensemble_wiring(cvunet_repository) == ["preprocess", "cvunet", "postprocess"]
    assert not (cvunet_repository / "u2netp").exists()


def test_cvunet_served_by_triton_matches_onnx_runtime(cvunet_repository):
    data = image_cases.encode(image_cases.photo((200, 150)), "JPEG")
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
