"""The address options both launchers share: one bind host (``--host`` / CVUNET_HOST) and Triton's ports."""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping
from dataclasses import dataclass

from launch.processes import free_ports
from matting import contract

HOST_ENV = "CVUNET_HOST"


@dataclass(frozen=True)
class Ports:
    http: int = contract.TRITON_HTTP_PORT
    grpc: int = contract.TRITON_GRPC_PORT
    metrics: int = contract.TRITON_METRICS_PORT

    @classmethod
    def free(cls, host: str = contract.DEFAULT_HOST) -> Ports:
        """Three ports nothing listens on now, for servers started side by side (tests, benchmarks)."""
        return cls(*free_ports(3, host))


def env_port(name: str, default: int, environ: Mapping[str, str] = os.environ) -> int:
    text = environ.get(name) or str(default)
    if not text.strip().isdigit():
        raise SystemExit(f"error: {name} must be a port number, not {text!r}")
    return int(text)


def add_address_arguments(parser: argparse.ArgumentParser) -> None:
    """``--host`` and Triton's ``--http-port``/``--grpc-port``/``--metrics-port``, defaults from the environment."""
    parser.add_argument("--host", default=os.environ.get(HOST_ENV) or contract.DEFAULT_HOST,
                        help=f"bind address of every service (default %(default)s: loopback only; env {HOST_ENV})")
    for role, default in (("http", contract.TRITON_HTTP_PORT), ("grpc", contract.TRITON_GRPC_PORT),
                          ("metrics", contract.TRITON_METRICS_PORT)):
        variable = f"TRITON_{role.upper()}_PORT"
        parser.add_argument(f"--{role}-port", type=int, default=env_port(variable, default),
                            help=f"Triton's {role} port (default %(default)s; env {variable})")


def triton_ports(args: argparse.Namespace) -> Ports:
    return Ports(args.http_port, args.grpc_port, args.metrics_port)
