"""Video files for matting: probe an input (with limits), decode its frames, and write the matted video as
WebM VP9 or MOV ProRes 4444 with alpha, a PNG sequence, or an H.264 MP4 composite, keeping its frame rate,
frame count and audio.

Decoding and encoding are PyAV's (FFmpeg's libraries ship in its wheels). How mattes are computed is the
caller's: a :data:`MatteSource` turns frames into alphas. The output is written in segments of a few seconds
into ``<output>.parts/``, each finished atomically, so a run that stops is resumed by running it again; the
segments are then joined by copying their packets (every segment starts with a keyframe), with the source's
audio, and the result is renamed into place.
"""

from __future__ import annotations

import collections
import hashlib
import heapq
import itertools
import json
import os
import shutil
from collections.abc import Callable, Generator, Iterable, Iterator
from contextlib import closing
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from PIL import Image, ImageOps

from matting.codec import encode_image
from matting.compose import compose
from matting.files import atomic_write_bytes, sibling_temp_path
from matting.options import OutputOptions

#: frames (RGB, uint8 H×W×3, taken as they are needed) → their mattes (uint8 H×W), one per frame, in order.
#: One call gets every frame of a file still to matte, so a stream (and its temporal smoothing) spans the file.
MatteSource = Callable[[Iterator[np.ndarray]], Generator[np.ndarray, None, None]]

OUTPUT_FORMATS = ("webm", "mov", "png", "mp4")
#: The only demuxers an input is opened with, in the order tried: FFmpeg's probing would also accept
#: playlists (which open other files), text (as ANSI art) and still images.
INPUT_DEMUXERS = ("mov", "matroska", "gif")
INPUT_NAMES = "MP4, MOV, WebM, MKV or GIF"
#: The muxer and options of each video output format.
CONTAINERS = {"webm": ("webm", {}), "mov": ("mov", {"movflags": "+faststart"}), "mp4": ("mp4", {"movflags": "+faststart"})}


@dataclass(frozen=True)
class Encoding:
    """How one output format encodes: the video encoder, its pixel format and options, the audio codecs
    the container holds as they come, and the audio encoder for any other."""

    codec: str
    pix_fmt: str
    options: dict[str, str]
    audio_codecs: frozenset[str]
    audio_encoder: str


ENCODINGS = {
    # The libvpx encoder writes the alpha plane as a second VP9 stream beside the colour one.
    "webm": Encoding("libvpx-vp9", "yuva420p", {"crf": "30", "b": "0", "deadline": "good", "cpu-used": "4", "row-mt": "1"},
                     frozenset({"opus", "vorbis"}), "libopus"),
    # Profile 4 is ProRes 4444, the profile with an alpha channel.
    "mov": Encoding("prores_ks", "yuva444p10le", {"profile": "4"},
                    frozenset({"aac", "alac", "mp3", "ac3", "pcm_s16le", "pcm_s16be", "pcm_s24le", "pcm_f32le"}), "aac"),
    # No B-frames: a short segment would otherwise get other decode timestamps than a long one, and the
    # joined stream gaps where they meet.
    "mp4": Encoding("libx264", "yuv420p", {"crf": "18", "preset": "medium", "bf": "0"},
                    frozenset({"aac", "alac", "mp3", "ac3", "eac3", "opus", "flac"}), "aac"),
}
#: Opus encodes at 48 kHz only.
AUDIO_RATES = {"libopus": 48000}


class VideoError(ValueError):
    """The input cannot be read or is over a limit, or the output cannot be written there; the message
    says why in plain words."""


@dataclass(frozen=True)
class VideoLimits:
    """What an input may be at most. The sides are compared orientation-free (a portrait 2160×3840 is
    within 3840×2160)."""

    max_duration_s: float = 600.0
    max_width: int = 3840
    max_height: int = 2160
    max_bytes: int = 2 * 1024**3

    def allows(self, width: int, height: int) -> bool:
        """Whether a width×height picture is within the size limit, either way round."""
        return max(width, height) <= max(self.max_width, self.max_height) and \
            min(width, height) <= min(self.max_width, self.max_height)


