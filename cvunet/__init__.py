"""The PyTorch networks and their training: CV-UNet (``model``), its ONNX export (``export_onnx``),
data (``datasets``, ``synthetic``), losses and the training loop (``train``). Serving never imports
this package except to export a checkpoint someone asks it to serve.
"""
