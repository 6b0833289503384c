"""The generated repository: valid ModelConfig protobufs, consistent ensemble wiring, no drift."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from matting.contract import DEFAULT_NETWORK, ENSEMBLE, EXPORTED_BY, SOURCE_SHA256, flipped_ensemble, network_ensemble
from matting.paths import MODEL_REPOSITORY
from serving.repository import build_repository, read_config
from serving.repository.onnx_files import onnx_input_size
from serving.weights import PINNED
from tests.support import check_ensemble_wiring


def test_committed_repository_is_what_the_builder_writes(tmp_path):
    build_repository(tmp_path, with_weights=False)
    generated = sorted(path.relative_to(tmp_path) for path in tmp_path.rglob("*") if path.is_file())
    assert generated, "nothing generated"
    for relative in generated:
        assert (MODEL_REPOSITORY / relative).read_text() == (tmp_path / relative).read_text(), f"{relative} drifted: run `make export`"


def test_default_repository_serves_both_networks_side_by_side():
    assert check_ensemble_wiring(MODEL_REPOSITORY) == ["preprocess", DEFAULT_NETWORK, "postprocess"]
    for network in ("u2net", "u2netp"):
        assert check_ensemble_wiring(MODEL_REPOSITORY, network_ensemble(network)) == ["preprocess", network, "postprocess"]
        assert check_ensemble_wiring(MODEL_REPOSITORY, flipped_ensemble(network_ensemble(network))) == \
            ["preprocess", network, network, "postprocess"], "flip runs the network on the photo and on its mirror"
        config = read_config(MODEL_REPOSITORY / network / "config.pbtxt")
        assert config.model_warmup, "the network must warm up before the first user request"
        assert list(config.input[0].dims) == [3, 320, 320]
    assert not (MODEL_REPOSITORY / "refiner").exists() and not (MODEL_REPOSITORY / "matting_refined").exists()


@pytest.mark.parametrize("name", [ENSEMBLE, flipped_ensemble(ENSEMBLE), network_ensemble("u2net"), network_ensemble("u2netp")])
def test_every_request_input_is_optional_and_reaches_preprocess_first(name):
    """Even the photo is declared optional, so a request without it reaches preprocess, which refuses it
    clearly (Triton's own check ends in "unexpected deadlock"); preprocess sees every input, so a bad
    option is refused before the network runs."""
    ensemble = read_config(MODEL_REPOSITORY / name / "config.pbtxt")
    names = {"image", "bg_image", "kind", "format", "bg_color", "foreground", "refine"}
    assert {tensor.name for tensor in ensemble.input if tensor.optional} == names
    assert len(ensemble.input) == len(names)
    first = ensemble.ensemble_scheduling.step[0]
    assert first.model_name == "preprocess" and set(first.input_map) == names


def test_rebuilding_removes_what_is_no_longer_served(tmp_path):
    for retired in ("refiner", "matting_refined"):  # what the removed refiner left in older repositories
        (tmp_path / retired / "1").mkdir(parents=True)
        (tmp_path / retired / "config.pbtxt").write_text(f'name: "{retired}"')
    build_repository(tmp_path, "u2net", with_weights=False)
    assert (tmp_path / "u2netp").is_dir() and (tmp_path / network_ensemble("u2netp")).is_dir()
    assert not (tmp_path / "refiner").exists() and not (tmp_path / "matting_refined").exists()
    build_repository(tmp_path, "u2net", with_weights=False, alongside=())
    assert not (tmp_path / "u2netp").exists() and not (tmp_path / network_ensemble("u2netp")).exists()


def test_cvunet_is_never_served_without_trained_weights(tmp_path):
    with pytest.raises(ValueError, match="no pretrained weights"):
        build_repository(tmp_path, "cvunet")
    assert not (tmp_path / ENSEMBLE).exists()


def _write_model(path: Path, input_shape, output_shape, op: str = "Identity") -> Path:
    graph = helper.make_graph(
        [helper.make_node(op, ["x"], ["y"])],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, input_shape)],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, output_shape)],
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    return path


def test_onnx_validation_refuses_unusable_files(tmp_path):
    garbage = tmp_path / "garbage.onnx"
    garbage.write_bytes(np.random.default_rng(0).bytes(256))
    with pytest.raises(ValueError, match="not a valid ONNX model"):
        onnx_input_size(garbage)
    wrong_channels = _write_model(tmp_path / "gray.onnx", ["batch", 1, 64, 64], ["batch", 1, 64, 64])
    with pytest.raises(ValueError, match="N×3×S×S"):
        onnx_input_size(wrong_channels)
    rgb_out = _write_model(tmp_path / "rgb.onnx", ["batch", 3, 64, 64], ["batch", 3, 64, 64])
    with pytest.raises(ValueError, match="output shape"):
        onnx_input_size(rgb_out)


@pytest.mark.parametrize("network", ["u2net", "u2netp"])
def test_the_served_networks_are_our_exports_of_the_pinned_weights(network):
    served = onnx.load(str(MODEL_REPOSITORY / network / "1" / "model.onnx"), load_external_data=False)
    metadata = {prop.key: prop.value for prop in served.metadata_props}
    assert served.producer_name == "pytorch", "exported from our PyTorch port, not the published file"
    assert metadata[EXPORTED_BY] == "cvunet.export_onnx"
    assert metadata[SOURCE_SHA256] == PINNED[network].sha256
