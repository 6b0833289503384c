# Triton 2.51 (NVIDIA's 24.10 image: TensorRT 10.5, ONNX Runtime and Python backends) plus what the
# matting ensemble's python steps import. Also runs the one-shot `engine` step that builds the plans.
FROM nvcr.io/nvidia/tritonserver:24.10-py3
WORKDIR /workspace
COPY deploy/requirements-triton.txt /tmp/requirements-triton.txt
RUN pip install --no-cache-dir -r /tmp/requirements-triton.txt && python3 -c "import pymatting"
COPY matting/ matting/
COPY cvunet/ cvunet/
COPY serving/ serving/
COPY model_repository/ model_repository/
ENV PYTHONPATH=/workspace
