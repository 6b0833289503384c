"""Train CV-UNet (or its 4-channel refiner) on synthetic composites or a matting folder, or fine-tune
the pretrained U²-Net / U²-Netp on your own photos.

    python -m cvunet.train --preset lite|full|refiner [--refiner] [--coarse simulated|u2netp] [--coarse-share 0.75]
                           [--data synthetic | --data-dir DIR [--layout image-alpha|fg-alpha-bg]]
                           [--size 512] [--batch 4] [--steps N] [--lr 3e-4] [--out runs/NAME] [--resume CHECKPOINT]
                           [--synthetic-seeds N] [--seed 0] [--vgg-weights PATH] [--device auto|cpu|cuda]
    python -m cvunet.train --init u2net|u2netp --data-dir DIR [--steps N] [--lr 5e-5] [--out runs/NAME] …

``--init`` starts from the pinned pretrained weights (serving.weights, ported by cvunet.u2net) and
trains on whole photos squashed to 320², as the server prepares them, with the loss of cvunet.losses
on the fused matte plus its side outputs; ``make export NETWORK=u2net CHECKPOINT=runs/NAME/checkpoint-NNNNNN.pt``
then serves the result under that network's name. Without ``--layout`` the folder's layout is read off
its subfolders (``image/`` or ``fg/``).

AdamW with a linear warm-up into a cosine decay over ``--steps``; mixed precision (autocast + GradScaler)
on CUDA only. Every ``--checkpoint-every`` steps and at the end, ``--out`` gets a model checkpoint
(``checkpoint-NNNNNN.pt``, cvunet.model format, servable with ``make export``) and the matching
``training-state-NNNNNN.pt`` (optimizer, scheduler, scaler, RNG states) that ``--resume`` needs; the
two newest pairs are kept. With ``--eval-every N`` the held-out synthetic benchmark's SAD and Grad
(matting.metrics) are logged every N steps. ``run.json`` summarises the run when it ends: the
arguments, whether the perceptual loss term ran (see cvunet.losses), the per-step losses, the evaluations.

Resuming with the same arguments continues exactly where the run stopped: the data are indexed by
step (see cvunet.datasets), so the resumed run sees the same batches. On CPU the result is bitwise
identical to an uninterrupted run; on CUDA, cuDNN's autotuned kernels make it only close. Resuming
with a larger ``--steps`` stretches the remaining cosine over the new total.

Longer than the project's ~350 lines on purpose: the loop, its exact-resume state and its command line
describe one run and change together.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import math
import os
import random
import re
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
from torch.utils.data import DataLoader
from tqdm import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm

from cvunet.checkpoints import network_from_payload, read_checkpoint
from cvunet.datasets import (
    CVUNET_INPUT,
    LAYOUTS,
    TRAINING_SEEDS,
    CoarseNetwork,
    HeldOutSyntheticDataset,
    detect_layout,
    training_dataset,
)
from cvunet.losses import build_matting_loss
from cvunet.model import PRESETS, SIZE_MULTIPLE, CVUNet, CVUNetConfig, atomic_torch_save, build_cvunet, save_checkpoint
from cvunet.u2net import INPUT_SIZE as U2NET_INPUT_SIZE
from cvunet.u2net import U2Net, load_pretrained, save_pretrained
from matting.contract import PRETRAINED_NETWORKS
from matting.files import atomic_write_bytes
from matting.metrics import gradient_error, sad
from matting.networks import network_spec

logger = logging.getLogger(__name__)

TRAINING_STATE_FORMAT = "cvunet-training-state-v1"
KEEP_CHECKPOINTS = 2
CHECKPOINT_PATTERN = re.compile(r"checkpoint-(\d+)\.pt")
LEARNING_RATE = 3e-4
FINE_TUNING_LEARNING_RATE = 5e-5
"""Small enough that a few hundred steps on a few photos adapt the pretrained weights, not replace them."""


@dataclass
class TrainConfig:
    """One training run; the CLI flags map one to one. ``model_config`` replaces the preset (tests use tiny
    networks) and ``synthetic_seeds`` narrows the synthetic training seeds (tests overfit a few)."""

    preset: str = "lite"
    init: str | None = None
    """A pretrained network to fine-tune (``u2net`` | ``u2netp``) instead of training a CV-UNet."""
    refiner: bool = False
    data_dir: Path | None = None
    layout: str | None = None
    size: int | None = None
    """Training crop size; default the network's serving size (``input_size``)."""
    batch: int = 4
    steps: int = 10_000
    lr: float | None = None
    """Default: LEARNING_RATE, or FINE_TUNING_LEARNING_RATE with ``init``."""
    weight_decay: float = 1e-2
    warmup_steps: int | None = None
    """Default: 5% of ``steps``, at most 1000."""
    out: Path = Path("runs/cvunet")
    resume: Path | None = None
    seed: int = 0
    vgg_weights: Path | None = None
    device: str = "auto"
    checkpoint_every: int = 1000
    eval_every: int = 0
    """Evaluate on the held-out synthetic seeds every this many steps (0: never)."""
    eval_samples: int = 16
    workers: int | None = None
    """DataLoader worker processes; default none on CPU (the cores are busy training), up to 8 on CUDA."""
    model_config: CVUNetConfig | None = None
    synthetic_seeds: Sequence[int] = TRAINING_SEEDS
    coarse: str = "simulated"
    """Refiner masks: ``simulated`` from the ground truth, or a coarse network's name (``u2netp``)."""
    coarse_share: float = 0.75
    """With a coarse network: the share of draws whose mask comes from it (the rest are simulated)."""


