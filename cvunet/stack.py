"""``make run``: the embedded Triton, then the REST API beside it; prints the URLs; Ctrl-C stops both.

Every service binds 127.0.0.1 unless ``--host``/``CVUNET_HOST`` says otherwise. If one of them dies,
the others are stopped too and the exit code is non-zero, so a supervisor notices.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request

from cvunet.embedded_triton import EmbeddedTriton, Ports, TritonStartError, interrupt_on_sigterm, stop_with_parent
from cvunet.paths import MODEL_REPOSITORY, PROJECT_ROOT, STATE_DIR


class ServiceStartError(RuntimeError):
    """A service of the stack did not come up; the message says which and where its log is."""


def _wait_http_ok(url: str, process: subprocess.Popen, name: str, log: str, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise ServiceStartError(f"{name} exited with code {process.returncode} while starting; see {log}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.3)
    raise ServiceStartError(f"{name} did not answer {url} within {timeout_s:.0f} s; see {log}")


def start_rest_api(host: str, port: int, triton_grpc_url: str) -> subprocess.Popen:
    log_path = STATE_DIR / "logs" / f"rest-{port}.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "api", "--host", host, "--port", str(port), "--triton-url", triton_grpc_url],
            cwd=PROJECT_ROOT, stdout=log, stderr=subprocess.STDOUT, preexec_fn=stop_with_parent,
        )
    _wait_http_ok(f"http://{host}:{port}/healthz", process, "the REST API", str(log_path))
    return process


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run Triton and the REST API on this machine.")
    parser.add_argument("--host", default=os.environ.get("CVUNET_HOST", "127.0.0.1"), help="bind address for every service")
    parser.add_argument("--rest-port", type=int, default=int(os.environ.get("REST_PORT", 8080)))
    parser.add_argument("--http-port", type=int, default=int(os.environ.get("TRITON_HTTP_PORT", 8000)))
    parser.add_argument("--grpc-port", type=int, default=int(os.environ.get("TRITON_GRPC_PORT", 8001)))
    parser.add_argument("--metrics-port", type=int, default=int(os.environ.get("TRITON_METRICS_PORT", 8002)))
    args = parser.parse_args(argv)

    interrupt_on_sigterm()
    triton = EmbeddedTriton(MODEL_REPOSITORY, args.host, Ports(args.http_port, args.grpc_port, args.metrics_port))
    rest: subprocess.Popen | None = None
    print(f"starting Triton (log: {triton.log_path}) and the REST API …", flush=True)
    try:
        triton.start()
        rest = start_rest_api(args.host, args.rest_port, triton.grpc_url)
        print(
            "ready\n"
            f"  REST API        http://{args.host}:{args.rest_port}/api/matting   "
            f"(curl -F image=@photo.jpg http://{args.host}:{args.rest_port}/api/matting > result.png)\n"
            f"  Triton HTTP     {triton.http_url}   (KServe v2, model 'matting')\n"
            f"  Triton gRPC     {triton.grpc_url}\n"
            f"  Triton metrics  {triton.metrics_url}\n"
            "Ctrl-C stops everything.",
            flush=True,
        )
        while triton.process.poll() is None and rest.poll() is None:
            time.sleep(0.5)
        print("error: a service stopped unexpectedly; stopping the rest (logs in .state/logs/)", file=sys.stderr)
        return 1
    except (TritonStartError, ServiceStartError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("stopping …", flush=True)
        return 0
    finally:
        if rest is not None and rest.poll() is None:
            rest.terminate()
            rest.wait(timeout=30)
        triton.stop()


if __name__ == "__main__":
    sys.exit(main())
