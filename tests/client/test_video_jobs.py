"""``VideoJobs`` against the real Triton: a generated clip (a bright disc moving on a dark plain background,
which the photo-trained networks segment) goes from submit to a result with every frame and a preview; bad
input is refused before anything is kept; finished jobs expire; a job stopped mid-way is resumed from its
segments by the next VideoJobs; and a server that does not answer leaves the job queued, not failed."""

from __future__ import annotations

import contextlib
import io
import json
import time
import zipfile

import av
import numpy as np
import pytest
from PIL import Image

from client.video_jobs import UNAVAILABLE_NOTE, VideoJob, VideoJobs
from launch.processes import free_port
from matting.codec import ImageError
from matting.options import OptionsError
from matting.video import VideoError, VideoLimits
from tests import video_clips
from tests.video_clips import SIZE, decoded_alphas, iou, plain_frame, write_clip

FRAMES = 4
#: The fast network: a frame costs about 0.5 s on two busy CPU cores (U²-Net three times that). Its matte of
#: the disc through VP9 measured an IoU of 0.989–0.995 per frame; the margin allows other weights.
MODEL = "u2netp"
MIN_IOU = 0.9
#: 4 s at 5 fps: two segments of 2 s (10 frames), so a job can be stopped after the first one.
LONG_FPS, LONG_FRAMES = 5, 20


def wait_for(jobs: VideoJobs, job_id: str, done=lambda job: job.status in ("done", "failed"),
             timeout: float = 120) -> VideoJob:
    deadline = time.monotonic() + timeout
    while not done(job := jobs.get(job_id)):
        assert time.monotonic() < deadline, f"job still {job}"
        time.sleep(0.02)
    return job


def submit_clip(jobs: VideoJobs, path, format: str = "webm", **options) -> VideoJob:
    with open(path, "rb") as file:
        return jobs.submit(file, path.name, format, **{"model": MODEL, **options})


@pytest.fixture
def clip(tmp_path):
    path = tmp_path / "disc.mp4"
    return path, write_clip(path, frames=FRAMES, paint=plain_frame)


@pytest.fixture
def finished():
    return []


@pytest.fixture
def jobs(triton, tmp_path, finished):
    video_jobs = VideoJobs(tmp_path / "jobs", triton.grpc_url, on_finished=finished.append)
    video_jobs.start()
    yield video_jobs
    video_jobs.close()


def test_a_job_from_submit_to_its_result(jobs, clip, finished):
    source, alphas = clip
    job = submit_clip(jobs, source)
    assert (job.status, job.frames_total, job.fps, (job.width, job.height), job.model) == ("queued", FRAMES, 25.0, SIZE, MODEL)
    assert job.result_name == "disc-matted.webm"
    done = wait_for(jobs, job.id)
    assert done.status == "done", done.error
    assert (done.frames_done, done.progress, done.error) == (FRAMES, 1.0, None)
    assert job.created_at <= done.started_at <= done.finished_at
    assert finished == [done] and jobs.jobs() == [done]
    assert sorted(path.name for path in (jobs.root / job.id).iterdir()) == ["job.json", "preview.png", "result.webm", "source"]

    result = jobs.result_path(job.id)
    with av.open(str(result)) as container:
        assert container.streams.video[0].average_rate == 25
        assert container.streams.audio
    mattes = decoded_alphas(result)
    assert len(mattes) == FRAMES
    assert min(iou(matte, truth) for matte, truth in zip(mattes, alphas)) >= MIN_IOU

    preview = Image.open(jobs.preview_path(job.id))
    assert (preview.format, preview.mode, preview.size) == ("PNG", "RGBA", SIZE)
    assert iou(np.asarray(preview)[..., 3], alphas[0]) >= MIN_IOU


def test_an_upload_keeps_its_name_in_any_script_but_not_its_folders(jobs, clip):
    source, _ = clip
    with open(source, "rb") as video:
        job = jobs.submit(video, "../商品 视频.mp4", "webm", MODEL)
    assert (job.filename, job.result_name) == ("商品_视频.mp4", "商品_视频-matted.webm")
    assert (jobs.root / job.id / "source" / "商品_视频.mp4").is_file()


def test_png_frames_come_zipped_and_mp4_on_a_colour(jobs, clip):
    source, alphas = clip
    frames = submit_clip(jobs, source, "png")
    composite = submit_clip(jobs, source, "mp4", bg_color="blue")
    assert wait_for(jobs, frames.id).status == "done"
    with zipfile.ZipFile(jobs.result_path(frames.id)) as archive:
        names = archive.namelist()
        first = Image.open(io.BytesIO(archive.read(names[0])))
    assert names == [f"frame-{index:06d}.png" for index in range(FRAMES)]
    assert (first.mode, first.size) == ("RGBA", SIZE) and iou(np.asarray(first)[..., 3], alphas[0]) >= MIN_IOU
    assert frames.result_name == "disc-matted-frames.zip"
    assert not (jobs.root / frames.id / "frames").exists()

    assert wait_for(jobs, composite.id).status == "done"
    assert composite.bg_color == "#0000ff"
    preview = np.asarray(Image.open(jobs.preview_path(composite.id)))
    assert preview.shape == (SIZE[1], SIZE[0], 3) and tuple(preview[0, -1]) == (0, 0, 255)  # a corner: background


