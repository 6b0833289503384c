"""Export networks to ONNX and write the Triton model repository."""
