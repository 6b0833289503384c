"""Fine-tuning the pretrained U²-Netp on a tiny image/alpha folder: the loss on the folder falls, the run
resumes exactly, and the checkpoint is exported, verified against PyTorch and served by a real Triton."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from client import MattingClient
from cvunet.checkpoints import load_network
from cvunet.losses import build_matting_loss
from cvunet.synthetic import synthetic_sample
from cvunet.train import TrainConfig, main, train
from cvunet.u2net import INPUT_SIZE, load_pretrained
from matting import contract
from matting.codec import decode_image
from matting.networks import alpha_from_output, network_spec, prepare_input
from matting.options import OutputOptions
from serving.repository import build_repository
from serving.repository.onnx_files import exported_from
from serving.weights import PINNED, pretrained_checkpoint
from tests import support
from tests.support import start_triton

STEPS = 6
#: Training samples: not the held-out synthetic seeds, of several shapes (the server squashes every photo to 320²).
SAMPLES = {"portrait": (7, (240, 320)), "landscape": (11, (360, 270)), "square": (23, (300, 300))}


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    root = tmp_path_factory.mktemp("photos")
    (root / "image").mkdir()
    (root / "alpha").mkdir()
    for stem, (seed, size) in SAMPLES.items():
        sample = synthetic_sample(seed, 320)
        Image.fromarray(sample.image).resize(size, Image.BICUBIC).save(root / "image" / f"{stem}.jpg", quality=95)
        Image.fromarray((sample.alpha * 255).round().astype(np.uint8)).resize(size, Image.BICUBIC).save(root / "alpha" / f"{stem}.png")
    return root


def config(folder, out, **overrides) -> TrainConfig:
    values = dict(init="u2netp", data_dir=folder, steps=STEPS, batch=1, lr=2e-4, checkpoint_every=STEPS // 2,
                  out=out, device="cpu", seed=3)
    return TrainConfig(**(values | overrides))


@pytest.fixture(scope="module")
def run(folder, tmp_path_factory):
    return train(config(folder, tmp_path_factory.mktemp("run")))


def folder_loss(model, folder) -> float:
    """The training loss of ``model``'s fused matte on every folder photo, prepared as the server prepares it."""
    loss_fn, spec, losses = build_matting_loss(), network_spec("u2netp"), []
    for stem in SAMPLES:
        image = Image.open(folder / "image" / f"{stem}.jpg")
        truth = np.asarray(Image.open(folder / "alpha" / f"{stem}.png").resize((INPUT_SIZE, INPUT_SIZE), Image.BILINEAR))
        with torch.no_grad():
            predicted = model(torch.from_numpy(prepare_input(image, spec))[None])
            losses.append(loss_fn(predicted, torch.from_numpy(truth / 255.0).float()[None, None])[0].item())
    return float(np.mean(losses))


def test_fine_tuning_lowers_the_loss_on_the_folder_and_records_its_origin(run, folder):
    pretrained = load_pretrained(pretrained_checkpoint("u2netp"))
    tuned = load_network(run["checkpoint"])
    before, after = folder_loss(pretrained, folder), folder_loss(tuned, folder)
    assert after < 0.8 * before, (before, after)
    assert set(run["final_losses"]) == {"total", "l1", "gradient", "side"}
    assert run["model_config"] == {"network": "u2netp"} and run["perceptual"] == "disabled: no local VGG16 weights"
    assert tuned.source_sha256 == PINNED["u2netp"].sha256
    assert tuned.fine_tuned == f"{STEPS} steps on {folder}"
    assert json.loads((Path(run["args"]["out"]) / "run.json").read_text())["loss_history"] == run["loss_history"]


def test_a_resumed_fine_tuning_ends_where_an_uninterrupted_one_does(run, folder, tmp_path):
    halfway = run["checkpoint"].replace(f"{STEPS:06d}", f"{STEPS // 2:06d}")
    resumed = train(config(folder, tmp_path, resume=halfway))
    assert resumed["start_step"] == STEPS // 2
    assert resumed["loss_history"] == run["loss_history"][STEPS // 2 :]
    expected, actual = (torch.load(path, weights_only=True)["state_dict"] for path in (run["checkpoint"], resumed["checkpoint"]))
    assert all(torch.equal(expected[key], actual[key]) for key in expected)


def test_a_resume_of_another_network_is_refused(run, folder, tmp_path):
    with pytest.raises(ValueError, match="this run asks for u2net"):
        train(config(folder, tmp_path, init="u2net", resume=run["checkpoint"]))


def test_triton_serves_the_fine_tuned_export(run, tmp_path):
    repository = build_repository(tmp_path / "repository", "u2netp", checkpoint=run["checkpoint"], alongside=())
    served_file = repository / "u2netp" / "1" / "model.onnx"
    assert exported_from(served_file) == {
        contract.EXPORTED_BY: "cvunet.export_onnx",
        contract.SOURCE_SHA256: PINNED["u2netp"].sha256,
        contract.FINE_TUNED: f"{STEPS} steps on {run['args']['data_dir']}",
    }
    data = support.encode(support.photo(), "JPEG")
    server = start_triton(repository, "fine-tuned")
    try:
        with MattingClient(server.grpc_url) as client:
            served = client.remove_background(data, OutputOptions(model="u2netp")).alpha
    finally:
        server.stop()
    image, spec = decode_image(data), network_spec("u2netp")
    network_input = torch.from_numpy(prepare_input(image, spec))[None]
    with torch.no_grad():
        tuned, pretrained = (model(network_input).numpy()[0] for model in (
            load_network(run["checkpoint"]), load_pretrained(pretrained_checkpoint("u2netp"))))
    expected = alpha_from_output(tuned, spec, image.size).astype(int)
    assert np.abs(served.astype(int) - expected).max() <= 1, "Triton serves what PyTorch computes"
    assert np.abs(alpha_from_output(pretrained, spec, image.size).astype(int) - expected).mean() > 1, "and it is not the pretrained matte"


def test_a_checkpoint_is_served_only_as_its_own_network(run, tmp_path):
    with pytest.raises(ValueError, match="holds a u2netp network, not u2net"):
        build_repository(tmp_path / "repository", "u2net", checkpoint=run["checkpoint"])


def test_command_line_fine_tunes_with_the_folder_layout_read_off_the_folder(folder, tmp_path, caplog):
    assert main(["--init", "u2netp", "--data-dir", str(folder), "--steps", "1", "--batch", "1", "--device", "cpu",
                 "--out", str(tmp_path / "cli")]) == 0
    summary = json.loads((tmp_path / "cli" / "run.json").read_text())
    assert summary["args"]["init"] == "u2netp" and summary["steps"] == 1
    assert main(["--init", "u2netp", "--out", str(tmp_path / "nodata")]) == 2
    assert main(["--init", "u2netp", "--data-dir", str(folder), "--size", "512", "--out", str(tmp_path / "size")]) == 2
    errors = caplog.text
    assert "fine-tuning learns from your own photos: pass --data-dir" in errors
    assert "u2netp is served at 320²" in errors
