"""Triton python model `preprocess` of the matting repository (written by serving.repository)."""

# Imported first: under the embedded server this puts the project and its packages on sys.path.
import triton_python_backend_utils  # noqa: F401

from serving.steps import PreprocessStep as TritonPythonModel  # noqa: F401,E402
