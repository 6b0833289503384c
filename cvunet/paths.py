"""Where the project keeps generated state (weights, logs, backend links); override with CVUNET_STATE_DIR."""

import os
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
STATE_DIR = Path(os.environ.get("CVUNET_STATE_DIR", PROJECT_ROOT / ".state")).resolve()
MODEL_REPOSITORY = PROJECT_ROOT / "model_repository"
