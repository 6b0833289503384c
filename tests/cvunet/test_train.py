"""The training pipeline: loss, datasets, coarse-mask simulation, training, resume, refiner export (CPU, tiny)."""

from __future__ import annotations

import json
import logging
import random

import cv2
import numpy as np
import onnx
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader

from cvunet.datasets import (
    CoarseNetwork,
    ForegroundBackgroundFolderDataset,
    ImageAlphaFolderDataset,
    SyntheticMattingDataset,
    simulate_coarse_mask,
)
from cvunet.losses import VGG16_WEIGHTS_FILE, VGG16Features, build_matting_loss, gradient_loss
from cvunet.model import load_checkpoint
from matting.networks import network_spec, normalise_pixels
from cvunet.synthetic import HELD_OUT_SEEDS, synthetic_sample
from cvunet.train import DrawBatches, TrainConfig, main, restore_rng_states, rng_states, train
from cvunet.export_onnx import export_onnx
from tests.support import tiny_cvunet_config

TINY = tiny_cvunet_config()
OVERFIT_SEEDS = range(0, 2)
REFERENCE_STEPS = 12


@pytest.fixture(autouse=True)
def no_cached_vgg(tmp_path, monkeypatch):
    """Point torch hub's cache at an empty folder, so a VGG16 file on the host never changes a result."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))


def tiny_config(out, **overrides) -> TrainConfig:
    values = dict(
        model_config=TINY,
        synthetic_seeds=OVERFIT_SEEDS,
        size=64,
        batch=2,
        steps=REFERENCE_STEPS,
        lr=3e-3,
        warmup_steps=2,
        checkpoint_every=REFERENCE_STEPS // 2,
        eval_every=REFERENCE_STEPS // 2,
        eval_samples=2,
        device="cpu",
        out=out,
    )
    values.update(overrides)
    return TrainConfig(**values)


@pytest.fixture(scope="module")
def reference_run(tmp_path_factory):
    """An uninterrupted tiny run, checkpointed halfway and at the end."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TORCH_HOME", str(tmp_path_factory.mktemp("torch-home")))
        return train(tiny_config(tmp_path_factory.mktemp("reference")))


def fake_vgg16_state_dict(seed: int = 0) -> dict[str, torch.Tensor]:
    """torchvision's VGG16 keys and shapes for the layers used (random values), plus a classifier
    tensor the loader must ignore; ~7 MB instead of the real 528 MB."""
    generator = torch.Generator().manual_seed(seed)
    state_dict = {
        key: torch.randn(value.shape, generator=generator) * 0.05 for key, value in VGG16Features().state_dict().items()
    }
    state_dict["classifier.6.bias"] = torch.zeros(1000)
    return state_dict


def soft_disc(size: int = 64) -> torch.Tensor:
    yy, xx = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    distance = ((yy - size / 2) ** 2 + (xx - size / 2) ** 2).sqrt()
    return (size / 4 - distance).clamp(0, 1).float()[None, None]


def test_loss_is_zero_for_identical_mattes():
    alpha = torch.rand(2, 1, 32, 32)
    total, terms = build_matting_loss()(alpha, alpha.clone())
    assert total.item() == 0.0
    assert terms == {"l1": 0.0, "gradient": 0.0}


def test_gradient_term_reacts_to_blur_not_to_a_uniform_shift():
    sharp = soft_disc()
    blurred = torch.nn.functional.avg_pool2d(sharp, 7, stride=1, padding=3, count_include_pad=False)
    shifted = sharp * 0.8 + 0.1
    assert gradient_loss(blurred, sharp) > 0.005
    assert gradient_loss(shifted, sharp) < gradient_loss(blurred, sharp) / 2
    _, terms = build_matting_loss()(blurred, sharp)
    assert terms["gradient"] > 0 and terms["l1"] > 0


def test_perceptual_term_is_disabled_without_weights_and_says_so(caplog):
    with caplog.at_level(logging.WARNING, logger="cvunet.losses"):
        loss = build_matting_loss()
    assert loss.vgg is None
    assert loss.perceptual_status == "disabled: no local VGG16 weights"
    assert any("perceptual loss disabled" in record.message for record in caplog.records)
    _, terms = loss(torch.rand(1, 1, 32, 32), torch.rand(1, 1, 32, 32))
    assert "perceptual" not in terms