def plain(value: Any) -> Any:
    """``value`` as JSON-ready plain data, also loadable with ``torch.load(weights_only=True)``."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {field.name: plain(getattr(value, field.name)) for field in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(key): plain(item) for key, item in value.items()}
    if isinstance(value, range):
        return {"start": value.start, "stop": value.stop, "step": value.step}
    if isinstance(value, (list, tuple)):
        return [plain(item) for item in value]
    if isinstance(value, Path):
        return str(value)
    return value


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def rng_states(device: torch.device) -> dict[str, Any]:
    """The global torch, CUDA, numpy and Python RNG states, as data ``torch.load(weights_only=True)`` accepts."""
    numpy_state = np.random.get_state()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if device.type == "cuda" else [],
        "numpy": [numpy_state[0], numpy_state[1].tolist(), *numpy_state[2:]],
        "python": random.getstate(),
    }


def restore_rng_states(states: dict[str, Any], device: torch.device) -> None:
    torch.set_rng_state(states["torch"])
    if device.type == "cuda" and states["cuda"]:
        torch.cuda.set_rng_state_all(states["cuda"])
    name, keys, position, has_gauss, cached_gaussian = states["numpy"]
    np.random.set_state((name, np.asarray(keys, np.uint32), position, has_gauss, cached_gaussian))
    version, internal, gauss_next = states["python"]
    random.setstate((version, tuple(internal), gauss_next))


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda asked for, but torch sees no CUDA device")
    if name not in ("cpu", "cuda"):
        raise ValueError(f"device must be auto, cpu or cuda, got {name!r}")
    return torch.device(name)


def warmup_cosine(warmup_steps: int, total_steps: int) -> Callable[[int], float]:
    """LR factor per step: linear from 1/warmup to 1 over the warm-up, then cosine down towards 0."""

    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
        return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))

    return factor


class DrawBatches:
    """Batch sampler: batch ``k`` is draws ``k·B … k·B+B-1``, for steps ``start`` up to ``stop``."""

    def __init__(self, start: int, stop: int, batch: int) -> None:
        self.start, self.stop, self.batch = start, stop, batch

    def __iter__(self) -> Iterator[list[int]]:
        for step in range(self.start, self.stop):
            yield list(range(step * self.batch, (step + 1) * self.batch))

    def __len__(self) -> int:
        return max(0, self.stop - self.start)


def single_threaded_worker(_worker_id: int) -> None:
    """Data workers run in parallel already; their own thread pools would only oversubscribe the cores."""
    torch.set_num_threads(1)
    cv2.setNumThreads(1)


def evaluate(model: CVUNet | U2Net, samples: list[tuple[torch.Tensor, torch.Tensor]], device: torch.device) -> dict[str, float]:
    """Mean SAD and Grad (matting.metrics) of the model's mattes on the held-out samples."""
    model.eval()
    sads, gradient_errors = [], []
    with torch.no_grad():
        for inputs, alpha in samples:
            predicted = model(inputs[None].to(device)).float().cpu().numpy()[0, 0]
            truth = alpha.numpy()[0]
            sads.append(sad(predicted, truth))
            gradient_errors.append(gradient_error(predicted, truth))
    model.train()
    return {"SAD": float(np.mean(sads)), "Grad": float(np.mean(gradient_errors))}


def checkpoint_paths(out: Path, step: int) -> tuple[Path, Path]:
    return out / f"checkpoint-{step:06d}.pt", out / f"training-state-{step:06d}.pt"


