# The REST API and the dashboard: CPU-only clients of Triton (no network weights inside).
FROM python:3.11-slim
WORKDIR /workspace
COPY deploy/requirements-app.txt /tmp/requirements-app.txt
RUN pip install --no-cache-dir -r /tmp/requirements-app.txt && python -c "import pymatting"
COPY . .
ENV PYTHONPATH=/workspace
