"""Video command line: ``python -m client.video IN OUT``: every frame of a video matted by Triton.

    python -m client.video clip.mp4 clip.webm                      # VP9 with alpha
    python -m client.video clip.mp4 clip.mov                       # ProRes 4444 with alpha
    python -m client.video clip.mp4 frames/                        # a folder of RGBA PNG frames
    python -m client.video clip.mp4 clip-on-white.mp4 --bg-color white   # H.264 composite

Frame rate, frame count and audio are kept (a PNG sequence has no audio). The output is written in segments
of two seconds: run the same command again after a stop and it goes on from the last finished segment.
Exit code 2 for bad arguments or an input it cannot read, 1 when the server fails, 0 otherwise.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tqdm import tqdm

from client.arguments import add_server_arguments, background_image
from client.matting_client import MattingClient, MattingError
from matting.codec import ImageError, decode_image
from matting.options import MODELS, OptionsError, OutputOptions, parse_color
from matting.video import OUTPUT_FORMATS, Composite, MatteSource, VideoError, matte_video, output_format, probe


def server_matte(client: MattingClient, options: OutputOptions, smooth: bool = False) -> MatteSource:
    """Mattes from the streaming model: a file's frames are one stream (so smoothing spans it), sent raw and
    batched by the server."""
    def matte(frames):
        for result in client.stream(frames, options, smooth=smooth):
            yield result.alpha
    return matte


def matte_name(options: OutputOptions, smooth: bool) -> str:
    """What a resumed job must match besides the file: the model, and whether the mattes were smoothed."""
    return options.ensemble + ("+smooth" if smooth else "")


def composite_for(args: argparse.Namespace, format: str) -> Composite:
    """The mp4 background the flags ask for; the formats with alpha take none."""
    if (args.bg_color or args.bg_image) and format != "mp4":
        raise VideoError(f"--bg-color and --bg-image are for mp4 output (a composite); {format} keeps the alpha")
    color = parse_color(args.bg_color) if args.bg_color else Composite.color
    picture = background_image(args)
    return Composite(color, decode_image(picture) if picture else None)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m client.video", description="Remove the background of every frame of a "
                                     "video via Triton (MP4, MOV, WebM, MKV or GIF in).")
    parser.add_argument("input", type=Path)
    parser.add_argument("output", type=Path, help="a .webm (VP9 + alpha), .mov (ProRes 4444 + alpha) or .mp4 (H.264 "
                                                  "composite) file, or a folder for PNG frames")
    parser.add_argument("--format", choices=OUTPUT_FORMATS, help="default: from OUT's suffix (none: png)")
    parser.add_argument("--bg-color", help="mp4: the colour behind the subject ('#RRGGBB', 'white', 'R,G,B'; default white)")
    parser.add_argument("--bg-image", type=Path, help="mp4: a picture behind the subject, scaled to cover the frame")
    parser.add_argument("-m", "--model", help=f"the network: {' | '.join(MODELS)} (default: the server's)")
    parser.add_argument("--smooth", action="store_true", help="temporal smoothing: steadier edges where the subject "
                                                              "stands still (README: Video)")
    add_server_arguments(parser)
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    if args.protocol != "grpc":
        parser.error("video frames are streamed over gRPC: leave out --protocol or give --protocol grpc")

    try:
        options = OutputOptions.parse(kind="alpha", model=args.model)
        format = args.format or output_format(args.output)
        composite = composite_for(args, format)
        info = probe(args.input)
    except (OptionsError, VideoError, ImageError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        with MattingClient(args.url, args.protocol) as client, \
                tqdm(total=info.frames, unit="frame", desc="matting", disable=args.no_progress) as bar:
            matte_video(args.input, args.output, server_matte(client, options, args.smooth), format, composite,
                        matte_name=matte_name(options, args.smooth), progress=bar.update)
    except VideoError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except MattingError as exc:
        print(f"error: {args.input}: {exc} (finished segments are kept: run it again to go on)", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("stopped: finished segments are kept; run the same command again to go on", file=sys.stderr)
        return 130
    audio = " and audio" if info.has_audio and format != "png" else ""
    print(f"{args.output} ({info.frames} frames at {float(info.fps):g} fps{audio}, {format})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
