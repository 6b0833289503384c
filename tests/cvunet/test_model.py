"""CV-UNet architecture, presets and checkpoint format (CPU, small inputs only)."""

import dataclasses

import pytest
import torch

from cvunet.model import (
    PRESETS,
    AttentionGate,
    DoubleConv,
    ResidualDenseBlock,
    build_cvunet,
    count_parameters,
    load_checkpoint,
    save_checkpoint,
)
from tests.support import tiny_cvunet_config

TINY = tiny_cvunet_config()


@pytest.fixture(autouse=True)
def seeded():
    torch.manual_seed(0)


def test_full_preset_has_about_47m_parameters():
    model = build_cvunet("full")
    assert 46_500_000 <= count_parameters(model) <= 47_500_000
    assert model.config.input_size == 1024


def test_lite_preset_has_at_most_5m_parameters():
    model = build_cvunet("lite")
    assert 3_000_000 <= count_parameters(model) <= 5_000_000
    assert model.config.input_size == 512


def test_unknown_preset_is_rejected():
    with pytest.raises(ValueError, match="unknown preset"):
        build_cvunet("huge")


def test_config_rejects_input_size_not_multiple_of_32():
    with pytest.raises(ValueError, match="multiple of 32"):
        dataclasses.replace(TINY, input_size=100)


@pytest.mark.parametrize("config, shape", [(TINY, (2, 3, 64, 96)), (PRESETS["lite"], (1, 3, 64, 64))])
def test_forward_gives_alpha_in_unit_range(config, shape):
    model = build_cvunet(config).eval()
    with torch.no_grad():
        alpha = model(torch.randn(shape))
    assert alpha.shape == (shape[0], 1, *shape[2:])
    assert alpha.min() >= 0 and alpha.max() <= 1


def test_four_channel_refiner_input():
    model = build_cvunet(TINY, in_channels=4).eval()
    assert model.config.in_channels == 4
    image = torch.randn(2, 3, 64, 64)
    coarse_mask = torch.rand(2, 1, 64, 64)
    with torch.no_grad():
        alpha = model(torch.cat([image, coarse_mask], dim=1))
    assert alpha.shape == (2, 1, 64, 64)
    with pytest.raises(ValueError, match="expected input N x 4"):
        model(image)


def test_an_untrained_refiner_returns_its_coarse_mask_and_learns_corrections():
    """The refiner adds its head's output to the mask's logit; the head starts at zero."""
    model = build_cvunet(TINY, in_channels=4).eval()
    coarse_mask = torch.rand(2, 1, 64, 64)
    inputs = torch.cat([torch.randn(2, 3, 64, 64), coarse_mask], dim=1)
    with torch.no_grad():
        torch.testing.assert_close(model(inputs), coarse_mask.clamp(1e-3, 1 - 1e-3))
        torch.nn.init.constant_(model.head.bias, 2.0)  # a correction: "more opaque everywhere"
        corrected = model(inputs)
        assert (corrected > coarse_mask).all() and (corrected - coarse_mask).max() > 0.3


def test_refiner_is_the_compact_preset():
    refiner = build_cvunet("refiner").eval()
    assert refiner.config.in_channels == 4 and count_parameters(refiner) < count_parameters(build_cvunet("lite")) / 2


@pytest.mark.parametrize("height, width", [(48, 64), (64, 80), (16, 16)])
def test_size_not_multiple_of_32_is_rejected(height, width):
    model = build_cvunet(TINY).eval()
    with pytest.raises(ValueError, match="multiples of 32"):
        model(torch.randn(1, 3, height, width))


def test_deep_levels_use_residual_dense_blocks():
    model = build_cvunet(TINY)
    has_rdb = [any(isinstance(m, ResidualDenseBlock) for m in level.modules()) for level in model.encoder]
    assert has_rdb == [False, False, True, True, True]
    assert all(isinstance(level, DoubleConv) for level in model.encoder[:2])
    decoder_has_rdb = [any(isinstance(m, ResidualDenseBlock) for m in stage.modules()) for stage in model.decoder]
    assert decoder_has_rdb == [True, True, True, False, False]


def test_batch_of_one_trains():
    model = build_cvunet(TINY).train()
    alpha = model(torch.randn(1, 3, 64, 64))
    alpha.mean().backward()
    assert all(p.grad is not None for p in model.parameters())


def test_attention_gate_scales_skip_by_alpha_in_open_unit_interval():
    gate = AttentionGate(gate_channels=6, skip_channels=4, inter_channels=2)
    gating, skip = torch.randn(2, 6, 8, 8), torch.randn(2, 4, 8, 8)
    alpha = gate.coefficients(gating, skip)
    assert alpha.shape == (2, 1, 8, 8)
    assert alpha.min() > 0 and alpha.max() < 1
    gated = gate(gating, skip)
    assert gated.shape == skip.shape
    torch.testing.assert_close(gated, skip * alpha)


def test_every_skip_connection_is_gated():
    model = build_cvunet(TINY).eval()
    gated_shapes = []
    for module in model.modules():
        if isinstance(module, AttentionGate):
            module.register_forward_hook(lambda _module, _inputs, output: gated_shapes.append(output.shape))
    with torch.no_grad():
        model(torch.randn(1, 3, 64, 64))
    assert gated_shapes == [(1, 16, 4, 4), (1, 16, 8, 8), (1, 16, 16, 16), (1, 8, 32, 32), (1, 8, 64, 64)]


def test_checkpoint_round_trip_gives_identical_outputs(tmp_path):
    model = build_cvunet(TINY, in_channels=4).eval()
    path = save_checkpoint(model, tmp_path / "tiny.pt", epoch=3, note="unit test")
    assert [p.name for p in tmp_path.iterdir()] == ["tiny.pt"]

    restored = load_checkpoint(path)
    assert restored.config == model.config
    assert not restored.training
    inputs = torch.rand(2, 4, 64, 64)
    with torch.no_grad():
        assert torch.equal(restored(inputs), model(inputs))
    payload = torch.load(path, weights_only=True)
    assert payload["format"] == "cvunet-checkpoint-v1"
    assert payload["metadata"] == {"epoch": 3, "note": "unit test"}


def test_loading_a_non_checkpoint_is_rejected(tmp_path):
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"definitely not a checkpoint")
    with pytest.raises(ValueError, match="not a CV-UNet checkpoint"):
        load_checkpoint(garbage)

    plain_state_dict = tmp_path / "state_dict.pt"
    torch.save(build_cvunet(TINY).state_dict(), plain_state_dict)
    with pytest.raises(ValueError, match="not a CV-UNet checkpoint"):
        load_checkpoint(plain_state_dict)
