"""Write the Triton model repository for a chosen network, and read back what one serves.

The repository is the ensemble ``matting`` = ``preprocess`` → ``<network>`` → ``postprocess``, one
``matting_<network>`` ensemble per served network (by default U²-Net and U²-Netp side by side), and a
``…_flip`` twin of each that also runs the network on the mirrored photo (``tta=flip``), and the video
stream ``matting_stream``, which calls the served networks itself. The python steps are two-line shims
over :mod:`serving.steps` (the stream's over :mod:`serving.stream`). CV-UNet has no pretrained weights:
it is served only from an explicit checkpoint or ONNX file.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import replace
from pathlib import Path

from google.protobuf import text_format

from matting import contract
from matting.files import atomic_write_bytes, sibling_temp_path
from matting.networks import NETWORKS, network_spec
from matting.paths import MODEL_REPOSITORY, PROJECT_ROOT
from serving.repository.configs import (
    NETWORK_STEP_CLASS,
    STEP_CLASSES,
    RepositorySettings,
    ensemble_config,
    gpu_network_configs,
    network_config,
    network_io,
    postprocess_config,
    preprocess_config,
    read_config,
    step_shim,
    stream_config,
)
from serving.repository.onnx_files import onnx_input_shapes, serving_onnx, square_size

GPU_REPOSITORY = PROJECT_ROOT / "model_repository_gpu"
TARGETS = ("cpu", "gpu")
#: Models earlier versions wrote (the project-trained refiner, removed: it made real photos worse);
#: rebuilding an old repository deletes them.
RETIRED_MODELS = ("refiner", "matting_refined")


def build_repository(
    out: Path = MODEL_REPOSITORY,
    network: str = contract.DEFAULT_NETWORK,
    onnx_path: Path | None = None,
    checkpoint: Path | None = None,
    settings: RepositorySettings = RepositorySettings(),
    with_weights: bool = True,
    target: str = "cpu",
    alongside: tuple[str, ...] | None = None,
) -> Path:
    """Write ``out`` as the repository serving ``network`` on ``target`` (cpu | gpu); return ``out``.

    ``matting`` runs ``network``; ``alongside`` networks are served beside it (by default the other
    pretrained networks when ``network`` is one of them, none otherwise), and every served network
    has its own ``matting_<network>`` ensemble, which the ``model`` request option picks.
    ``onnx_path``/``checkpoint`` apply to ``network``. With ``with_weights=False`` only configs and
    shims are written (the committed default repository). The gpu target keeps ``model.onnx``
    beside where the TensorRT plan goes: ``serving.trt`` turns it into ``model.plan`` on the target
    GPU at deploy time.
    """
    if target not in TARGETS:
        raise ValueError(f"target must be one of {', '.join(TARGETS)}, not {target!r}")
    if alongside is None:
        alongside = contract.PRETRAINED_NETWORKS if network in contract.PRETRAINED_NETWORKS else ()
    served = [network, *(name for name in alongside if name != network)]
    specs = {name: replace(network_spec(name), name="") for name in served}  # unknown names fail here
    if len(set(specs.values())) > 1:
        raise ValueError(f"{', '.join(served)} prepare their inputs differently; they cannot share the pre/post steps")
    out = Path(out)
    with tempfile.TemporaryDirectory() as workdir:
        size = NETWORKS[network].input_size
        weights: dict[str, Path] = {}
        if with_weights:
            for name in served:  # validated there
                source = (onnx_path, checkpoint) if name == network else (None, None)
                weights[name] = serving_onnx(name, *source, Path(workdir) / name)
            sizes = {square_size(onnx_input_shapes(file)[0], 3) for file in weights.values()}
            if len(sizes) > 1:
                raise ValueError(f"the served networks take different input sizes {sorted(sizes)}")
            size = sizes.pop()
        networks = {name: network_io(size) for name in served}
        configs = {contract.PREPROCESS: preprocess_config(network, size, settings)}
        alternatives = {}
        for name, io in networks.items():
            if target == "gpu":
                configs[name], alternatives[name] = gpu_network_configs(name, io, settings)
            else:
                configs[name] = network_config(name, io, settings)
        configs[contract.POSTPROCESS] = postprocess_config(network, size, settings)
        runs = {contract.ENSEMBLE: network} | {contract.network_ensemble(name): name for name in served}
        ensembles = {}
        for ensemble, runs_network in runs.items():
            ensembles[ensemble] = ensemble_config(ensemble, runs_network, settings)
            flipped = contract.flipped_ensemble(ensemble)
            ensembles[flipped] = ensemble_config(flipped, runs_network, settings, flipped=True)
        configs |= ensembles
        network_batch = settings.max_batch_size if target == "gpu" else settings.stream_network_batch
        configs[contract.STREAM] = stream_config(network, served, size, settings, network_batch)
        possible = {*NETWORKS, *RETIRED_MODELS, contract.STREAM,
                    *(ensemble for name in NETWORKS for ensemble in (contract.network_ensemble(name),
                                                                      contract.flipped_ensemble(contract.network_ensemble(name))))}
        for stale in possible - set(configs):
            shutil.rmtree(out / stale, ignore_errors=True)
        for name, config in configs.items():
            atomic_write_bytes(out / name / "config.pbtxt", text_format.MessageToString(config).encode())
        for name, alternative in alternatives.items():
            atomic_write_bytes(out / name / "configs" / "onnxruntime.pbtxt", text_format.MessageToString(alternative).encode())
        shims = dict(STEP_CLASSES)
        if target == "cpu":
            shims.update({name: NETWORK_STEP_CLASS for name in networks})
        for step, class_name in shims.items():
            atomic_write_bytes(out / step / "1" / "model.py", step_shim(step, class_name).encode())
        atomic_write_bytes(out / contract.STREAM / "1" / "model.py", step_shim(contract.STREAM, "StreamStep", "serving.stream").encode())
        for ensemble in ensembles:
            (out / ensemble / "1").mkdir(parents=True, exist_ok=True)
        for name, file in weights.items():
            target_file = out / name / "1" / "model.onnx"
            target_file.parent.mkdir(parents=True, exist_ok=True)
            temp = sibling_temp_path(target_file)
            shutil.copyfile(file, temp)  # a copy, not read into memory: U²-Net's file is 176 MB
            os.replace(temp, target_file)
    return out


def served_network(repository: Path) -> str | None:
    """The network the repository's ``matting`` ensemble runs, or None when there is no ensemble."""
    ensemble = Path(repository) / contract.ENSEMBLE / "config.pbtxt"
    if not ensemble.exists():
        return None
    steps = [step.model_name for step in read_config(ensemble).ensemble_scheduling.step]
    return next((name for name in steps if name in NETWORKS), None)


def repository_settings(repository: Path) -> RepositorySettings:
    """The scheduling knobs the repository has now, so swapping the network keeps them."""
    network = served_network(repository)
    if network is None or not (Path(repository) / network / "config.pbtxt").exists():
        return RepositorySettings()
    network_config = read_config(Path(repository) / network / "config.pbtxt")
    step_config = read_config(Path(repository) / contract.PREPROCESS / "config.pbtxt")
    threads = network_config.parameters.get("intra_op_threads")
    return RepositorySettings(
        max_batch_size=network_config.max_batch_size,
        dynamic_batching=network_config.HasField("dynamic_batching"),
        network_instances=sum(group.count for group in network_config.instance_group) or RepositorySettings.network_instances,
        step_instances=sum(group.count for group in step_config.instance_group) or RepositorySettings.step_instances,
        intra_op_threads=int(threads.string_value) if threads else RepositorySettings.intra_op_threads,
    )
