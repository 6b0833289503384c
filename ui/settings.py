"""Dashboard settings from the environment; ``make run`` passes the Triton addresses it started."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from matting import contract
from matting.paths import MODEL_REPOSITORY, PROJECT_ROOT, STATE_DIR
from serving.admin_key import DEFAULT_KEY_FILE, KEY_FILE_ENV


@dataclass(frozen=True)
class UiSettings:
    triton_grpc_url: str
    triton_metrics_url: str
    #: Folders the batch tab may read from or write to; anything else is refused.
    allowed_roots: tuple[Path, ...]
    outputs_dir: Path
    history_db: Path
    history_limit: int
    #: Single-image results, kept for re-download from the history whatever "save" says (newest ``results_limit``).
    results_dir: Path
    results_limit: int
    max_upload_mb: int
    #: The video tab's jobs (uploads, results, previews), kept across restarts; see client.video_jobs.
    video_jobs_dir: Path
    #: The video uploader's limit (the global --server.maxUploadSize of launch.stack is larger).
    max_video_mb: int
    repository: Path
    #: The key Triton's model administration needs (launch.triton writes it at each start).
    admin_key_file: Path

    @classmethod
    def from_env(cls, environ=os.environ) -> UiSettings:
        roots = environ.get("CVUNET_UI_ROOTS")
        allowed = [Path(root) for root in roots.split(os.pathsep) if root] if roots else [PROJECT_ROOT / "data", PROJECT_ROOT / "outputs"]
        return cls(
            triton_grpc_url=environ.get("TRITON_GRPC_URL", contract.DEFAULT_TRITON_URLS["grpc"]),
            triton_metrics_url=environ.get("TRITON_METRICS_URL", contract.DEFAULT_METRICS_URL),
            allowed_roots=tuple(root.resolve() for root in allowed),
            outputs_dir=Path(environ.get("CVUNET_OUTPUTS_DIR", PROJECT_ROOT / "outputs")).resolve(),
            history_db=Path(environ.get("CVUNET_HISTORY_DB", STATE_DIR / "ui" / "history.sqlite3")),
            history_limit=int(environ.get("CVUNET_HISTORY_LIMIT", 500)),
            results_dir=Path(environ.get("CVUNET_RESULTS_DIR", STATE_DIR / "ui" / "results")),
            results_limit=int(environ.get("CVUNET_RESULTS_LIMIT", 200)),
            max_upload_mb=int(environ.get("CVUNET_UI_MAX_UPLOAD_MB", 25)),
            video_jobs_dir=Path(environ.get("CVUNET_UI_VIDEO_JOBS_DIR", STATE_DIR / "ui" / "video-jobs")),
            max_video_mb=int(environ.get("CVUNET_UI_MAX_VIDEO_MB", 200)),
            repository=Path(environ.get("CVUNET_REPOSITORY", MODEL_REPOSITORY)),
            admin_key_file=Path(environ.get(KEY_FILE_ENV, DEFAULT_KEY_FILE)),
        )