def test_bad_input_is_refused_and_leaves_nothing_behind(jobs, clip, tmp_path):
    source, _ = clip
    notes = tmp_path / "notes.mp4"
    notes.write_text("these are notes, not a video\n" * 50)
    with pytest.raises(VideoError, match=r"^notes\.mp4 is not a video file or is corrupt: send MP4, MOV, WebM, MKV or GIF$"):
        submit_clip(jobs, notes)
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(source.read_bytes()[:4000])
    with pytest.raises(VideoError, match="cut.mp4"):
        submit_clip(jobs, cut)
    with pytest.raises(OptionsError, match="format must be one of webm, mov, png, mp4, not 'gif'"):
        submit_clip(jobs, source, "gif")
    with pytest.raises(OptionsError, match="model must be one of"):
        submit_clip(jobs, source, model="bogus")
    with pytest.raises(OptionsError, match="for mp4 output"):
        submit_clip(jobs, source, "webm", bg_color="white")
    with pytest.raises(OptionsError, match="bg_color"):
        submit_clip(jobs, source, "mp4", bg_color="not a colour")
    with pytest.raises(ImageError):
        submit_clip(jobs, source, "mp4", bg_image=b"no picture")
    small = VideoJobs(jobs.root, "127.0.0.1:1", limits=VideoLimits(max_bytes=1000))
    with pytest.raises(VideoError, match="over 1,000 bytes"):
        submit_clip(small, source)
    assert list(jobs.root.iterdir()) == [] and jobs.jobs() == []
    assert jobs.get("../" + "0" * 29) is None and jobs.get("0" * 32) is None and jobs.result_path("x") is None


def test_finished_jobs_expire(jobs, clip):
    job = wait_for(jobs, submit_clip(jobs, clip[0]).id)
    assert jobs.remove_expired(now=job.finished_at + jobs.keep_s - 1) == []
    assert jobs.remove_expired(now=job.finished_at + jobs.keep_s) == [job.id]
    assert not (jobs.root / job.id).exists() and jobs.get(job.id) is None


def test_a_job_stopped_mid_way_is_resumed_from_its_segments(triton, tmp_path, monkeypatch):
    source = tmp_path / "long.mp4"
    monkeypatch.setattr(video_clips, "FPS", LONG_FPS)
    alphas = write_clip(source, frames=LONG_FRAMES, paint=plain_frame, audio=False)
    root = tmp_path / "jobs"
    first = VideoJobs(root, triton.grpc_url)
    first.start()
    job = submit_clip(first, source)
    segment = root / job.id / "result.webm.parts" / "segment-00000000.webm"
    try:
        deadline = time.monotonic() + 120
        while not segment.exists():
            assert time.monotonic() < deadline and first.get(job.id).status != "done"
            time.sleep(0.01)
    finally:
        first.close()
    on_disk = json.loads((root / job.id / "job.json").read_text())
    assert on_disk["status"] == "running" and on_disk["frames_done"] < LONG_FRAMES
    written = segment.stat().st_ino

    finished = []
    second = VideoJobs(root, triton.grpc_url, on_finished=finished.append)
    second.start()
    inodes = set()

    def watch_segment(job: VideoJob) -> bool:
        with contextlib.suppress(FileNotFoundError):  # the parts go once the segments are joined
            inodes.add(segment.stat().st_ino)
        return job.status in ("done", "failed")

    try:
        done = wait_for(second, job.id, watch_segment)
    finally:
        second.close()
    assert (done.status, done.fps, done.frames_done) == ("done", LONG_FPS, LONG_FRAMES), done.error
    assert inodes == {written}, "the segment written before the stop is kept, not matted again"
    mattes = decoded_alphas(second.result_path(job.id))
    assert len(mattes) == LONG_FRAMES and finished == [done]
    assert min(iou(matte, truth) for matte, truth in zip(mattes, alphas)) >= MIN_IOU


def test_a_server_that_does_not_answer_leaves_the_job_queued(clip, tmp_path):
    jobs = VideoJobs(tmp_path / "jobs", f"127.0.0.1:{free_port()}")
    jobs.start()
    try:
        job = submit_clip(jobs, clip[0])
        waiting = wait_for(jobs, job.id, lambda job: job.error is not None, timeout=60)
        assert (waiting.status, waiting.error) == ("queued", UNAVAILABLE_NOTE)
    finally:
        started = time.monotonic()
        jobs.close()
    assert time.monotonic() - started < 5, "close() waits out no retry delay"
    assert jobs.get(job.id).status == "queued"
