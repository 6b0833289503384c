"""The batch folder client against real Triton servers: bad files, resume, a server dying mid-run, and
requests spread across two servers while one of them dies."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

from PIL import Image

from client.batch import BatchSettings, run_batch
from client.report import REPORT_NAME
from launch.options import Ports
from launch.processes import free_port
from launch.triton import EmbeddedTriton
from matting.options import OutputOptions
from matting.paths import MODEL_REPOSITORY, PROJECT_ROOT
from tests import support
from tests.support import ARTIFACTS, start_triton

#: name → (bytes, expected outcome: an upright (width, height) or the words of the error)
def bad_input_matrix() -> dict[str, tuple[bytes, tuple[int, int] | str]]:
    exif, upright = support.exif_rotated_jpeg()
    return {
        "zero-bytes.jpg": (b"", "0 bytes"),
        "truncated.jpg": (support.truncated_jpeg(), "truncated or corrupt"),
        "text-file.jpg": (b"these are notes, not a photo\n" * 8, "not a supported image"),
        "bomb-30000.png": (support.png_with_declared_size(30000, 30000), "too large"),
        "cmyk.jpg": (support.cmyk_jpeg(), (160, 120)),
        "sixteen-bit.png": (support.png16(), (160, 120)),
        "grayscale.jpg": (support.grayscale_jpeg(), (160, 120)),
        "palette.png": (support.palette_png_with_transparency(), (160, 120)),
        "rgba.png": (support.rgba_png(), (160, 120)),
        "exif-rotated.jpg": (exif, upright),
        "animated.gif": (support.animated_gif(), (96, 64)),
        "animated.webp": (support.animated_webp(), (96, 64)),
        "one-pixel.png": (support.one_pixel_png(), (1, 1)),
        "wide.jpg": (support.wide_jpeg(), (10000, 200)),
        "twelve-mp.JPG": (support.twelve_megapixel_jpeg(), (4000, 3000)),
    }


def digest_tree(root: Path) -> dict[str, str]:
    return {str(path.relative_to(root)): hashlib.sha256(path.read_bytes()).hexdigest() for path in sorted(root.rglob("*")) if path.is_file()}


def no_temp_files(root: Path) -> bool:
    return not [path for path in root.rglob("*") if path.name.endswith(".part")]


def test_bad_input_matrix(triton, tmp_path):
    inputs, outputs = tmp_path / "in", tmp_path / "out"
    inputs.mkdir()
    matrix = bad_input_matrix()
    for name, (data, _) in matrix.items():
        (inputs / name).write_bytes(data)
    before = digest_tree(inputs)

    report = run_batch(inputs, outputs, triton.grpc_url, settings=BatchSettings(concurrency=3), progress=False)

    outcomes = {outcome.file: outcome for outcome in report.outcomes}
    assert set(outcomes) == set(matrix)
    for name, (_, expected) in matrix.items():
        outcome = outcomes[name]
        if isinstance(expected, str):
            assert outcome.status == "failed" and expected in outcome.error, (name, outcome)
            assert not (outputs / Path(name).with_suffix(".png")).exists(), f"{name}: nothing may be written for a failure"
        else:
            assert outcome.status == "ok", (name, outcome)
            with Image.open(outcome.output) as result:
                assert (result.format, result.mode, result.size) == ("PNG", "RGBA", expected), name
    assert triton.is_ready()
    assert digest_tree(inputs) == before, "inputs must never be modified"
    assert no_temp_files(outputs)
    saved = json.loads((outputs / REPORT_NAME).read_text())
    assert saved["summary"] == {**saved["summary"], "total": 15, "ok": 11, "failed": 4}
    assert {entry["file"] for entry in saved["files"] if entry["status"] == "failed"} == {
        name for name, (_, expected) in matrix.items() if isinstance(expected, str)}


def test_files_refused_for_their_content_fail_at_once_and_unsupported_types_are_listed(triton, tmp_path):
    """Per-file errors are the file's: no retries, the server stays in (they used to be INTERNAL errors,
    retried four times each before the healthy server was marked down)."""
    inputs, outputs = tmp_path / "in", tmp_path / "out"
    (inputs / "nested").mkdir(parents=True)
    for name, data in {"photo.jpg": support.encode(support.photo((160, 120)), "JPEG"), "dot.png": support.one_pixel_png(),
                       "strip.jpg": support.strip_jpeg(), "nested/strip.JPEG": support.strip_jpeg(),
                       "ppm-named.jpg": support.ppm(), "phone.heic": b"\x00\x00\x00\x18ftypheic", "logo.svg": b"<svg/>",
                       "nested/notes.txt": b"notes"}.items():
        (inputs / name).write_bytes(data)
    settings = BatchSettings(OutputOptions(format="webp", foreground="estimate"), concurrency=4)

    report = run_batch(inputs, outputs, triton.grpc_url, settings=settings, recursive=True, progress=False)

    outcomes = {outcome.file: outcome for outcome in report.outcomes}
    assert {name: outcome.status for name, outcome in outcomes.items()} == {
        "photo.jpg": "ok", "dot.png": "ok", "strip.jpg": "failed", "nested/strip.JPEG": "failed", "ppm-named.jpg": "failed"}
    too_wide = "65500×1 is too large for WebP, which holds at most 16383 pixels a side: ask for format=png"
    assert outcomes["strip.jpg"].error == outcomes["nested/strip.JPEG"].error == too_wide
    assert outcomes["ppm-named.jpg"].error.startswith("not a supported image")
    assert report.servers == {triton.grpc_url: {"handled": 2, "errors": 0, "down": None}}, "never retried, never taken out"
    assert report.unsupported == ["logo.svg", "nested/notes.txt", "phone.heic"]
    saved = json.loads((outputs / REPORT_NAME).read_text())
    assert saved["unsupported"] == ["logo.svg", "nested/notes.txt", "phone.heic"]
    assert saved["summary"] == {**saved["summary"], "total": 5, "ok": 2, "failed": 3, "unsupported": 3}
    assert "Unsupported: 3 files not sent (only .jpg .jpeg .png .webp .bmp .tif .tiff .gif are read), listed in report.json" \
        in report.summary_lines()


def _photo_folder(root: Path, count: int) -> Path:
    sizes = [(160, 120), (120, 160), (200, 150), (96, 96)]
    for index in range(count):
        folder = root / ("nested" if index % 3 == 0 else "")
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"photo{index:02d}.jpg").write_bytes(support.encode(support.photo(sizes[index % 4]), "JPEG"))
    return root


def test_resume_skips_valid_outputs_and_redoes_broken_ones(triton, tmp_path):
    inputs, outputs = _photo_folder(tmp_path / "in", 6), tmp_path / "out"
    settings = BatchSettings(OutputOptions.parse("composite", "webp", "white"))
    first = run_batch(inputs, outputs, triton.grpc_url, settings=settings, recursive=True, progress=False)
    assert first.counts == {"ok": 6}
    assert (outputs / "nested" / "photo00.webp").exists() and (outputs / "photo01.webp").exists()
    broken = outputs / "photo01.webp"
    broken.write_bytes(broken.read_bytes()[:100])

    second = run_batch(inputs, outputs, triton.grpc_url, settings=settings, recursive=True, progress=False)
    assert second.counts == {"skipped": 5, "ok": 1}
    assert [outcome.file for outcome in second.outcomes if outcome.status == "ok"] == ["photo01.jpg"]
    with Image.open(broken) as redone:
        assert redone.mode == "RGB" and redone.size == (120, 160)

    forced = BatchSettings(settings.options, overwrite=True)
    assert run_batch(inputs, outputs, triton.grpc_url, settings=forced, recursive=True, progress=False).counts == {"ok": 6}


def test_server_dying_mid_run_fails_the_rest_clearly_and_a_rerun_completes(tmp_path):
    inputs, outputs = _photo_folder(tmp_path / "in", 16), tmp_path / "out"
    ports = Ports.free()
    server = EmbeddedTriton(MODEL_REPOSITORY, ports=ports, log_path=ARTIFACTS / "triton-dying.log").start()
    stopper = threading.Thread(target=server.stop)

    def stop_after_three(outcome, done, total):
        if done == 3:
            stopper.start()

    settings = BatchSettings(concurrency=2, retries=2, backoff_s=0.2)
    try:
        interrupted = run_batch(inputs, outputs, server.grpc_url, settings=settings, recursive=True,
                                progress=False, on_outcome=stop_after_three)
    finally:
        stopper.join()
    failed = [outcome for outcome in interrupted.outcomes if outcome.status == "failed"]
    assert interrupted.counts["ok"] >= 3 and failed, interrupted.counts
    assert all("inference server unavailable" in outcome.error for outcome in failed)
    assert no_temp_files(outputs)

    server = EmbeddedTriton(MODEL_REPOSITORY, ports=ports, log_path=ARTIFACTS / "triton-restarted.log").start()
    try:
        rerun = run_batch(inputs, outputs, server.grpc_url, settings=settings, recursive=True, progress=False)
    finally:
        server.stop()
    assert rerun.counts == {"ok": len(failed), "skipped": 16 - len(failed)}


def test_command_line_summary_and_exit_code(triton, tmp_path):
    inputs = _photo_folder(tmp_path / "in", 2)
    (inputs / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    (inputs / "phone.heic").write_bytes(b"\x00\x00\x00\x18ftypheic")
    command = [sys.executable, "-m", "client.batch", str(inputs), str(tmp_path / "out"), "--alpha-only",
               "--url", triton.grpc_url, "--no-progress"]
    done = subprocess.run(command, cwd=PROJECT_ROOT, capture_output=True, text=True)
    assert done.returncode == 1, done.stderr
    for line in ["Total Images: 2", "Success: 1 (0 already done)", "Failed: 1", "Average Time:", f"Output Dir: {tmp_path / 'out'}",
                 "Unsupported: 1 files not sent"]:
        assert line in done.stdout
    assert "failed: broken.png: not a supported image" in done.stderr
    with Image.open(tmp_path / "out" / "photo01.png") as matte:
        assert matte.mode == "L"


def test_missing_input_folder_is_a_usage_error(tmp_path):
    done = subprocess.run([sys.executable, "-m", "client.batch", str(tmp_path / "nowhere")], cwd=PROJECT_ROOT,
                          capture_output=True, text=True)
    assert done.returncode == 2 and "does not exist" in done.stderr


def test_two_servers_share_a_batch_and_the_survivor_takes_over_when_one_dies(triton, tmp_path):
    inputs, outputs = _photo_folder(tmp_path / "in", 12), tmp_path / "out"
    doomed = start_triton(MODEL_REPOSITORY, "spread-doomed")
    survivor_url, doomed_url = triton.grpc_url, doomed.grpc_url
    seen = {doomed_url: 0, survivor_url: 0}
    at_kill: dict[str, int] = {}

    def kill_after_it_handled_two(outcome, done, total):
        if outcome.server:
            seen[outcome.server] += 1
        if not at_kill and seen[doomed_url] >= 2 and seen[survivor_url] >= 1:
            os.killpg(doomed.process.pid, signal.SIGKILL)  # a crash: its requests in flight fail
            doomed.process.wait()
            at_kill.update(seen, done=done)

    settings = BatchSettings(concurrency=4, retries=2, backoff_s=0.2)
    try:
        report = run_batch(inputs, outputs, [doomed_url, survivor_url], settings=settings, recursive=True,
                           progress=False, on_outcome=kill_after_it_handled_two)
    finally:
        doomed.stop()

    assert at_kill and at_kill["done"] <= 8, f"the server must die mid-run, with files left: {at_kill}"
    assert report.counts == {"ok": 12}, [(outcome.file, outcome.error) for outcome in report.outcomes]
    handled = {url: server["handled"] for url, server in report.servers.items()}
    assert sum(handled.values()) == 12 and handled[doomed_url] >= 2 and handled[survivor_url] >= 12 - handled[doomed_url]
    # At most the 2 requests it had in flight (4 over 2 servers) can have finished on it unseen before the kill.
    assert handled[doomed_url] - at_kill[doomed_url] <= 2, (handled, at_kill)
    assert report.servers[doomed_url]["down"] and report.servers[doomed_url]["errors"] >= 1, report.servers
    assert report.servers[survivor_url]["down"] is None and report.servers[survivor_url]["errors"] == 0
    for outcome in report.outcomes:
        with Image.open(outcome.output) as result:
            result.load()
            source = inputs / outcome.file
            with Image.open(source) as original:
                assert (result.format, result.mode, result.size) == ("PNG", "RGBA", original.size), outcome
    saved = json.loads((outputs / REPORT_NAME).read_text())
    assert saved["summary"]["per_server"] == handled
    assert {entry["server"] for entry in saved["files"]} == {doomed_url, survivor_url}
    assert no_temp_files(outputs) and triton.is_ready()


def test_command_line_spreads_over_several_urls_past_a_dead_one(triton, tmp_path):
    inputs = _photo_folder(tmp_path / "in", 3)
    dead = f"127.0.0.1:{free_port()}"
    command = [sys.executable, "-m", "client.batch", str(inputs), str(tmp_path / "out"), "--recursive", "--no-progress",
               "--url", f"{dead},{triton.grpc_url}", "--url", dead]
    done = subprocess.run(command, cwd=PROJECT_ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Success: 3 (0 already done)" in done.stdout
    assert f"Servers: {dead} 0 (down), {triton.grpc_url} 3" in done.stdout
    saved = json.loads((tmp_path / "out" / REPORT_NAME).read_text())
    assert saved["summary"]["per_server"] == {dead: 0, triton.grpc_url: 3}
