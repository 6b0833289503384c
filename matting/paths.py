"""Where the project keeps generated state (weights, logs, backend links); override with CVUNET_STATE_DIR."""

import os
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
STATE_DIR = Path(os.environ.get("CVUNET_STATE_DIR", PROJECT_ROOT / ".state")).resolve()
MODEL_REPOSITORY = PROJECT_ROOT / "model_repository"
#: rembg's test photo and its outputs (MIT), in the shared folder laid beside the checkout (and beside CI's clone).
REMBG_FIXTURES = PROJECT_ROOT.parent / "shared" / "fixtures" / "rembg"
