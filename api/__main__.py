"""``python -m api [--host 127.0.0.1] [--port 8080] [--triton-url 127.0.0.1:8001]``: serve the REST API.

Defaults come from REST_HOST, REST_PORT, TRITON_GRPC_URL and CVUNET_MAX_UPLOAD_BYTES; the video jobs from
CVUNET_VIDEO_JOBS_DIR, CVUNET_VIDEO_KEEP_S and CVUNET_MAX_VIDEO_UPLOAD_BYTES. It binds loopback only unless
told otherwise, and prints the URL once the port is really bound.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import sys

import uvicorn

from api.app import Settings, create_app


def main(argv: list[str] | None = None) -> int:
    try:
        settings = Settings.from_env()
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    parser = argparse.ArgumentParser(prog="python -m api", description="Serve POST /api/matting and the video jobs of /api/matting/video over Triton.")
    parser.add_argument("--host", default=settings.host, help="bind address (default %(default)s: loopback only; env REST_HOST)")
    parser.add_argument("--port", type=int, default=settings.port, help="port (default %(default)s; env REST_PORT; 0 picks a free one)")
    parser.add_argument("--triton-url", default=settings.triton_url, help="Triton gRPC address (default %(default)s; env TRITON_GRPC_URL)")
    args = parser.parse_args(argv)

    logging.basicConfig(level=logging.INFO, format="%(levelname)s:     %(name)s: %(message)s")
    settings = dataclasses.replace(settings, host=args.host, port=args.port, triton_url=args.triton_url)
    config = uvicorn.Config(create_app(settings), host=args.host, port=args.port)
    server = uvicorn.Server(config)
    listening = config.bind_socket()
    host, port = listening.getsockname()[:2]
    address = f"[{host}]" if ":" in host else host
    print(f"serving http://{address}:{port}/api/matting (Triton gRPC {args.triton_url}, uploads up to "
          f"{settings.max_upload_bytes / 1e6:g} MB, videos up to {settings.max_video_upload_bytes / 1e6:g} MB, video jobs "
          f"in {settings.video_jobs_dir}, kept {settings.video_keep_s:,} s after they finish; Ctrl-C stops)", flush=True)
    server.run(sockets=[listening])
    return 0 if server.started else 1


if __name__ == "__main__":
    sys.exit(main())
