"""The key that unlocks Triton's administrative protocols.

Triton's model-control API loads and unloads models, and a ``load`` request may carry its own config and
``model.py``: code that runs inside the server. Anything that can reach port 8000 could call it, including a
web page in the user's browser (a cross-site POST with ``Content-Type: text/plain`` needs no preflight). So
every server this project starts restricts the administrative protocols to requests that carry a header
holding a random key; inference, health, metadata and model configs stay open.

``launch.triton`` writes a new key at each start into a file only its owner can read; the dashboard reads it
from there on every request (``CVUNET_ADMIN_KEY_FILE``), so a restarted server's new key is picked up.
"""

from __future__ import annotations

import secrets
from pathlib import Path

from tritonclient.grpc import InferenceServerClient, InferenceServerClientPlugin

from client.matting_client import grpc_channel_args
from matting import contract
from matting.files import atomic_write_bytes
from matting.paths import STATE_DIR

#: Triton's names of what the key guards: load/unload/index, registering shared memory, statistics, and the
#: trace and log settings (those two also choose files the server writes).
RESTRICTED_PROTOCOLS = ("model-repository", "shared-memory", "statistics", "trace", "logging")
#: The HTTP header that carries the key. Over gRPC Triton expects it with the prefix below.
ADMIN_HEADER = "cvunet-admin-key"
GRPC_HEADER_PREFIX = "triton-grpc-protocol-"
KEY_FILE_ENV = "CVUNET_ADMIN_KEY_FILE"


def key_file_for(http_port: int, state_dir: Path = STATE_DIR) -> Path:
    """Where the server on ``http_port`` keeps its key (one file per server, so servers side by side don't clash)."""
    return Path(state_dir) / "triton" / f"admin-{http_port}.key"


DEFAULT_KEY_FILE = key_file_for(contract.TRITON_HTTP_PORT)


def create_key(path: Path) -> str:
    """Write a new random key to ``path``, readable by its owner only (mode 0600, atomically); return it."""
    key = secrets.token_urlsafe(32)
    atomic_write_bytes(Path(path), key.encode(), mode=0o600)
    return key


def read_key(path: Path) -> str:
    return Path(path).read_text().strip()


def restriction_options(key: str) -> list[str]:
    """tritonserver's options that refuse the administrative protocols without ``ADMIN_HEADER: key``."""
    protocols = ",".join(RESTRICTED_PROTOCOLS)
    return [f"--http-restricted-api={protocols}:{ADMIN_HEADER}={key}",
            f"--grpc-restricted-protocol={protocols}:{ADMIN_HEADER}={key}"]


def headers(key: str, protocol: str = "grpc") -> dict[str, str]:
    """The header that unlocks the restricted protocols, as a tritonclient ``headers=`` argument."""
    return {(GRPC_HEADER_PREFIX if protocol == "grpc" else "") + ADMIN_HEADER: key}


class AdminKey(InferenceServerClientPlugin):
    """A tritonclient plugin adding the key from ``key_file`` to every request of the client it is registered
    with. The file is read per request: a server restarted by the launcher has a new key. Without the file
    no header is sent, and Triton's refusal names the header it expects."""

    def __init__(self, key_file: Path, protocol: str = "grpc"):
        self.key_file = Path(key_file)
        self.protocol = protocol

    def __call__(self, request) -> None:
        try:
            request.headers.update(headers(read_key(self.key_file), self.protocol))
        except FileNotFoundError:
            pass


def control_client(url: str, key_file: Path) -> InferenceServerClient:
    """A gRPC client of the Triton at ``url`` whose requests carry its administration key. Like
    client.MattingClient it retries a lost connection every 2 s at most (gRPC's default waits up to 2 minutes),
    so a restarted server can be administered as soon as it is back."""
    client = InferenceServerClient(url, channel_args=grpc_channel_args())
    client.register_plugin(AdminKey(key_file))
    return client
