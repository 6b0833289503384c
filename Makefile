# Two commands for a newcomer: `make run` (set up; start Triton, the REST API and the dashboard; print URLs) and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STATE := .state
INSTALLED := $(VENV)/.installed
SUDO := $(if $(filter 0,$(shell id -u)),,sudo)
WEIGHTS := $(STATE)/weights/.verified
SERVED_NETWORK := model_repository/u2net/1/model.onnx

# make export NETWORK=cvunet CHECKPOINT=path/to/checkpoint.pt   (or ONNX=path/to/model.onnx)
# make export NETWORK=u2net CHECKPOINT=runs/NAME/checkpoint-NNNNNN.pt   (fine-tuned by cvunet.train --init u2net)
NETWORK ?= u2net
EXPORT_ARGS := --network $(NETWORK) $(if $(CHECKPOINT),--checkpoint $(CHECKPOINT)) $(if $(ONNX),--onnx $(ONNX))

.PHONY: setup run serve test export bench gpu-check quality batch video browser compose-up compose-down clean

$(INSTALLED): requirements.txt
	$(PYTHON) -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11) and "Python 3.11 is required (the embedded Triton python stub is built for it)")'
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --disable-pip-version-check -q -r requirements.txt
	$(PY) -c 'import pymatting'  # compiles and caches pymatting's numba kernels once (~40 s)
	touch $@

# The published U²-Netp and U²-Net files (hash-checked), the sources of our PyTorch ports and exports.
$(WEIGHTS): $(INSTALLED)
	$(PY) -m serving.weights
	touch $@

$(SERVED_NETWORK): $(WEIGHTS)
	$(PY) -m serving.repository

setup: $(SERVED_NETWORK)

# `run` is the newcomer's entry point: Triton + REST API + dashboard; `serve` is Triton alone.
run: setup
	$(PY) -m launch.stack

serve: setup
	$(PY) -m launch.triton

export: $(WEIGHTS)
	$(PY) -m serving.repository $(EXPORT_ARGS)

# The browser tests drive Debian's Chromium through its ChromeDriver (no browser download); a CJK
# font makes the Chinese UI legible in their screenshots.
browser:
	@command -v chromium >/dev/null && command -v chromedriver >/dev/null && fc-list 2>/dev/null | grep -qi wenquanyi || \
	  { $(SUDO) apt-get update -qq && $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver fonts-wqy-zenhei; }

test: setup browser
	$(PY) -m pytest

bench: setup
	$(PY) -m bench.serving_latency
	$(PY) -m bench.batch_throughput
	$(PY) -m bench.memory_soak
	$(PY) -m bench.video_throughput
	$(PY) -m bench.video_flicker

# The prepared GPU check (PyTorch + CUDA; no Triton needed): its table in under 5 minutes.
gpu-check:
	python3 -m bench.gpu_check --out gpu_check.json $(ARGS)

quality: setup
	$(PY) -m bench.quality

# make batch IN=photos/ [OUT=outputs/mine] [ARGS="--recursive --alpha-only"]  (server from `make run`)
batch: $(INSTALLED)
	$(PY) -m client.batch $(IN) $(OUT) $(ARGS)

# make video IN=clip.mp4 OUT=clip.webm [ARGS="--model u2netp"]  (.mov, .mp4 with --bg-color, or a folder for PNG frames)
video: $(INSTALLED)
	$(PY) -m client.video $(IN) $(OUT) $(ARGS)

# GPU production (Docker + NVIDIA Container Toolkit): see README "Deploying on a GPU server".
# The key Triton's administrative protocols want (docker-compose.yml's secret): random, made once, mode 0600.
ADMIN_KEY := $(STATE)/deploy/triton-admin.key

$(ADMIN_KEY):
	mkdir -p $(@D)
	umask 077 && $(PYTHON) -c 'import secrets; print(secrets.token_urlsafe(32))' > $@.part && mv $@.part $@

compose-up: $(ADMIN_KEY)
	docker compose up -d --build

compose-down:
	docker compose down

clean:
	rm -rf $(STATE) model_repository/*/1/model.onnx test-artifacts
