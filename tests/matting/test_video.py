"""matting.video without a server: a generated clip (a moving textured disc with a known alpha over a
textured background, with a sine audio track) through every output format, resume after a stop, and the
inputs it refuses. The matte source returns the known alpha, so these tests check the file side alone."""

from __future__ import annotations

import hashlib
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from matting.video import Composite, VideoError, VideoLimits, matte_video, probe, read_frames
from tests.video_clips import FPS, FRAMES, SIZE, MIN_IOU, disc_alpha, textured_frame, write_clip, decoded_alphas, iou, audio_duration


class KnownMatte:
    """The matte source of these tests: the generated alpha of each frame it is given, in order. It counts
    the frames it was asked for and the calls (one per run), and raises at frame ``fail_at`` (a run stopped
    half-way)."""

    def __init__(self, alphas: list[np.ndarray], fail_at: int | None = None):
        self.alphas, self.fail_at, self.asked, self.calls = alphas, fail_at, 0, 0

    def __call__(self, frames):
        self.calls += 1
        for _ in frames:
            if self.asked == self.fail_at:
                raise RuntimeError("stopped")
            self.asked += 1
            yield self.alphas[self.asked - 1]


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
    matte = KnownMatte(alphas)
    matte_video(source, output, matte, progress=done.append)
    assert matte.calls == 1  # one stream for the whole file
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
        matte_video(source, output, KnownMatte(alphas, fail_at=15), segment_seconds=0.5)
    written = first_segment.stat()
    assert not output.exists()

    class Resumed(KnownMatte):
        """Starts at the second segment (frame 12), and looks at the first one while the run is on."""

        def __call__(self, frames):
            for alpha in super().__call__(frames):
                if self.asked == 13:
                    self.seen = first_segment.stat()
                yield alpha

    resumed = Resumed(alphas)
    resumed.asked = 12
    matte_video(source, output, resumed, segment_seconds=0.5)
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
