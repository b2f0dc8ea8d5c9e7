# steg: `make help` lists the targets.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
ARGS ?=
PYTHON_GPU ?= python

.PHONY: help install demo train test test-full bench gpu-check clean

help:  ## list the targets
	@grep -E '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

install: $(BIN)/python  ## create .venv with the CPU build of torch 2.13.0 and steg (editable)
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e ".[dev,optuna,slurm,onnx]"
	@$(BIN)/pip list 2>/dev/null | grep -qi '^nvidia-' && echo "warning: CUDA packages got installed" || true

demo: install  ## set up, then train the default model on the embedded photos (about 2 min of training on 2 idle CPU cores; the 15-min budget, trainer.max_time, stops it on a loaded one)
	WANDB_MODE=offline $(BIN)/python train.py $(ARGS)

train:  ## train with Hydra overrides: make train ARGS="model=baluja beta=0.5"
	$(BIN)/python train.py $(ARGS)

test: install  ## the fast test suite (about 3 min on 2 idle CPU cores; no subprocess, DDP, Optuna or bench tests)
	WANDB_MODE=offline WANDB_SILENT=true $(BIN)/python -m pytest -q -m "not slow" $(ARGS)

test-full: install browser  ## every test, slow and browser ones included (what .ci/run runs)
	WANDB_MODE=offline WANDB_SILENT=true $(BIN)/python -m pytest -q $(ARGS)

bench: install  ## speed, inference, quality at a budget, security, robustness -> experiments/bench (~4 h; ARGS="--parts security,robustness")
	WANDB_MODE=offline WANDB_SILENT=true $(BIN)/python -m steg.bench $(ARGS)
	$(MAKE) bench-web

gpu-check:  ## on a GPU machine (no install: its CUDA torch is kept): smoke-train, eval, analyze, bench -> experiments/gpu (<= 8 min)
	PYTHONPATH=. WANDB_MODE=offline WANDB_SILENT=true $(PYTHON_GPU) experiments/gpu/check.py $(ARGS)

clean:  ## remove run outputs and caches (keeps .venv)
	rm -rf runs outputs multirun .pytest_cache

# --- the browser page (web/, steg/browser/page.py, docs/web.md) ---------------------------------
.PHONY: web browser bench-web
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

web: install  ## build the browser page: onnxruntime-web (npm) into web/vendor, shipped models as ONNX into web/models
	$(BIN)/python -m steg.browser build $(ARGS)

browser: install  ## install Debian's chromium (apt) and Playwright's Python package for tests/test_web.py
	command -v chromium >/dev/null || { $(SUDO) apt-get update -q && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -q chromium; }
	$(BIN)/pip install -q -e ".[web]"

bench-web: web  ## page load and 256x256 hide+reveal times in headless Chromium -> experiments/bench/web.json
	$(BIN)/python -m steg.browser bench --runs 5 --json experiments/bench/web.json
