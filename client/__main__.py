"""Single-image command line: ``python -m client photo.jpg -o photo.png``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from client.arguments import add_output_arguments, add_server_arguments, background_image, output_options
from client.matting_client import MattingClient, MattingError
from matting.files import atomic_write_bytes
from matting.options import OptionsError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m client", description="Remove the background of one image via Triton.")
    parser.add_argument("image", type=Path)
    parser.add_argument("-o", "--output", type=Path, help="output file (default: <image stem>.matte.<format> beside the input)")
    add_output_arguments(parser)
    add_server_arguments(parser)
    args = parser.parse_args(argv)

    try:
        options = output_options(args)
        data, background = args.image.read_bytes(), background_image(args)
    except (OptionsError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    output = args.output or args.image.with_name(f"{args.image.stem}.matte.{options.format}")
    if output.resolve() == args.image.resolve():
        print("error: the output would overwrite the input image", file=sys.stderr)
        return 2
    try:
        with MattingClient(args.url, args.protocol) as client:
            result = client.remove_background(data, options, background=background)
    except MattingError as exc:
        print(f"error: {args.image}: {exc}", file=sys.stderr)
        return 1
    atomic_write_bytes(output, result.data)
    height, width = result.alpha.shape
    print(f"{output} ({width}×{height}, {options.kind}, {result.elapsed_ms:.0f} ms)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
