"""``make run``: the embedded Triton, then the REST API and the dashboard; prints the URLs; Ctrl-C stops all.

Every service binds 127.0.0.1 unless ``--host``/``CVUNET_HOST`` says otherwise. A service that dies is
restarted with backoff while the others keep serving: while Triton is down the REST API answers 503 and the
dashboard says the service is restarting, and both recover by themselves once it is back.
"""

from __future__ import annotations

import argparse
import sys

from launch.options import add_address_arguments, env_port, triton_ports
from launch.processes import ChildService, ServiceStartError, run_until_stopped
from launch.triton import EmbeddedTriton, TritonStartError
from matting import contract
from matting.paths import MODEL_REPOSITORY, PROJECT_ROOT, STATE_DIR
from serving.admin import MODEL_IMPORT_MAX_MB
from serving.admin_key import KEY_FILE_ENV

LOGS = STATE_DIR / "logs"


def rest_api_command(host: str, port: int, triton_grpc_url: str) -> list[str]:
    return [sys.executable, "-m", "api", "--host", host, "--port", str(port), "--triton-url", triton_grpc_url]


def dashboard_command(host: str, port: int) -> list[str]:
    """Streamlit's global upload cap fits a model import; each image uploader sets its own smaller one."""
    return [sys.executable, "-m", "streamlit", "run", str(PROJECT_ROOT / "ui" / "app.py"),
            "--server.address", host, "--server.port", str(port), "--server.headless", "true",
            "--server.maxUploadSize", str(MODEL_IMPORT_MAX_MB), "--server.fileWatcherType", "none",
            "--browser.gatherUsageStats", "false", "--client.toolbarMode", "viewer"]


def dashboard_env(triton: EmbeddedTriton) -> dict[str, str]:
    """Where the dashboard finds Triton, its repository and the key its model administration needs."""
    return {"TRITON_GRPC_URL": triton.grpc_url, "TRITON_METRICS_URL": triton.metrics_url,
            "CVUNET_REPOSITORY": str(triton.repository), KEY_FILE_ENV: str(triton.admin_key_file)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run Triton, the REST API and the dashboard on this machine.")
    add_address_arguments(parser)
    parser.add_argument("--rest-port", type=int, default=env_port("REST_PORT", contract.REST_PORT))
    parser.add_argument("--ui-port", type=int, default=env_port("UI_PORT", contract.UI_PORT))
    args = parser.parse_args(argv)
    triton = EmbeddedTriton(MODEL_REPOSITORY, args.host, triton_ports(args))
    # The REST API counts as serving once /healthz answers at all: it answers 503 while Triton restarts.
    rest_api = ChildService("the REST API", rest_api_command(args.host, args.rest_port, triton.grpc_url),
                            f"http://{args.host}:{args.rest_port}/healthz", LOGS / f"rest-{args.rest_port}.log", PROJECT_ROOT)
    dashboard = ChildService("the dashboard", dashboard_command(args.host, args.ui_port),
                             f"http://{args.host}:{args.ui_port}/_stcore/health", LOGS / f"ui-{args.ui_port}.log",
                             PROJECT_ROOT, dashboard_env(triton))

    def announce() -> None:
        print(
            "ready\n"
            f"  Dashboard       http://{args.host}:{args.ui_port}\n"
            f"  REST API        http://{args.host}:{args.rest_port}/api/matting   "
            f"(curl -F image=@photo.jpg http://{args.host}:{args.rest_port}/api/matting > result.png)\n"
            f"  Triton HTTP     {triton.http_url}   (KServe v2, model '{contract.ENSEMBLE}')\n"
            f"  Triton gRPC     {triton.grpc_url}\n"
            f"  Triton metrics  {triton.metrics_url}\n"
            f"  admin key       {triton.admin_key_file}   (model load/unload; the dashboard reads it)\n"
            "Ctrl-C stops everything.",
            flush=True,
        )

    print(f"starting Triton (log: {triton.log_path}), the REST API and the dashboard …", flush=True)
    return run_until_stopped([triton, rest_api, dashboard], (TritonStartError, ServiceStartError), str(LOGS), announce)


if __name__ == "__main__":
    sys.exit(main())
