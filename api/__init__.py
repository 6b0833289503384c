"""REST front end compatible with the original product: ``POST /api/matting`` over the Triton ensemble."""

from api.app import Settings, create_app

__all__ = ["Settings", "create_app"]
