"""matting.video without a server: a generated clip (a moving textured disc with a known alpha over a
textured background, with a sine audio track) through every output format, resume after a stop, and the
inputs it refuses. The matte source returns the known alpha, so these tests check the file side alone."""

from __future__ import annotations

import hashlib
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image

from matting.video import Composite, VideoError, VideoLimits, matte_video, probe, read_frames

FPS = 25
FRAMES = 38  # 1.52 s
SIZE = (160, 120)
#: A matte decoded from VP9 or ProRes against the alpha that went in, per frame: both codecs are lossy
#: (measured: 1.0 for this binary matte).
MIN_IOU = 0.9


def disc_alpha(index: int, size: tuple[int, int] = SIZE, radius: int = 30) -> np.ndarray:
    """The disc of frame ``index`` as a uint8 matte: it moves 2 px right per frame."""
    width, height = size
    rows, columns = np.mgrid[0:height, 0:width]
    inside = (columns - (40 + 2 * index)) ** 2 + (rows - height // 2) ** 2 <= radius**2
    return np.where(inside, 255, 0).astype(np.uint8)


def textured_frame(alpha: np.ndarray) -> np.ndarray:
    """A textured disc (warm, fine checks) where ``alpha`` is set, over a textured background (cool stripes
    with noise)."""
    height, width = alpha.shape
    rows, columns = np.mgrid[0:height, 0:width]
    noise = np.random.default_rng(0).integers(0, 40, (height, width, 1))
    background = np.stack([40 + 0 * rows, 80 + 60 * ((columns // 8) % 2), 160 + 0 * rows], axis=-1) + noise
    disc = np.stack([230 + 0 * rows, 140 + 60 * (((rows // 4) + (columns // 4)) % 2), 40 + 0 * rows], axis=-1)
    return np.where(alpha[..., None] > 0, disc, background).clip(0, 255).astype(np.uint8)


def plain_frame(alpha: np.ndarray) -> np.ndarray:
    """A bright disc on a dark plain background: what photo-trained networks segment."""
    return np.where(alpha[..., None] > 0, np.uint8(235), np.uint8(20)).repeat(3, axis=-1)


def write_clip(path: Path, frames: int = FRAMES, size: tuple[int, int] = SIZE, paint=textured_frame,
               audio: bool = True) -> list[np.ndarray]:
    """An H.264 MP4 of the moving disc (near-lossless), with a 440 Hz AAC track when ``audio``; returns the
    alpha of every frame."""
    alphas = [disc_alpha(index, size) for index in range(frames)]
    with av.open(str(path), "w") as container:
        video = container.add_stream("libx264", rate=FPS, options={"crf": "10"})
        video.width, video.height, video.pix_fmt = *size, "yuv420p"
        sound = container.add_stream("aac", rate=44100) if audio else None
        for index, alpha in enumerate(alphas):
            frame = av.VideoFrame.from_ndarray(paint(alpha), format="rgb24")
            frame.pts = index
            container.mux(video.encode(frame))
        container.mux(video.encode())
        if sound:
            samples = 44100 * frames // FPS
            wave = (0.3 * np.sin(2 * np.pi * 440 * np.arange(samples) / 44100)).astype(np.float32)
            for start in range(0, samples, 1024):
                frame = av.AudioFrame.from_ndarray(wave[None, start:start + 1024], format="fltp", layout="mono")
                frame.sample_rate, frame.pts = 44100, start
                container.mux(sound.encode(frame))
            container.mux(sound.encode())
    return alphas


def decoded_alphas(path: Path) -> list[np.ndarray]:
    """The alpha plane of every frame. FFmpeg's native VP9 decoder drops the alpha stream: WebM is decoded
    with libvpx."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        decoder = av.CodecContext.create("libvpx-vp9", "r") if stream.codec_context.name == "vp9" else stream.codec_context
        frames = [frame for packet in container.demux(stream) for frame in decoder.decode(packet)]
    return [frame.to_ndarray(format="rgba")[..., 3] for frame in frames]


def iou(matte: np.ndarray, truth: np.ndarray) -> float:
    ours, theirs = matte >= 128, truth >= 128
    return float((ours & theirs).sum() / max(1, (ours | theirs).sum()))


def audio_duration(path: Path) -> float:
    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        last = max(packet.pts + packet.duration for packet in container.demux(stream) if packet.size)
        return float(last * stream.time_base)


class KnownMatte:
    """The matte source of these tests: the generated alpha of each frame it is given, in order. It counts
    the frames it was asked for, and raises at frame ``fail_at`` (a run stopped half-way)."""

    def __init__(self, alphas: list[np.ndarray], fail_at: int | None = None):
        self.alphas, self.fail_at, self.asked = alphas, fail_at, 0

    def __call__(self, frames: list[np.ndarray]) -> list[np.ndarray]:
        first = self.asked
        self.asked += len(frames)
        if self.fail_at is not None and first + len(frames) > self.fail_at:
            raise RuntimeError("stopped")
        return self.alphas[first:first + len(frames)]


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> tuple[Path, list[np.ndarray]]:
    path = tmp_path_factory.mktemp("clip") / "clip.mp4"
    return path, write_clip(path)


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_probe_reads_the_generated_clip(clip):
    path, alphas = clip
    info = probe(path)
    assert (info.frames, info.fps, info.width, info.height, info.has_audio, info.codec) == (FRAMES, 25, 160, 120, True, "h264")
    assert info.duration_s == pytest.approx(FRAMES / FPS, abs=0.01)
    assert len(list(read_frames(path))) == FRAMES


@pytest.mark.parametrize("format", ["webm", "mov"])
def test_alpha_formats_keep_frames_rate_audio_and_matte(clip, tmp_path, format):
    source, alphas = clip
    before = digest(source)
    output = tmp_path / f"out.{format}"
    done = []
    matte_video(source, output, KnownMatte(alphas), progress=done.append)
    assert digest(source) == before, "the input was modified"
    assert sum(done) == FRAMES
    assert not output.with_name(output.name + ".parts").exists()
    info = probe(output)
    assert (info.frames, info.fps, info.width, info.height, info.has_audio) == (FRAMES, Fraction(FPS), 160, 120, True)
    assert info.duration_s == pytest.approx(FRAMES / FPS, abs=0.05)
    mattes = decoded_alphas(output)
    assert len(mattes) == FRAMES
    ious = [iou(matte, truth) for matte, truth in zip(mattes, alphas)]
    assert min(ious) >= MIN_IOU, ious
    assert audio_duration(output) == pytest.approx(audio_duration(source), abs=0.1)


def test_png_sequence_has_every_frame_with_its_alpha(clip, tmp_path):
    source, alphas = clip
    output = tmp_path / "frames"
    matte_video(source, output, KnownMatte(alphas))
    files = sorted(output.iterdir())
    assert [path.name for path in files] == [f"frame-{index:06d}.png" for index in range(FRAMES)]
    with Image.open(files[7]) as frame:
        assert frame.mode == "RGBA" and frame.size == SIZE
        assert np.array_equal(np.asarray(frame)[..., 3], alphas[7])


def test_mp4_composites_over_the_colour_with_audio(clip, tmp_path):
    source, alphas = clip
    output = tmp_path / "out.mp4"
    # several segments: their packets must join without a gap in the timestamps
    matte_video(source, output, KnownMatte(alphas), composite=Composite(color=(0, 200, 0)), segment_seconds=0.5)
    info = probe(output)
    assert (info.frames, info.fps, info.codec, info.has_audio) == (FRAMES, Fraction(FPS), "h264", True)
    frames = list(read_frames(output))
    away_from_the_disc = disc_alpha(20, radius=36) == 0
    assert np.abs(frames[20][away_from_the_disc].astype(int) - (0, 200, 0)).max() <= 12
    assert audio_duration(output) == pytest.approx(audio_duration(source), abs=0.1)


def write_gif(path: Path, alphas: list[np.ndarray]) -> None:
    """A GIF of the textured disc at 25 fps (GIF delays are in hundredths of a second)."""
    pictures = [Image.fromarray(textured_frame(alpha)) for alpha in alphas]
    pictures[0].save(path, save_all=True, append_images=pictures[1:], duration=1000 // FPS, loop=0)


def test_mp4_of_an_odd_sized_clip_has_even_sides(tmp_path):
    alphas = [disc_alpha(index, (161, 121)) for index in range(5)]
    write_gif(tmp_path / "odd.gif", alphas)
    output = tmp_path / "odd.mp4"
    matte_video(tmp_path / "odd.gif", output, KnownMatte(alphas))
    info = probe(output)
    assert (info.width, info.height, info.frames) == (162, 122, 5)


def test_gif_input(tmp_path):
    alphas = [disc_alpha(index) for index in range(6)]
    write_gif(tmp_path / "clip.gif", alphas)
    output = tmp_path / "clip.webm"
    matte_video(tmp_path / "clip.gif", output, KnownMatte(alphas))
    info = probe(output)
    assert (info.frames, info.fps, info.has_audio) == (6, Fraction(FPS), False)
    assert min(iou(matte, truth) for matte, truth in zip(decoded_alphas(output), alphas)) >= MIN_IOU


def test_a_stopped_run_resumes_without_redoing_written_segments(clip, tmp_path):
    source, alphas = clip
    output = tmp_path / "out.webm"
    first_segment = output.with_name("out.webm.parts") / "segment-00000000.webm"
    with pytest.raises(RuntimeError, match="stopped"):
        matte_video(source, output, KnownMatte(alphas, fail_at=15), segment_seconds=0.5, batch_frames=4)
    written = first_segment.stat()
    assert not output.exists()

    class Resumed(KnownMatte):
        """Starts at the second segment (frame 12), and looks at the first one while the run is on."""

        def __call__(self, frames):
            if self.asked == 12:
                self.seen = first_segment.stat()
            return super().__call__(frames)

    resumed = Resumed(alphas)
    resumed.asked = 12
    matte_video(source, output, resumed, segment_seconds=0.5, batch_frames=4)
    assert resumed.asked == FRAMES
    assert (resumed.seen.st_ino, resumed.seen.st_mtime_ns) == (written.st_ino, written.st_mtime_ns)
    assert probe(output).frames == FRAMES
    assert min(iou(matte, truth) for matte, truth in zip(decoded_alphas(output), alphas)) >= MIN_IOU
    assert not first_segment.parent.exists()


def test_another_job_does_not_reuse_the_segments(clip, tmp_path):
    source, alphas = clip
    output = tmp_path / "out.mp4"
    with pytest.raises(RuntimeError):
        matte_video(source, output, KnownMatte(alphas, fail_at=15), segment_seconds=0.5)
    matte = KnownMatte(alphas)
    matte_video(source, output, matte, composite=Composite(color=(0, 0, 255)), segment_seconds=0.5)
    assert matte.asked == FRAMES


def test_refuses_what_is_not_a_readable_video(clip, tmp_path):
    source, _ = clip
    notes = tmp_path / "notes.mp4"
    notes.write_text("these are notes, not a video\n" * 50)
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(source.read_bytes()[: source.stat().st_size // 2])
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    for path, words in [(notes, "not a video file"), (cut, "not a video file or is corrupt"), (empty, "0 bytes"),
                        (tmp_path / "missing.mp4", "does not exist")]:
        with pytest.raises(VideoError, match=words):
            matte_video(path, tmp_path / "out.webm", KnownMatte([]))
        assert not (tmp_path / "out.webm").exists()


def test_limits(clip, tmp_path):
    source, _ = clip
    for limits, words in [(VideoLimits(max_width=100, max_height=100), "160×120; the limit is 100×100"),
                          (VideoLimits(max_duration_s=1), "lasts 1.5 s; the limit is 1 s"),
                          (VideoLimits(max_bytes=1000), "bytes; the limit is 1,000 bytes")]:
        with pytest.raises(VideoError, match=words):
            probe(source, limits)
    assert probe(source, VideoLimits(max_width=120, max_height=160)).width == 160  # a portrait limit fits landscape


def test_refuses_overwriting_the_input_and_unknown_outputs(clip, tmp_path):
    source, alphas = clip
    for output, words in [(source, "overwrite the input"), (tmp_path / "out.avi", "cannot tell the output format")]:
        with pytest.raises(VideoError, match=words):
            matte_video(source, output, KnownMatte(alphas))