@dataclass(frozen=True)
class VideoInfo:
    frames: int
    fps: Fraction
    duration_s: float
    width: int
    height: int
    has_audio: bool
    codec: str


@dataclass(frozen=True)
class Composite:
    """The background of the mp4 output: a colour, or a picture scaled to cover the frame."""

    color: tuple[int, int, int] = (255, 255, 255)
    image: Image.Image | None = None


def output_format(path: Path) -> str:
    """The output format OUT's suffix asks for: .webm, .mov, .mp4, or none (a folder of PNG frames)."""
    suffix = Path(path).suffix.lower().lstrip(".")
    if not suffix:
        return "png"
    if suffix in OUTPUT_FORMATS:
        return suffix
    raise VideoError(f"cannot tell the output format from '{Path(path).name}': name it .webm, .mov or .mp4, "
                     f"or give a folder for PNG frames")


def _open_input(path: Path) -> av.container.InputContainer:
    """``path`` opened with the first of INPUT_DEMUXERS that reads it."""
    for demuxer in INPUT_DEMUXERS:
        try:
            return av.open(str(path), format=demuxer)
        except av.FFmpegError:
            continue
    raise VideoError(f"{path.name} is not a video file or is corrupt: send {INPUT_NAMES}")


def probe(path: Path, limits: VideoLimits = VideoLimits()) -> VideoInfo:
    """What ``path`` holds, refusing what cannot be read (missing, empty, not a video, corrupt) and what is
    over ``limits``, before any frame is decoded."""
    path = Path(path)
    if not path.is_file():
        raise VideoError(f"{path} does not exist or is not a file")
    size = path.stat().st_size
    if size == 0:
        raise VideoError(f"{path.name} is empty: the file has 0 bytes")
    if size > limits.max_bytes:
        raise VideoError(f"{path.name} is {size:,} bytes; the limit is {limits.max_bytes:,} bytes")
    with _open_input(path) as container:
        if not container.streams.video:
            raise VideoError(f"{path.name} has no video stream")
        stream = container.streams.video[0]
        fps = stream.average_rate or stream.guessed_rate
        width, height = stream.codec_context.width, stream.codec_context.height
        if not fps or not width or not height:
            raise VideoError(f"{path.name} is corrupt: its video stream has no frame rate or size")
        if not limits.allows(width, height):
            raise VideoError(f"{path.name} is {width}×{height}; the limit is {limits.max_width}×{limits.max_height}")
        stated_s = float(stream.duration * stream.time_base) if stream.duration else (container.duration or 0) / av.time_base
        _check_duration(path, stated_s, limits)  # before counting frames, which reads the whole file
        frames = stream.frames or _count_packets(container, stream, path)
        if not frames:
            raise VideoError(f"{path.name} has no video frames")
        duration_s = stated_s or float(frames / fps)
        _check_duration(path, duration_s, limits)
        return VideoInfo(frames, Fraction(fps), duration_s, width, height, bool(container.streams.audio),
                         stream.codec_context.name)


def _check_duration(path: Path, duration_s: float, limits: VideoLimits) -> None:
    if duration_s > limits.max_duration_s:
        raise VideoError(f"{path.name} lasts {duration_s:,.1f} s; the limit is {limits.max_duration_s:,.0f} s")


def _count_packets(container: av.container.InputContainer, stream: av.video.stream.VideoStream, path: Path) -> int:
    """The frame count of a container that does not state it (WebM, GIF): its packets, read without decoding."""
    try:
        return sum(1 for packet in container.demux(stream) if packet.size)
    except av.FFmpegError as exc:
        raise VideoError(f"{path.name} is corrupt: {exc.strerror}") from None


