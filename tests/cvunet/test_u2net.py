"""The U²-Net family as PyTorch modules: the ports of the published weights match the published ONNX
files under ONNX Runtime on real photos, and our export matches the port."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from PIL import Image, ImageOps

from cvunet.export_onnx import export_onnx
from cvunet.u2net import INPUT_SIZE, U2Net, load_pretrained, port_onnx_weights, save_pretrained
from matting import contract
from matting.networks import network_spec, prepare_input
from serving.weights import PINNED, pretrained_checkpoint
from tests import support


def real_photos() -> list[Image.Image]:
    """The fixture photo, its mirror image and a crop of the subject: real pixels, different framings."""
    photo = support.photo()
    return [photo, ImageOps.mirror(photo), photo.crop((200, 0, 650, 450))]


@pytest.fixture(scope="module", params=sorted(PINNED))
def ported(request):
    return request.param, load_pretrained(pretrained_checkpoint(request.param))


def test_port_matches_the_published_file_on_real_photos(ported):
    network, model = ported
    session = ort.InferenceSession(str(PINNED[network].path), providers=["CPUExecutionProvider"])
    for photo in real_photos():
        x = prepare_input(photo, network_spec(network))[np.newaxis]
        expected = session.run(None, {session.get_inputs()[0].name: x})  # the published file takes batch 1
        with torch.no_grad():
            outputs = model.side_outputs(torch.from_numpy(x))
        assert np.abs(outputs[0].numpy() - expected[0]).max() <= 1e-4, "the fused matte"
        for side, published in zip(outputs[1:], expected[1:]):
            assert np.abs(side.numpy() - published).max() <= 2e-4


def test_parameter_counts_are_the_papers():
    assert sum(parameter.numel() for parameter in U2Net("u2net").parameters()) == 43_981_069
    assert sum(parameter.numel() for parameter in U2Net("u2netp").parameters()) == 1_125_485


def test_a_file_of_the_other_network_is_refused():
    with pytest.raises(ValueError, match="does not fit u2net's"):
        port_onnx_weights(U2Net("u2net"), PINNED["u2netp"].path)


def test_checkpoint_round_trip(tmp_path):
    torch.manual_seed(0)
    model = U2Net("u2netp").eval()
    loaded = load_pretrained(save_pretrained(model, tmp_path / "port.pt", source_sha256="ab" * 32))
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        assert torch.equal(model(x), loaded(x))
    assert loaded.source_sha256 == "ab" * 32
    (tmp_path / "other.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="not a ported U²-Net checkpoint"):
        load_pretrained(tmp_path / "other.pt")


def test_export_matches_the_port_and_records_its_source(tmp_path):
    model = load_pretrained(pretrained_checkpoint("u2netp"))
    report = export_onnx(model, tmp_path / "u2netp.onnx")
    assert report["max_abs_diff"] <= 1e-4 and report["input_size"] == INPUT_SIZE and report["verified_batch"] == 2
    exported = onnx.load(tmp_path / "u2netp.onnx")
    metadata = {prop.key: prop.value for prop in exported.metadata_props}
    assert metadata[contract.EXPORTED_BY] == "cvunet.export_onnx"
    assert metadata[contract.SOURCE_SHA256] == PINNED["u2netp"].sha256
    assert [output.name for output in exported.graph.output] == ["alpha"], "the fused matte only"
