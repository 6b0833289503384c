"""The flags both command lines share (``python -m client`` and ``python -m client.batch``): the output
flags become one ``OutputOptions`` (validated by its parse), the server flags say where Triton is."""

from __future__ import annotations

import argparse
from pathlib import Path

from matting.contract import DEFAULT_TRITON_URLS
from matting.options import FORMATS, MODELS, REFINE_MODES, TTA_MODES, OutputOptions


def add_output_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-m", "--model", help=f"the network, as rembg's -m: {' | '.join(MODELS)} (u2netp: fast; u2net: "
                                              "quality; default: the server's, see README)")
    parser.add_argument("--alpha-only", action="store_true", help="write the grayscale matte instead of the cut-out")
    parser.add_argument("--bg-color", help="composite on this colour ('#RRGGBB', 'white', 'R,G,B') instead of transparency")
    parser.add_argument("--tta", default=OutputOptions.tta, help=f"test-time augmentation: {' | '.join(TTA_MODES)} (flip: a "
                                                            "better matte for twice the network time; default %(default)s)")
    parser.add_argument("--bg-image", type=Path, help="composite on this picture (scaled to cover the photo) instead of a colour")
    parser.add_argument("--format", default=OutputOptions.format, help=f"{' | '.join(FORMATS)} (default %(default)s)")
    parser.add_argument("--decontaminate", action="store_true", help="estimate foreground colours (no background colour in soft edges)")
    parser.add_argument("--refine", default=OutputOptions.refine,
                        help=f"how the matte reaches full resolution: {' | '.join(REFINE_MODES)} (default %(default)s; "
                             "see README, Matte quality)")


def output_options(args: argparse.Namespace) -> OutputOptions:
    """The validated options those flags ask for; raises matting.options.OptionsError."""
    kind = "alpha" if args.alpha_only else "composite" if args.bg_color or args.bg_image else "rgba"
    return OutputOptions.parse(kind, args.format, args.bg_color, "estimate" if args.decontaminate else None, args.refine,
                               args.model, args.tta)


def add_server_arguments(parser: argparse.ArgumentParser, several: bool = False) -> None:
    """``--protocol`` and ``--url`` (repeatable, or comma-separated, with ``several``)."""
    parser.add_argument("--protocol", choices=sorted(DEFAULT_TRITON_URLS), default="grpc")
    defaults = f"default {DEFAULT_TRITON_URLS['grpc']} for gRPC, {DEFAULT_TRITON_URLS['http']} for HTTP"
    if several:
        parser.add_argument("--url", action="append",
                            help=f"server address; repeat it or separate with commas for several servers ({defaults})")
    else:
        parser.add_argument("--url", help=f"server address ({defaults})")


def background_image(args: argparse.Namespace) -> bytes | None:
    """The ``--bg-image`` file's bytes (the server decodes and checks them); raises OSError."""
    return args.bg_image.read_bytes() if args.bg_image else None
