"""Triton python model `matting_stream` of the matting repository (written by serving.repository)."""

# Imported first: under the embedded server this puts the project and its packages on sys.path.
import triton_python_backend_utils  # noqa: F401

from serving.stream import StreamStep as TritonPythonModel  # noqa: F401,E402
