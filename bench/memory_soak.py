"""Does the serving tree's memory plateau? A 16-client soak against the embedded Triton.

    .venv/bin/python -m bench.memory_soak [--rounds 16]     (also run by make bench)

16 clients each send ``--rounds`` requests, cycling through 0.3 MP and 12 MP photos, both models and PNG /
WebP output. Printed: the tree's peak memory (PSS, see bench.measure) in each quarter of the run, and each role's (server, each step)
peak per quarter: a leak shows as a quarter-on-quarter rise that does not level off. A benchmark, not a test.
"""

from __future__ import annotations

import argparse
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import psutil

from bench.measure import tree_memory
from client import MattingClient
from launch.options import Ports
from launch.triton import EmbeddedTriton
from matting.options import OutputOptions
from matting.paths import MODEL_REPOSITORY
from tests import support

CLIENTS = 16
QUARTERS = 4


def tree_pss_by_role(root: psutil.Process) -> dict[str, int]:
    by_role: dict[str, int] = {}
    for (name, _), (_, pss) in tree_memory(root).items():
        by_role[name] = by_role.get(name, 0) + pss
    return by_role


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=16, help="requests per client")
    args = parser.parse_args()
    photos = [support.twelve_megapixel_jpeg()] + [support.encode(support.photo((640, 480)), "JPEG")] * 3
    server = EmbeddedTriton(MODEL_REPOSITORY, ports=Ports.free()).start()
    samples: list[tuple[float, dict[str, int]]] = []
    stop = threading.Event()

    def sample() -> None:
        root = psutil.Process(server.process.pid)
        while not stop.is_set():
            samples.append((time.monotonic(), tree_pss_by_role(root)))
            stop.wait(0.2)

    def client(index: int) -> None:
        with MattingClient(server.grpc_url) as matting:
            for request in range(args.rounds):
                step = index + request
                options = OutputOptions(model=("u2net", "u2netp")[step % 2], format=("png", "webp")[request % 2])
                matting.remove_background(photos[step % len(photos)], options)

    sampler = threading.Thread(target=sample, daemon=True)
    try:
        started = time.monotonic()
        sampler.start()
        with ThreadPoolExecutor(CLIENTS) as pool:
            list(pool.map(client, range(CLIENTS)))
        elapsed = time.monotonic() - started
    finally:
        stop.set()
        server.stop()
    quarters = [[by_role for at, by_role in samples if quarter * elapsed / QUARTERS <= at - started < (quarter + 1) * elapsed / QUARTERS]
                for quarter in range(QUARTERS)]
    print(f"{CLIENTS * args.rounds} requests from {CLIENTS} clients in {elapsed:.0f} s")
    print("peak PSS per quarter (MB): " + ", ".join(f"{max(sum(s.values()) for s in q) / 2**20:.0f}" for q in quarters))
    for name in sorted(samples[-1][1]):
        print(f"  {name:<14}" + ", ".join(f"{max(s.get(name, 0) for s in q) / 2**20:.0f}" for q in quarters))


if __name__ == "__main__":
    main()
