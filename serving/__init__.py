"""What runs in or administers Triton: ``steps`` (the python-backend steps), ``repository`` (configs,
ONNX checks, build + CLI), ``admin`` (install / import / restore a network with rollback),
``weights`` (pinned, hash-checked), ``trt`` (ONNX → TensorRT plan), ``triton_metrics`` and
``environment`` (what the dashboard's operator page shows). Only ``steps`` runs inside Triton.
"""
