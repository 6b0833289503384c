"""The output flags both command lines share (``python -m client`` and ``python -m client.batch``)."""

from __future__ import annotations

import argparse

from cvunet.imageops import OUTPUT_FORMATS, REFINE_MODES, OutputOptions


def add_output_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--alpha-only", action="store_true", help="write the grayscale matte instead of the cut-out")
    parser.add_argument("--bg-color", help="composite on this colour ('#RRGGBB', 'white', 'R,G,B') instead of transparency")
    parser.add_argument("--format", choices=OUTPUT_FORMATS, default=OutputOptions.format)
    parser.add_argument("--decontaminate", action="store_true", help="estimate foreground colours (no background colour in soft edges)")
    parser.add_argument("--refine", choices=REFINE_MODES, default=OutputOptions.refine,
                        help="how the matte reaches full resolution (see README, Matte quality)")


def output_options(args: argparse.Namespace) -> OutputOptions:
    """The validated options those flags ask for; raises cvunet.imageops.OptionsError."""
    kind = "alpha" if args.alpha_only else "composite" if args.bg_color else "rgba"
    return OutputOptions.parse(kind, args.format, args.bg_color, "estimate" if args.decontaminate else None, args.refine)