def read_frames(path: Path) -> Iterator[np.ndarray]:
    """Every frame of ``path``'s first video stream as RGB uint8 H×W×3, in display order."""
    path = Path(path)
    with _open_input(path) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        try:
            for frame in container.decode(stream):
                yield frame.to_ndarray(format="rgb24")
        except av.FFmpegError as exc:
            raise VideoError(f"{path.name} is corrupt: decoding failed ({exc.strerror})") from None


class SegmentWriter:
    """Writes (RGB frame, alpha) pairs as segments of one output format, at the source's size and rate:
    a video file per segment, or for png a folder of RGBA frames."""

    def __init__(self, format: str, fps: Fraction, size: tuple[int, int], composite: Composite = Composite()):
        self.format, self.fps, self.size, self.composite = format, fps, size, composite
        #: The picture behind an mp4 composite, fitted once: compose() then takes it as it is.
        self.background = ImageOps.fit(composite.image.convert("RGB"), size, Image.LANCZOS) \
            if format == "mp4" and composite.image is not None else None
        self.suffix = "" if format == "png" else f".{format}"

    def picture(self, rgb: np.ndarray, alpha: np.ndarray) -> np.ndarray:
        """The frame as the format stores it: the RGBA cut-out, or for mp4 the composite with even sides,
        which H.264 in 4:2:0 needs (an odd last row or column is repeated)."""
        if self.format != "mp4":
            return np.asarray(compose(Image.fromarray(rgb), alpha, OutputOptions()))
        options = OutputOptions(kind="composite", bg_color=self.composite.color)
        pixels = np.asarray(compose(Image.fromarray(rgb), alpha, options, self.background))
        height, width = pixels.shape[:2]
        return np.pad(pixels, ((0, height % 2), (0, width % 2), (0, 0)), mode="edge")

    def write(self, path: Path, pairs: Iterable[tuple[np.ndarray, np.ndarray]], first_frame: int) -> None:
        """One segment at ``path``, atomically (a temporary name, renamed once complete); png frames are
        numbered from ``first_frame``, video timestamps from 0."""
        temp = sibling_temp_path(path)
        try:
            if self.format == "png":
                temp.mkdir()
                for index, (rgb, alpha) in enumerate(pairs, first_frame):
                    pixels = self.picture(rgb, alpha)
                    (temp / f"frame-{index:06d}.png").write_bytes(encode_image(Image.fromarray(pixels), "png"))
            else:
                self._encode(temp, pairs)
            os.replace(temp, path)
        except BaseException:
            if temp.is_dir():
                shutil.rmtree(temp)
            else:
                temp.unlink(missing_ok=True)
            raise

    def _encode(self, path: Path, pairs: Iterable[tuple[np.ndarray, np.ndarray]]) -> None:
        encoding = ENCODINGS[self.format]
        width, height = self.size
        with av.open(str(path), "w", format=CONTAINERS[self.format][0]) as container:
            stream = container.add_stream(encoding.codec, rate=self.fps, options=encoding.options)
            stream.pix_fmt = encoding.pix_fmt
            stream.width, stream.height = (width + width % 2, height + height % 2) if self.format == "mp4" else (width, height)
            for index, (rgb, alpha) in enumerate(pairs):
                pixels = self.picture(rgb, alpha)
                frame = av.VideoFrame.from_ndarray(pixels, format="rgba" if pixels.shape[2] == 4 else "rgb24")
                frame.pts = index
                container.mux(stream.encode(frame))
            container.mux(stream.encode())


def _shifted_packets(container: av.container.InputContainer, source: av.stream.Stream, stream: av.stream.Stream,
                     shift: int) -> Iterator[av.Packet]:
    """``source``'s packets as they are, moved to the output ``stream`` and ``shift`` (in ``source``'s time
    base) later."""
    for packet in container.demux(source):
        if packet.dts is None:  # the demuxer's end-of-stream marker
            continue
        packet.pts += shift
        packet.dts += shift
        packet.stream = stream
        yield packet


