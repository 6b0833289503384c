"""The Triton model repository: ``configs`` (ModelConfig protobufs), ``onnx_files`` (served ONNX files,
checked and named), ``build`` (write a repository, read back what it serves); ``python -m serving.repository``."""

from serving.repository.build import build_repository, repository_settings, served_network
from serving.repository.configs import RepositorySettings, read_config

__all__ = ["RepositorySettings", "build_repository", "read_config", "repository_settings", "served_network"]
