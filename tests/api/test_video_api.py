"""The REST video jobs (``/api/matting/video``) on a real ``python -m api`` process in front of the real
Triton, with its jobs folder in tmp: submit → 202 → poll → download; bad videos and options are a 400, an
unknown id a 404, a result asked too early a 409, an oversize video a 413; and a job survives the REST
process being killed mid-way (SIGKILL) and started again on the same folder."""

from __future__ import annotations

import json
import os
import re
import time

import av
import httpx
import pytest

from tests import video_clips
from tests.support import rest_process
from tests.video_clips import SIZE, audio_duration, decoded_alphas, iou, plain_frame, write_clip

FRAMES = 4
#: The fast network (a frame costs about 0.5 s on two busy CPU cores); its matte of the disc through VP9
#: measured an IoU of 0.989–0.995 per frame.
MODEL = "u2netp"
MIN_IOU = 0.9
VIDEO_LIMIT = 1_000_000
LONG_FRAMES = 20
#: The first segment (10 frames) is written before the frames after it are counted.
PAST_FIRST_SEGMENT = 12
NOT_A_VIDEO = "notes.mp4 is not a video file or is corrupt: send MP4, MOV, WebM, MKV or GIF"


@pytest.fixture(scope="module")
def api(triton, tmp_path_factory):
    jobs_dir = tmp_path_factory.mktemp("video-jobs")
    with rest_process("video-default", triton.grpc_url, jobs_dir, CVUNET_MAX_VIDEO_UPLOAD_BYTES=str(VIDEO_LIMIT)) as rest:
        rest.jobs_dir = jobs_dir
        yield rest


def submit(url: str, data: bytes, filename: str = "disc.mp4", **fields: str) -> httpx.Response:
    return httpx.post(f"{url}/api/matting/video", files={"video": (filename, data)}, data={"model": MODEL, **fields},
                      timeout=60)


def wait_for(url: str, job_id: str, done=lambda report: report["status"] in ("done", "failed"), timeout: float = 120) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        response = httpx.get(f"{url}/api/matting/video/{job_id}", timeout=10)
        assert response.status_code == 200, response.text
        if done(report := response.json()):
            return report
        assert time.monotonic() < deadline, f"job still {report}"
        time.sleep(0.05)


def assert_error(response: httpx.Response, status_code: int, message: str) -> None:
    assert response.status_code == status_code, response.text[:300]
    assert response.headers["content-type"] == "application/json"
    assert message in response.json()["error"], response.json()


def test_submit_poll_and_download(api, tmp_path):
    source = tmp_path / "disc.mp4"
    alphas = write_clip(source, frames=FRAMES, paint=plain_frame)
    submitted = submit(api.url, source.read_bytes())
    assert submitted.status_code == 202, submitted.text
    body = submitted.json()
    assert re.fullmatch(r"[0-9a-f]{32}", body["id"]) and body["status"] == "queued"
    assert body["status_url"] == f"{api.url}/api/matting/video/{body['id']}" == submitted.headers["location"]
    assert body["result_url"] == body["status_url"] + "/result"

    report = wait_for(api.url, body["id"])
    assert report["status"] == "done", report["error"]
    assert (report["progress"], report["frames_done"], report["frames_total"], report["fps"]) == (1.0, FRAMES, FRAMES, 25.0)
    assert (report["width"], report["height"], report["error"], report["result_url"]) == (*SIZE, None, body["result_url"])
    assert report["expires_at"] == pytest.approx(report["finished_at"] + 86400)

    result = httpx.get(body["result_url"], timeout=60)
    assert result.status_code == 200
    assert result.headers["content-type"] == "video/webm"
    assert 'filename="disc-matted.webm"' in result.headers["content-disposition"]
    output = tmp_path / "disc-matted.webm"
    output.write_bytes(result.content)
    with av.open(str(output)) as container:
        assert container.streams.video[0].average_rate == 25
    assert audio_duration(output) == pytest.approx(FRAMES / 25, abs=0.05)
    mattes = decoded_alphas(output)
    assert len(mattes) == FRAMES
    assert min(iou(matte, truth) for matte, truth in zip(mattes, alphas)) >= MIN_IOU

    preview = httpx.get(report["preview_url"], timeout=10)
    assert (preview.status_code, preview.headers["content-type"]) == (200, "image/png")