def _segment_packets(segments: list[tuple[int, Path]], stream: av.video.stream.VideoStream,
                     fps: Fraction) -> Iterator[av.Packet]:
    """The packets of the segments, each (first frame, file), moved to the segment's place in time."""
    for first_frame, path in segments:
        with av.open(str(path)) as container:
            source = container.streams.video[0]
            yield from _shifted_packets(container, source, stream, round(first_frame / fps / source.time_base))


def _copied_audio(original: av.container.InputContainer, stream: av.audio.stream.AudioStream,
                  shift_s: float) -> Iterator[av.Packet]:
    """The source's audio packets as they are, ``shift_s`` earlier."""
    source = original.streams.audio[0]
    return _shifted_packets(original, source, stream, -round(shift_s / source.time_base))


def _encoded_audio(original: av.container.InputContainer, stream: av.audio.stream.AudioStream,
                   shift_s: float) -> Iterator[av.Packet]:
    """The source's audio decoded and encoded by ``stream``'s encoder (which resamples), ``shift_s`` earlier."""
    source = original.streams.audio[0]
    shift = round(shift_s / source.time_base)
    for frame in original.decode(source):
        frame.pts -= shift
        yield from stream.encode(frame)
    yield from stream.encode()


def _add_audio(original: av.container.InputContainer, output: av.container.OutputContainer, format: str,
               shift_s: float) -> Iterator[av.Packet]:
    """An audio stream in ``output`` for the source's first one: copied when the container holds its codec,
    else encoded with the format's audio encoder; returns its packets."""
    source = original.streams.audio[0]
    encoding = ENCODINGS[format]
    if source.codec_context.name in encoding.audio_codecs:
        return _copied_audio(original, output.add_stream_from_template(source), shift_s)
    stream = output.add_stream(encoding.audio_encoder, rate=AUDIO_RATES.get(encoding.audio_encoder, source.rate))
    stream.layout = source.layout.name if source.channels <= 2 else "stereo"  # what every encoder here takes
    return _encoded_audio(original, stream, shift_s)


def join_segments(segments: list[tuple[int, Path]], source: Path, target: Path, format: str, fps: Fraction) -> None:
    """Write ``target`` from the video segments, each (first frame, file), by copying their packets, with
    the audio of ``source``, interleaved in time."""
    muxer, options = CONTAINERS[format]
    with av.open(str(target), "w", format=muxer, options=options) as output, _open_input(source) as original:
        with av.open(str(segments[0][1])) as first:
            template = first.streams.video[0]
            video = output.add_stream_from_template(template)
        if format == "webm":
            video.metadata["alpha_mode"] = "1"  # the Matroska AlphaMode flag players look for
        streams = [_segment_packets(segments, video, fps)]
        if original.streams.audio:
            start = original.streams.video[0].start_time
            shift_s = float(start * original.streams.video[0].time_base) if start else 0.0
            streams.append(_add_audio(original, output, format, shift_s))
        for packet in heapq.merge(*streams, key=lambda packet: packet.dts * packet.time_base):
            output.mux(packet)


def _join_frames(segments: list[tuple[int, Path]], target: Path) -> None:
    """The png segments' frames in one folder, ``target``: hard links, so the segments stay whole until the
    end (a join that stops half-way is redone)."""
    target.mkdir()
    for _, folder in segments:
        for frame in sorted(folder.iterdir()):
            os.link(frame, target / frame.name)


def _job_description(source: Path, format: str, segment_frames: int, composite: Composite, matte_name: str) -> dict:
    """What the segments in a parts folder were made from: a rerun resumes them only when all of it is the same."""
    stat = source.stat()
    background = hashlib.sha256(composite.image.tobytes()).hexdigest() if composite.image is not None else None
    return {"source": str(source.resolve()), "bytes": stat.st_size, "mtime_ns": stat.st_mtime_ns, "format": format,
            "segment_frames": segment_frames, "color": list(composite.color), "background": background, "matte": matte_name}