@pytest.mark.parametrize("source", ["--vgg-weights", "torch hub cache"])
def test_perceptual_term_loads_torchvision_vgg16_weights(source, tmp_path, monkeypatch):
    state_dict = fake_vgg16_state_dict()
    if source == "--vgg-weights":
        path = tmp_path / "my-vgg16.pth"
    else:
        monkeypatch.setenv("TORCH_HOME", str(tmp_path / "hub-home"))
        path = tmp_path / "hub-home" / "hub" / "checkpoints" / VGG16_WEIGHTS_FILE
        path.parent.mkdir(parents=True)
    torch.save(state_dict, path)

    loss = build_matting_loss(path if source == "--vgg-weights" else None)
    assert loss.perceptual_status == f"enabled: VGG16 weights {path}"
    assert torch.equal(loss.vgg.features[14].weight, state_dict["features.14.weight"])
    assert not any(p.requires_grad for p in loss.vgg.parameters())
    truth = soft_disc()
    _, same = loss(truth, truth.clone())
    total, different = loss(1 - truth, truth)
    assert same["perceptual"] == 0.0 and different["perceptual"] > 0
    expected = different["l1"] + 1.5 * different["gradient"] + 0.5 * different["perceptual"]
    torch.testing.assert_close(total, expected)


def test_vgg16_weights_of_the_wrong_shape_or_missing_are_rejected(tmp_path):
    state_dict = fake_vgg16_state_dict()
    state_dict["features.5.weight"] = torch.zeros(128, 32, 3, 3)
    torch.save(state_dict, tmp_path / "wrong.pth")
    with pytest.raises(ValueError, match="not a torchvision VGG16 state_dict"):
        build_matting_loss(tmp_path / "wrong.pth")
    with pytest.raises(FileNotFoundError, match="VGG16 weights not found"):
        build_matting_loss(tmp_path / "absent.pth")


def test_synthetic_dataset_refuses_held_out_seeds_and_normalises_like_the_model():
    with pytest.raises(ValueError, match="held-out"):
        SyntheticMattingDataset(range(HELD_OUT_SEEDS.start - 5, HELD_OUT_SEEDS.start + 5), 64, False)
    dataset = SyntheticMattingDataset(range(7, 8), 64, refiner=False)
    inputs, alpha = dataset[3]
    sample = synthetic_sample(7, 64)
    assert inputs.shape == (3, 64, 64) and alpha.shape == (1, 64, 64)
    np.testing.assert_array_equal(inputs.numpy(), normalise_pixels(sample.image, network_spec("cvunet")))
    np.testing.assert_array_equal(alpha[0].numpy(), sample.alpha)
    white = normalise_pixels(np.full((1, 1, 3), 255, np.uint8), network_spec("cvunet"))[:, 0, 0]
    np.testing.assert_allclose(white, [(1 - 0.485) / 0.229, (1 - 0.456) / 0.224, (1 - 0.406) / 0.225], rtol=1e-6)


def test_draws_are_reproducible_and_independent_of_workers():
    dataset = SyntheticMattingDataset(range(0, 1000), 64, refiner=True, seed=5)
    first, again = dataset[11], dataset[11]
    assert torch.equal(first[0], again[0]) and torch.equal(first[1], again[1])
    assert first[0].shape == (4, 64, 64)
    sampler = DrawBatches(start=2, stop=5, batch=2)
    serial = list(DataLoader(dataset, batch_sampler=sampler))
    parallel = list(DataLoader(dataset, batch_sampler=sampler, num_workers=2))
    assert len(serial) == 3
    assert all(torch.equal(a[0], b[0]) and torch.equal(a[1], b[1]) for a, b in zip(serial, parallel))
    assert torch.equal(serial[0][0][1], dataset[5][0])


def test_refiner_draws_take_u2netp_masks_as_served():
    """With a coarse network, a draw's mask is that network's output as the served refiner receives it."""
    network = CoarseNetwork("u2netp")
    samples = [synthetic_sample(seed, 64) for seed in range(3)]
    dataset = SyntheticMattingDataset(range(0, 3), 64, refiner=True, seed=1, coarse_network=network, coarse_share=1.0)
    flips = set()
    for index in range(8):
        inputs, alpha = dataset[index]
        assert inputs.shape == (4, 64, 64)
        [(sample, flip)] = [(sample, flip) for sample in samples for flip in (False, True)
                            if np.allclose(alpha[0].numpy(), sample.alpha[:, ::-1] if flip else sample.alpha, atol=1e-3)]
        expected = network.mask(sample.image)
        np.testing.assert_allclose(inputs[3].numpy(), expected[:, ::-1] if flip else expected, atol=1e-3)
        flips.add(flip)
    assert flips == {False, True}
    assert torch.equal(dataset[5][0], dataset[5][0]), "draws must be reproducible"
    simulated = SyntheticMattingDataset(range(0, 3), 64, refiner=True, seed=1, coarse_network=network, coarse_share=0.0)
    network_masks = [network.mask(sample.image) for sample in samples]
    assert not any(np.allclose(simulated[index][0][3].numpy(), mask, atol=1e-3) for index in range(4) for mask in network_masks)


