"""Change what a running Triton serves: install a network with a backup and rollback, import an
uploaded CV-UNet, restore the pinned default. The dashboard's Advanced tab calls these.

Triton runs with ``--model-control-mode explicit``, so a new network is swapped in without a restart:
the repository is rewritten, then its models are (re)loaded through the model-control API, which answers
only requests carrying the server's administration key: ``control`` is a client from
``serving.admin_key.control_client``, which adds it to every request. An upload
is exported and validated in a scratch repository first, so an invalid file never touches the served
one; if Triton cannot load a valid-looking network, the previous repository is put back and reloaded.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
import threading
from pathlib import Path

import tritonclient.grpc as triton_grpc
from tritonclient.utils import InferenceServerException

from matting import contract
from serving.repository import build_repository, read_config, repository_settings, served_network
from serving.repository.onnx_files import onnx_input_size

#: The largest network file an upload may be: a full CV-UNet checkpoint is ~190 MB.
MODEL_IMPORT_MAX_MB = 1024
LOAD_TIMEOUT_S = 600
IMPORT_KINDS = {".pt": "checkpoint", ".pth": "checkpoint", ".onnx": "onnx_path"}
IMPORTED_NETWORK = "cvunet"

#: One repository change at a time, whichever session asks.
_REPOSITORY_LOCK = threading.Lock()


class ModelImportError(RuntimeError):
    """The network was not installed (file refused or not loadable); the repository is as it was."""


def repository_models(repository: Path) -> dict[str, bool]:
    """Every model of the repository → whether it is an ensemble."""
    return {config.parent.name: read_config(config).platform == "ensemble" for config in sorted(Path(repository).glob("*/config.pbtxt"))}


def _load_repository(control: triton_grpc.InferenceServerClient, repository: Path, before: set[str]) -> None:
    """(Re)load every model of the repository, the steps and networks first and the ensembles last (each
    is validated against its steps); then unload what was served ``before`` and is no longer there."""
    models = repository_models(repository)
    for name in sorted(models, key=models.get):
        control.load_model(name, client_timeout=LOAD_TIMEOUT_S)
    for name in sorted(before - set(models)):
        if control.is_model_ready(name):
            control.unload_model(name, client_timeout=LOAD_TIMEOUT_S)


def server_reason(exc: Exception) -> str:
    return exc.message() if isinstance(exc, InferenceServerException) and exc.message() else str(exc)


def _put_back(repository: Path, backup: Path) -> None:
    shutil.rmtree(repository)
    shutil.copytree(backup, repository)


def install_network(repository: Path, control: triton_grpc.InferenceServerClient, network: str,
                    onnx_path: Path | None = None) -> Path:
    """Rebuild ``repository`` to serve ``network`` and reload it in Triton; return the served file.

    On any failure the previous repository is restored (and reloaded if loading had begun), and
    :class:`ModelImportError` says what went wrong.
    """
    repository = Path(repository)
    with _REPOSITORY_LOCK, tempfile.TemporaryDirectory(prefix="cvunet-repository-backup-") as workdir:
        previous, before = served_network(repository), set(repository_models(repository))
        backup = Path(workdir) / "repository"
        shutil.copytree(repository, backup, ignore=shutil.ignore_patterns("__pycache__"))
        try:
            build_repository(repository, network, onnx_path=onnx_path, settings=repository_settings(repository))
        except Exception as exc:  # noqa: BLE001 - fetch, export and file errors all mean "not installed"
            _put_back(repository, backup)
            raise ModelImportError(f"the repository could not be rebuilt for {network}: {exc}") from None
        installed = set(repository_models(repository))
        try:
            _load_repository(control, repository, before)
        except InferenceServerException as exc:
            _put_back(repository, backup)
            reason = f"Triton could not load {network} ({server_reason(exc)})"
            if previous is None:
                raise ModelImportError(reason) from None
            try:
                _load_repository(control, repository, installed)
            except InferenceServerException as restore_exc:
                raise ModelImportError(f"{reason}; reloading {previous} failed as well ({server_reason(restore_exc)})") from None
            raise ModelImportError(f"{reason}; {previous} is served again") from None
    return repository / network / "1" / "model.onnx"


def import_network(repository: Path, control: triton_grpc.InferenceServerClient, filename: str, data: bytes) -> str:
    """Serve an uploaded CV-UNet checkpoint (.pt/.pth) or ONNX export (.onnx) as ``cvunet``; return the served file.

    The upload is exported and validated into a scratch repository before the served one is touched.
    """
    name = Path(filename).name
    kind = IMPORT_KINDS.get(Path(name).suffix.lower())
    if kind is None:
        raise ModelImportError(f"{name or 'the file'} is neither a CV-UNet checkpoint (.pt, .pth) nor an ONNX export (.onnx)")
    with tempfile.TemporaryDirectory(prefix="cvunet-import-") as workdir:
        upload = Path(workdir) / name
        upload.write_bytes(data)
        try:
            _validate_upload(kind, upload)
            staged = build_repository(Path(workdir) / "staged", IMPORTED_NETWORK, **{kind: upload})
        except Exception as exc:  # noqa: BLE001 - torch, onnx and ORT raise many types for a bad file
            raise ModelImportError(str(exc).replace(str(upload), name)) from None
        return str(install_network(repository, control, IMPORTED_NETWORK,
                                   onnx_path=staged / IMPORTED_NETWORK / "1" / "model.onnx"))


def _validate_upload(kind: str, upload: Path) -> None:
    """Fail on the upload itself, so the message names it rather than a copy in a scratch folder."""
    if kind == "checkpoint":
        from cvunet.checkpoints import load_network, network_name  # imports torch: only when a checkpoint is imported
        from cvunet.model import load_checkpoint

        try:
            load_checkpoint(upload)
        except ValueError:
            with contextlib.suppress(ValueError):
                if network_name(load_network(upload)) != IMPORTED_NETWORK:
                    raise ModelImportError(f"{upload} holds a fine-tuned U²-Net: serve it with "
                                           "`make export NETWORK=<its network> CHECKPOINT=<file>`") from None
            raise
    else:
        onnx_input_size(upload)


def restore_default(repository: Path, control: triton_grpc.InferenceServerClient) -> str:
    """Serve the pretrained networks again, U²-Net as the default (fetched, verified and exported if
    needed); return the default's served file."""
    return str(install_network(repository, control, contract.DEFAULT_NETWORK))