def test_bad_videos_and_options_get_a_clear_400(api, tmp_path):
    clip = tmp_path / "disc.mp4"
    write_clip(clip, frames=3, paint=plain_frame)
    before = sorted(api.jobs_dir.iterdir())
    assert_error(submit(api.url, b"these are notes, not a video\n" * 50, "notes.mp4"), 400, NOT_A_VIDEO)
    assert_error(submit(api.url, clip.read_bytes()[:3000], "cut.mp4"), 400, "cut.mp4 is not a video file or is corrupt")
    assert_error(submit(api.url, b"", "empty.mp4"), 400, "empty.mp4 is empty")
    assert_error(submit(api.url, clip.read_bytes(), format="gif"), 400, "format must be one of webm, mov, png, mp4")
    assert_error(submit(api.url, clip.read_bytes(), bg_color="white"), 400, "for mp4 output")
    assert_error(submit(api.url, clip.read_bytes(), model="bogus"), 400, "model must be one of")
    missing = httpx.post(f"{api.url}/api/matting/video", files={"image": ("disc.mp4", clip.read_bytes())}, timeout=60)
    assert_error(missing, 400, "missing the 'video' field: send the video as a multipart/form-data file field")
    assert sorted(api.jobs_dir.iterdir()) == before, "a refused upload leaves nothing behind"


def test_unknown_ids_are_404(api):
    for path in ("0" * 32, "0" * 32 + "/result", "0" * 32 + "/preview", "not-a-job-id", "0" * 31 + "G"):
        assert_error(httpx.get(f"{api.url}/api/matting/video/{path}", timeout=10), 404, "no video job")
    # an id that would climb out of the jobs folder matches no route at all
    assert_error(httpx.get(f"{api.url}/api/matting/video/..%2F..%2Fetc/result", timeout=10), 404, "Not Found")


def test_oversize_videos_are_413_and_images_keep_their_limit(api):
    oversize = os.urandom(VIDEO_LIMIT + 100_000)
    message = f"the video may be at most {VIDEO_LIMIT:,} bytes"
    assert_error(submit(api.url, oversize), 413, message)
    assert_error(submit(api.url, oversize[: VIDEO_LIMIT + 1]), 413, message)  # within the multipart allowance
    image = httpx.post(f"{api.url}/api/matting", files={"image": ("big.jpg", oversize)}, timeout=60)
    assert_error(image, 400, "")  # over the video limit but within the image one: refused as no image, not as too big


def test_a_job_survives_a_restart_of_the_rest_process(triton, tmp_path, monkeypatch):
    """4 s at 5 fps: two segments of 2 s (10 frames); the process is killed once the first is written (its
    frames are counted as the next ones are matted), before the end."""
    monkeypatch.setattr(video_clips, "FPS", 5)
    source, jobs_dir = tmp_path / "long.mp4", tmp_path / "jobs"
    alphas = write_clip(source, frames=LONG_FRAMES, paint=plain_frame)
    with rest_process("video-before-restart", triton.grpc_url, jobs_dir) as rest:
        job_id = submit(rest.url, source.read_bytes(), "long.mp4").json()["id"]
        early = httpx.get(f"{rest.url}/api/matting/video/{job_id}/result", timeout=10)
        assert_error(early, 409, "the result is there once its status is done")
        report = wait_for(rest.url, job_id, lambda report: report["frames_done"] >= PAST_FIRST_SEGMENT
                          or report["status"] in ("done", "failed"))
        assert report["status"] == "running" and report["frames_done"] < LONG_FRAMES, report
        rest.process.kill()
        rest.process.wait()
    assert json.loads((jobs_dir / job_id / "job.json").read_text())["status"] == "running"

    with rest_process("video-after-restart", triton.grpc_url, jobs_dir) as rest:
        report = wait_for(rest.url, job_id)
        assert (report["status"], report["frames_done"], report["fps"]) == ("done", LONG_FRAMES, 5.0), report
        result = httpx.get(report["result_url"], timeout=60)
    assert result.status_code == 200, result.text[:300]
    output = tmp_path / "long-matted.webm"
    output.write_bytes(result.content)
    mattes = decoded_alphas(output)
    assert len(mattes) == LONG_FRAMES
    assert min(iou(matte, truth) for matte, truth in zip(mattes, alphas)) >= MIN_IOU