def test_coarse_mask_is_a_degraded_but_correlated_copy_of_the_truth():
    alpha = synthetic_sample(3, 128).alpha
    original = alpha.copy()
    mask = simulate_coarse_mask(alpha, np.random.default_rng(0))
    np.testing.assert_array_equal(alpha, original)
    assert mask.shape == alpha.shape and mask.dtype == np.float32
    assert mask.min() >= 0.0 and mask.max() <= 1.0
    assert np.abs(mask - alpha).mean() > 0.005
    assert np.corrcoef(mask.ravel(), alpha.ravel())[0, 1] > 0.7
    np.testing.assert_array_equal(mask, simulate_coarse_mask(alpha, np.random.default_rng(0)))
    assert not np.array_equal(mask, simulate_coarse_mask(alpha, np.random.default_rng(1)))


def write_image(path, array) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)


def matting_folder(root, layout: str, stems=("a", "b", "c")):
    """A tiny dataset folder: colour noise images and disc mattes of a few sizes."""
    rng = np.random.default_rng(0)
    image_folder = "image" if layout == "image-alpha" else "fg"
    for index, stem in enumerate(stems):
        height, width = 60 + 10 * index, 80 - 10 * index
        alpha = np.zeros((height, width), np.uint8)
        cv2.circle(alpha, (width // 2, height // 2), min(height, width) // 3, 255, -1)
        write_image(root / image_folder / f"{stem}.jpg", rng.integers(0, 255, (height, width, 3), dtype=np.uint8))
        write_image(root / "alpha" / f"{stem}.png", cv2.GaussianBlur(alpha, (5, 5), 0))
    if layout == "fg-alpha-bg":
        for stem in ("sky", "wall"):
            write_image(root / "bg" / f"{stem}.png", rng.integers(0, 255, (90, 70, 3), dtype=np.uint8))
    return root


@pytest.mark.parametrize(
    "layout, dataset_class",
    [("image-alpha", ImageAlphaFolderDataset), ("fg-alpha-bg", ForegroundBackgroundFolderDataset)],
)
def test_folder_datasets_give_augmented_training_pairs(layout, dataset_class, tmp_path):
    dataset = dataset_class(matting_folder(tmp_path, layout), size=32, refiner=True, seed=1)
    items = [dataset[index] for index in range(6)]
    for inputs, alpha in items:
        assert inputs.shape == (4, 32, 32) and alpha.shape == (1, 32, 32)
        assert inputs.dtype == torch.float32 and torch.isfinite(inputs).all()
        assert 0 <= alpha.min() and alpha.max() <= 1 and alpha.max() > 0.5
    assert torch.equal(dataset[4][0], items[4][0])
    assert sorted(dataset.file_index(index) for index in range(3)) == [0, 1, 2], "each epoch visits every file once"
    assert not torch.equal(items[0][0], items[3][0]), "the same file is cropped and jittered differently"


def test_folder_datasets_explain_bad_folders(tmp_path):
    root = matting_folder(tmp_path / "mismatch", "image-alpha")
    (root / "alpha" / "b.png").rename(root / "alpha" / "bee.png")
    expected = r"do not match: 1 in image/ without alpha: \['b'\]; 1 in alpha/ without image: \['bee'\]"
    with pytest.raises(ValueError, match=expected):
        ImageAlphaFolderDataset(root)
    empty = matting_folder(tmp_path / "empty", "image-alpha")
    for path in (empty / "alpha").iterdir():
        path.unlink()
    with pytest.raises(ValueError, match="holds no images"):
        ImageAlphaFolderDataset(empty)
    no_backgrounds = matting_folder(tmp_path / "nobg", "image-alpha", stems=("a",))
    (no_backgrounds / "image").rename(no_backgrounds / "fg")
    with pytest.raises(ValueError, match="bg is not a folder"):
        ForegroundBackgroundFolderDataset(no_backgrounds)


def test_training_reduces_the_loss_and_records_the_run(reference_run):
    history = reference_run["loss_history"]
    assert len(history) == REFERENCE_STEPS
    assert np.mean(history[-3:]) < 0.9 * np.mean(history[:3])
    assert reference_run["perceptual"] == "disabled: no local VGG16 weights"
    assert [evaluation["step"] for evaluation in reference_run["evaluations"]] == [6, 12]
    assert all(evaluation["SAD"] > 0 and evaluation["Grad"] > 0 for evaluation in reference_run["evaluations"])

    out = reference_run["args"]["out"]
    with open(f"{out}/run.json") as file:
        assert json.load(file) == json.loads(json.dumps(reference_run))
    payload = torch.load(reference_run["checkpoint"], weights_only=True)
    metadata = payload["metadata"]
    assert metadata["step"] == REFERENCE_STEPS
    assert metadata["perceptual"] == "disabled: no local VGG16 weights"
    assert metadata["losses"] == reference_run["final_losses"]
    assert metadata["evaluation"] == reference_run["evaluations"][-1]
    assert metadata["args"]["lr"] == 3e-3
    assert load_checkpoint(reference_run["checkpoint"]).config == TINY


def test_resume_continues_exactly_like_an_uninterrupted_run(reference_run, tmp_path):
    halfway = f"{reference_run['args']['out']}/checkpoint-{REFERENCE_STEPS // 2:06d}.pt"
    resumed = train(tiny_config(tmp_path, resume=halfway))
    assert resumed["start_step"] == REFERENCE_STEPS // 2
    assert resumed["loss_history"] == reference_run["loss_history"][REFERENCE_STEPS // 2 :]
    assert resumed["final_losses"] == reference_run["final_losses"]
    assert resumed["evaluations"] == reference_run["evaluations"][1:]
    expected, actual = (
        torch.load(run["checkpoint"], weights_only=True)["state_dict"] for run in (reference_run, resumed)
    )
    assert expected.keys() == actual.keys()
    assert all(torch.equal(expected[key], actual[key]) for key in expected)
    states = [torch.load(run["training_state"], weights_only=True) for run in (reference_run, resumed)]
    assert states[0]["scheduler"] == states[1]["scheduler"]
    assert states[0]["optimizer"]["param_groups"] == states[1]["optimizer"]["param_groups"]


def test_rng_states_survive_a_weights_only_round_trip(tmp_path):
    torch.save(rng_states(torch.device("cpu")), tmp_path / "rng.pt")
    expected = (random.random(), np.random.random(), torch.rand(1))
    restore_rng_states(torch.load(tmp_path / "rng.pt", weights_only=True), torch.device("cpu"))
    assert (random.random(), np.random.random(), torch.rand(1)) == expected


def test_resume_refuses_a_different_network(reference_run, tmp_path):
    with pytest.raises(ValueError, match="this run asks for"):
        train(tiny_config(tmp_path, resume=reference_run["checkpoint"], refiner=True))


def test_refiner_trains_on_a_folder_and_exports_a_four_channel_onnx(tmp_path):
    data = matting_folder(tmp_path / "data", "fg-alpha-bg")
    run = train(
        tiny_config(tmp_path / "run", refiner=True, data_dir=data, layout="fg-alpha-bg", steps=2, batch=1, eval_every=1)
    )
    assert [evaluation["step"] for evaluation in run["evaluations"]] == [1, 2]
    model = load_checkpoint(run["checkpoint"])
    assert model.config.in_channels == 4
    report = export_onnx(model, tmp_path / "refiner.onnx", batch_verify=1)
    assert report["in_channels"] == 4
    (graph_input,) = onnx.load(str(tmp_path / "refiner.onnx")).graph.input
    assert [dim.dim_value for dim in graph_input.type.tensor_type.shape.dim][1:] == [4, 64, 64]


def test_command_line_trains_a_preset(tmp_path, capsys):
    out = tmp_path / "cli"
    arguments = ["--preset", "lite", "--size", "64", "--batch", "1", "--steps", "1", "--device", "cpu"]
    assert main([*arguments, "--out", str(out)]) == 0
    summary = json.loads((out / "run.json").read_text())
    assert summary["args"]["preset"] == "lite" and summary["steps"] == 1
    assert (out / "checkpoint-000001.pt").is_file() and (out / "training-state-000001.pt").is_file()
    assert "run.json" in capsys.readouterr().out
    assert main(["--data-dir", str(tmp_path), "--layout", "image-alpha", "--out", str(out)]) == 2
