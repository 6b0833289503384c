"""``python -m serving.repository``: write the Triton model repository.

    python -m serving.repository                          # U²-Net (default) and U²-Netp side by side
    python -m serving.repository --network u2netp --alone # U²-Netp only
    python -m serving.repository --network cvunet --checkpoint run/best.pt
    python -m serving.repository --network cvunet --onnx cvunet.onnx --out /tmp/repo
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from matting import contract
from matting.networks import NETWORKS
from matting.paths import MODEL_REPOSITORY
from serving.repository.build import GPU_REPOSITORY, TARGETS, build_repository
from serving.repository.configs import RepositorySettings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Write the Triton model repository for the matting ensemble.")
    parser.add_argument("--network", choices=sorted(NETWORKS), default=contract.DEFAULT_NETWORK)
    parser.add_argument("--target", choices=TARGETS, default="cpu",
                        help="cpu: embedded Triton, python backend + ONNX Runtime; gpu: TensorRT plan (or ORT + TensorRT)")
    parser.add_argument("--onnx", type=Path, help="network ONNX file (u2net/u2netp: another copy of the published file, "
                                                  "ported and exported like the fetched one; cvunet: its export)")
    parser.add_argument("--checkpoint", type=Path, help="trained CV-UNet checkpoint to export and serve")
    parser.add_argument("--alone", action="store_true", help="serve --network only, without the other pretrained network")
    parser.add_argument("--out", type=Path, help=f"default {MODEL_REPOSITORY} (cpu), {GPU_REPOSITORY} (gpu)")
    parser.add_argument("--configs-only", action="store_true", help="write configs and step shims, no weights")
    parser.add_argument("--max-batch-size", type=int, default=RepositorySettings.max_batch_size)
    parser.add_argument("--dynamic-batching", action="store_true", help="let Triton batch network requests")
    parser.add_argument("--network-instances", type=int, default=RepositorySettings.network_instances)
    parser.add_argument("--step-instances", type=int, default=RepositorySettings.step_instances)
    parser.add_argument("--intra-op-threads", type=int, default=RepositorySettings.intra_op_threads, help="0 = cores ÷ network instances")
    parser.add_argument("--stream-network-batch", type=int, default=RepositorySettings.stream_network_batch,
                        help="the most video frames sent to a network at once (cpu)")
    args = parser.parse_args(argv)
    settings = RepositorySettings(
        max_batch_size=args.max_batch_size,
        dynamic_batching=args.dynamic_batching,
        network_instances=args.network_instances,
        step_instances=args.step_instances,
        intra_op_threads=args.intra_op_threads,
        stream_network_batch=args.stream_network_batch,
    )
    try:
        out = build_repository(args.out or (GPU_REPOSITORY if args.target == "gpu" else MODEL_REPOSITORY), args.network,
                               args.onnx, args.checkpoint, settings, with_weights=not args.configs_only, target=args.target,
                               alongside=() if args.alone else None)
    except (ValueError, RuntimeError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(json.dumps({"repository": str(out), "network": args.network, "target": args.target}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