def prune_checkpoints(out: Path, keep: int) -> None:
    """Delete all but the ``keep`` newest checkpoint pairs (full-preset pairs are ~0.6 GB each)."""
    steps = sorted(int(match.group(1)) for p in out.iterdir() if (match := CHECKPOINT_PATTERN.fullmatch(p.name)))
    for step in steps[:-keep]:
        for path in checkpoint_paths(out, step):
            path.unlink(missing_ok=True)


def load_resume_point(checkpoint: Path) -> tuple[CVUNet | U2Net, dict[str, Any]]:
    """The model and training state saved at one checkpoint (the state file named in its metadata)."""
    payload = read_checkpoint(checkpoint)
    state_name = payload.get("metadata", {}).get("training_state")
    if not state_name:
        raise ValueError(
            f"{checkpoint} names no training state; only checkpoints written by cvunet.train can be resumed"
        )
    state_path = checkpoint.parent / state_name
    if not state_path.is_file():
        raise ValueError(f"cannot resume from {checkpoint}: its training state {state_path} is missing")
    state = torch.load(state_path, map_location="cpu", weights_only=True)
    if state.get("format") != TRAINING_STATE_FORMAT or state["step"] != payload["metadata"]["step"]:
        raise ValueError(f"{state_path} does not belong to {checkpoint}")
    return network_from_payload(payload, checkpoint), state


def validate(config: TrainConfig) -> None:
    if config.model_config is None and config.preset not in PRESETS:
        raise ValueError(f"unknown preset {config.preset!r}; choose one of {sorted(PRESETS)}")
    if config.init is not None:
        if config.init not in PRETRAINED_NETWORKS:
            raise ValueError(f"--init must be one of {', '.join(PRETRAINED_NETWORKS)}, not {config.init!r}")
        if config.data_dir is None:
            raise ValueError("fine-tuning learns from your own photos: pass --data-dir")
        if config.refiner or config.model_config is not None:
            raise ValueError("--init fine-tunes a pretrained network: no --refiner, no CV-UNet architecture")
        if config.size not in (None, U2NET_INPUT_SIZE):
            raise ValueError(f"{config.init} is served at {U2NET_INPUT_SIZE}²: fine-tune at that size (no --size)")
    if config.layout is not None and config.data_dir is None:
        raise ValueError("a layout needs --data-dir")
    if config.layout is not None and config.layout not in LAYOUTS:
        raise ValueError(f"unknown layout {config.layout!r}; choose one of {LAYOUTS}")
    if config.size is not None and (config.size < SIZE_MULTIPLE or config.size % SIZE_MULTIPLE):
        raise ValueError(f"size must be a positive multiple of {SIZE_MULTIPLE}, got {config.size}")
    for name in ("batch", "steps", "checkpoint_every", "eval_samples"):
        if getattr(config, name) < 1:
            raise ValueError(f"{name} must be at least 1, got {getattr(config, name)}")
    if config.coarse != "simulated" and config.data_dir is not None:
        raise ValueError("--coarse u2netp only applies to synthetic data")
    if (config.lr is not None and config.lr <= 0) or config.eval_every < 0:
        raise ValueError("lr must be positive and eval_every non-negative")