def _prepare_parts(parts: Path, job: dict) -> None:
    """The parts folder, keeping the segments of the same job and nothing else: a different job starts
    over, and what a stopped run left half-written is removed."""
    manifest = parts / "job.json"
    if parts.is_dir() and (not manifest.is_file() or json.loads(manifest.read_text()) != job):
        shutil.rmtree(parts)
    parts.mkdir(parents=True, exist_ok=True)
    for entry in parts.iterdir():
        if entry.name == manifest.name or entry.name.startswith("segment-"):
            continue
        if entry.is_dir():
            shutil.rmtree(entry)
        else:
            entry.unlink()
    atomic_write_bytes(manifest, json.dumps(job).encode())


def matte_video(source: Path, output: Path, matte: MatteSource, format: str | None = None,
                composite: Composite = Composite(), limits: VideoLimits = VideoLimits(), segment_seconds: float = 2.0,
                matte_name: str = "", progress: Callable[[int], None] = lambda frames: None) -> VideoInfo:
    """Matte every frame of ``source`` and write ``output`` in ``format`` (default: from its suffix).

    Segments of ``segment_seconds`` go to ``<output>.parts/``; a rerun of the same job (same source, format,
    background and ``matte_name``, which names the matte source, e.g. the model) skips those already
    written. ``progress(frames)`` is called as frames are done, skipped ones included. Returns the source's
    :class:`VideoInfo`; raises VideoError for an input that cannot be read or is over ``limits``.
    """
    source, output = Path(source), Path(output)
    format = format or output_format(output)
    if format not in OUTPUT_FORMATS:
        raise VideoError(f"format must be one of {', '.join(OUTPUT_FORMATS)}, not {format!r}")
    if output.resolve() == source.resolve():
        raise VideoError("the output would overwrite the input")
    if format == "png" and output.exists() and (not output.is_dir() or any(output.iterdir())):
        raise VideoError(f"{output} exists: PNG frames go into a new or empty folder")
    if format != "png" and output.is_dir():
        raise VideoError(f"{output} is a folder: name a .{format} file")
    info = probe(source, limits)
    segment_frames = max(1, round(segment_seconds * info.fps))
    parts = output.with_name(output.name + ".parts")
    _prepare_parts(parts, _job_description(source, format, segment_frames, composite, matte_name))
    writer = SegmentWriter(format, info.fps, (info.width, info.height), composite)
    written = {path.name for path in parts.glob("segment-*")}
    segments: list[tuple[int, Path]] = []
    #: The frames handed to ``matte`` whose mattes have not come back yet, with their index.
    sent: collections.deque[tuple[int, np.ndarray]] = collections.deque()

    def frames_to_matte(frames: Iterator[np.ndarray]) -> Iterator[np.ndarray]:
        """The frames of the segments still to write; those of written ones only count as progress."""
        for index, frame in enumerate(frames):
            first_frame = index - index % segment_frames
            if index == first_frame:
                segments.append((first_frame, parts / f"segment-{first_frame:08d}{writer.suffix}"))
            if segments[-1][1].name in written:
                progress(1)
                continue
            sent.append((index, frame))
            yield frame

    def matted(mattes: Iterator[np.ndarray]) -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
        for alpha in mattes:
            index, frame = sent.popleft()
            yield index, frame, alpha
            progress(1)

    with closing(read_frames(source)) as frames, closing(matte(frames_to_matte(frames))) as mattes:
        for segment, pairs in itertools.groupby(matted(mattes), key=lambda item: item[0] // segment_frames):
            first_frame = segment * segment_frames
            writer.write(parts / f"segment-{first_frame:08d}{writer.suffix}",
                         ((frame, alpha) for _, frame, alpha in pairs), first_frame)
    joined = parts / f"joined{writer.suffix}"
    if format == "png":
        _join_frames(segments, joined)
    else:
        join_segments(segments, source, joined, format, info.fps)
    os.replace(joined, output)
    shutil.rmtree(parts)
    return info
