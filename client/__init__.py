"""Thin clients of the Triton ``matting`` ensemble: a library class and command-line tools."""

from client.matting_client import MattingClient, MattingError, MattingResult, RequestError, ServerError, ServerUnavailable

__all__ = ["MattingClient", "MattingError", "MattingResult", "RequestError", "ServerError", "ServerUnavailable"]