def train(config: TrainConfig) -> dict[str, Any]:
    """Run (or resume) training as ``config`` says; return the summary also written to ``out/run.json``."""
    validate(config)
    device = resolve_device(config.device)
    use_amp = device.type == "cuda"
    if use_amp:
        torch.backends.cudnn.benchmark = True
    seed_everything(config.seed)
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)

    if config.init is not None:
        refiner, requested = False, config.init
    else:
        architecture = config.model_config or PRESETS[config.preset]
        refiner = config.refiner or architecture.in_channels == 4
        requested = dataclasses.replace(architecture, in_channels=4 if refiner else 3)
    if config.resume is not None:
        model, resume_state = load_resume_point(Path(config.resume))
        held = model.name if isinstance(model, U2Net) else model.config
        if held != requested:
            raise ValueError(f"{config.resume} holds a network with {held}, this run asks for {requested}")
    else:
        model, resume_state = start_network(config.init, requested), None
    model.to(device).train()
    size = config.size or (U2NET_INPUT_SIZE if config.init else model.config.input_size)
    loss_fn = build_matting_loss(config.vgg_weights).to(device)
    coarse_network = CoarseNetwork(config.coarse) if refiner and config.coarse != "simulated" else None
    spec = network_spec(config.init) if config.init else CVUNET_INPUT
    layout = config.layout or (detect_layout(config.data_dir) if config.data_dir is not None else None)
    dataset = training_dataset(
        config.data_dir, layout, size, refiner, config.seed, config.synthetic_seeds,
        coarse_network, config.coarse_share, spec, whole_image=config.init is not None,
    )

    lr = config.lr or (FINE_TUNING_LEARNING_RATE if config.init else LEARNING_RATE)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=config.weight_decay)
    warmup_steps = config.warmup_steps if config.warmup_steps is not None else min(1000, max(1, config.steps // 20))
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, warmup_cosine(warmup_steps, config.steps))
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp)
    start_step = 0
    if resume_state is not None:
        optimizer.load_state_dict(resume_state["optimizer"])
        scheduler.load_state_dict(resume_state["scheduler"])
        scaler.load_state_dict(resume_state["scaler"])
        restore_rng_states(resume_state["rng"], device)
        start_step = resume_state["step"]
        logger.info("resumed from %s at step %d", config.resume, start_step)

    workers = config.workers if config.workers is not None else (min(8, os.cpu_count() or 1) if use_amp else 0)
    loader = DataLoader(
        dataset,
        batch_sampler=DrawBatches(start_step, config.steps, config.batch),
        num_workers=workers,
        pin_memory=use_amp,
        worker_init_fn=single_threaded_worker if workers else None,
    )
    held_out: list[tuple[torch.Tensor, torch.Tensor]] = []
    evaluations: list[dict[str, float]] = []
    loss_history: list[float] = []
    last_losses: dict[str, float] | None = None
    checkpoint = state_path = None
    args = plain(config)

    def save(step: int) -> None:
        nonlocal checkpoint, state_path
        checkpoint, state_path = checkpoint_paths(out, step)
        atomic_torch_save(
            state_path,
            {
                "format": TRAINING_STATE_FORMAT,
                "step": step,
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(),
                "scaler": scaler.state_dict(),
                "rng": rng_states(device),
            },
        )
        metadata = {
            "step": step,
            "losses": last_losses,
            "evaluation": evaluations[-1] if evaluations else None,
            "args": args,
            "perceptual": loss_fn.perceptual_status,
            "training_state": state_path.name,
        }
        if isinstance(model, U2Net):
            fine_tuned = f"{step} steps on {config.data_dir}"
            save_pretrained(model, checkpoint, source_sha256=model.source_sha256, fine_tuned=fine_tuned, **metadata)
        else:
            save_checkpoint(model, checkpoint, **metadata)
        prune_checkpoints(out, KEEP_CHECKPOINTS)

    started = time.perf_counter()
    with logging_redirect_tqdm(), tqdm(total=config.steps, initial=start_step, unit="step", desc="train") as progress:
        for step, (inputs, alpha) in enumerate(loader, start=start_step + 1):
            inputs, alpha = inputs.to(device, non_blocking=True), alpha.to(device, non_blocking=True)
            with torch.autocast(device.type, dtype=torch.float16, enabled=use_amp):
                if isinstance(model, U2Net):
                    fused, *sides = model.side_outputs(inputs)
                    total, terms = loss_fn(fused, alpha, sides)
                else:
                    total, terms = loss_fn(model(inputs), alpha)
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(total).backward()
            scaler.step(optimizer)
            scaler.update()
            scheduler.step()

            last_losses = {"total": total.item(), **{name: value.item() for name, value in terms.items()}}
            if not math.isfinite(last_losses["total"]):
                raise FloatingPointError(f"loss is {last_losses['total']} at step {step}: {last_losses}")
            loss_history.append(last_losses["total"])
            progress.set_postfix({name: f"{value:.4f}" for name, value in last_losses.items()}, refresh=False)
            progress.update()

            if config.eval_every and step % config.eval_every == 0:
                if not held_out:
                    held_out = list(HeldOutSyntheticDataset(size, refiner, config.eval_samples, coarse_network, spec))
                evaluations.append({"step": step, **evaluate(model, held_out, device)})
                logger.info("step %d held-out synthetic: %s", step, evaluations[-1])
            if step % config.checkpoint_every == 0 or step == config.steps:
                save(step)
                logger.info("step %d: %s, checkpoint %s", step, last_losses, checkpoint)
    elapsed = time.perf_counter() - started

    steps_run = config.steps - start_step
    summary = {
        "args": args,
        "model_config": {"network": model.name} if isinstance(model, U2Net) else plain(model.config),
        "device": str(device),
        "amp": use_amp,
        "perceptual": loss_fn.perceptual_status,
        "start_step": start_step,
        "steps": config.steps,
        "final_losses": last_losses,
        "loss_history": loss_history,
        "evaluations": evaluations,
        "checkpoint": str(checkpoint) if checkpoint else None,
        "training_state": str(state_path) if state_path else None,
        "elapsed_s": elapsed,
        "steps_per_s": steps_run / elapsed if steps_run and elapsed > 0 else None,
    }
    atomic_write_bytes(out / "run.json", json.dumps(summary, indent=2).encode())
    return summary


