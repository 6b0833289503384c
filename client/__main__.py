"""Single-image command line: ``python -m client photo.jpg -o photo.png``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from client.matting_client import DEFAULT_URLS, MattingClient, MattingError
from cvunet.files import atomic_write_bytes
from cvunet.imageops import REFINE_MODES, OptionsError, OutputOptions


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m client", description="Remove the background of one image via Triton.")
    parser.add_argument("image", type=Path)
    parser.add_argument("-o", "--output", type=Path, help="output file (default: <image stem>.matte.<format> beside the input)")
    parser.add_argument("--alpha-only", action="store_true", help="write the grayscale matte instead of the cut-out")
    parser.add_argument("--bg-color", help="composite on this colour ('#RRGGBB', 'white', 'R,G,B') instead of transparency")
    parser.add_argument("--format", choices=["png", "webp"], default="png")
    parser.add_argument("--decontaminate", action="store_true", help="estimate foreground colours (no background colour in soft edges)")
    parser.add_argument("--refine", choices=REFINE_MODES, default=OutputOptions.refine,
                        help="how the matte reaches full resolution (see README, Matte quality)")
    parser.add_argument("--protocol", choices=["grpc", "http"], default="grpc")
    parser.add_argument("--url", help=f"server address (default {DEFAULT_URLS['grpc']} for gRPC, {DEFAULT_URLS['http']} for HTTP)")
    args = parser.parse_args(argv)

    kind = "alpha" if args.alpha_only else "composite" if args.bg_color else "rgba"
    try:
        options = OutputOptions.parse(kind, args.format, args.bg_color, "estimate" if args.decontaminate else None, args.refine)
        data = args.image.read_bytes()
    except (OptionsError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    output = args.output or args.image.with_name(f"{args.image.stem}.matte.{options.format}")
    if output.resolve() == args.image.resolve():
        print("error: the output would overwrite the input image", file=sys.stderr)
        return 2
    try:
        with MattingClient(args.url, args.protocol) as client:
            result = client.remove_background(data, options.kind, options.format, args.bg_color,
                                              foreground=options.foreground, refine=options.refine)
    except MattingError as exc:
        print(f"error: {args.image}: {exc}", file=sys.stderr)
        return 1
    atomic_write_bytes(output, result.data)
    height, width = result.alpha.shape
    print(f"{output} ({width}×{height}, {options.kind}, {result.elapsed_ms:.0f} ms)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