def start_network(init: str | None, requested: Any) -> CVUNet | U2Net:
    """A fresh CV-UNet of the ``requested`` config, or the pinned pretrained port to fine-tune."""
    if init is None:
        return build_cvunet(requested)
    from serving.weights import pretrained_checkpoint  # fetches, verifies and ports the pinned file once

    return load_pretrained(pretrained_checkpoint(init))


def parse_args(argv: list[str] | None) -> TrainConfig:
    parser = argparse.ArgumentParser(prog="python -m cvunet.train", description=__doc__.split("\n\n")[0])
    parser.add_argument("--preset", choices=sorted(PRESETS), default="lite")
    parser.add_argument("--init", choices=PRETRAINED_NETWORKS,
                        help="fine-tune this pretrained network on --data-dir instead of training a CV-UNet")
    parser.add_argument("--refiner", action="store_true", help="4-channel input: RGB + a simulated coarse mask")
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--data", choices=["synthetic"], default="synthetic", help="synthetic composites (default)")
    source.add_argument("--data-dir", type=Path, help="a matting folder in the --layout layout")
    parser.add_argument(
        "--layout", choices=LAYOUTS,
        help="image-alpha: image/ + alpha/; fg-alpha-bg: fg/ + alpha/ + bg/ (default: read off the folder)",
    )
    parser.add_argument("--size", type=int, help="training crop size (default: the preset's input size)")
    parser.add_argument(
        "--coarse", choices=["simulated", "u2netp"], default="simulated",
        help="refiner masks: simulated from the ground truth, or U²-Netp's output (synthetic data only)",
    )
    parser.add_argument("--coarse-share", type=float, default=0.75, help="with --coarse u2netp: share of its masks")
    parser.add_argument(
        "--synthetic-seeds", type=int, help="train on the first N synthetic seeds (bounds memory with --coarse u2netp)"
    )
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--steps", type=int, default=10_000, help="total optimizer steps (the cosine spans them)")
    parser.add_argument("--lr", type=float, help=f"default {LEARNING_RATE:g}, fine-tuning {FINE_TUNING_LEARNING_RATE:g}")
    parser.add_argument("--weight-decay", type=float, default=1e-2)
    parser.add_argument("--warmup-steps", type=int, help="default: 5%% of --steps, at most 1000")
    parser.add_argument("--out", type=Path, default=Path("runs/cvunet"))
    parser.add_argument("--resume", type=Path, help="a checkpoint-NNNNNN.pt written by this command")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--vgg-weights", type=Path, help="torchvision VGG16 weights (vgg16-397923af.pth)")
    parser.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    parser.add_argument("--checkpoint-every", type=int, default=1000)
    parser.add_argument("--eval-every", type=int, default=0, help="held-out synthetic SAD/Grad every N steps")
    parser.add_argument("--eval-samples", type=int, default=16)
    parser.add_argument("--workers", type=int, help="DataLoader workers (default: 0 on CPU, up to 8 on CUDA)")
    args = parser.parse_args(argv)
    if args.layout is not None and args.data_dir is None:
        parser.error("--layout describes a --data-dir")
    return TrainConfig(
        preset=args.preset,
        init=args.init,
        refiner=args.refiner,
        data_dir=args.data_dir,
        layout=args.layout,
        size=args.size,
        batch=args.batch,
        steps=args.steps,
        lr=args.lr,
        weight_decay=args.weight_decay,
        warmup_steps=args.warmup_steps,
        out=args.out,
        resume=args.resume,
        seed=args.seed,
        vgg_weights=args.vgg_weights,
        device=args.device,
        checkpoint_every=args.checkpoint_every,
        eval_every=args.eval_every,
        eval_samples=args.eval_samples,
        workers=args.workers,
        coarse=args.coarse,
        coarse_share=args.coarse_share,
        **({"synthetic_seeds": range(args.synthetic_seeds)} if args.synthetic_seeds else {}),
    )


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    config = parse_args(argv)
    try:
        summary = train(config)
    except (ValueError, FileNotFoundError) as exc:
        logger.error("%s", exc)
        return 2
    print(json.dumps({key: summary[key] for key in ("steps", "final_losses", "perceptual", "checkpoint")}, indent=2))
    print(f"summary: {Path(config.out) / 'run.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
