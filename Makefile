# Every command a person or CI needs; `make help` lists them.
# Quick start: `make serve` (set up, fetch MNIST, train if needed, serve) and `make test`.

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
MODEL  ?= models/mnist_cnn.pth
LINES  ?= models/mnist_lines.pth
ARGS   ?=

.DEFAULT_GOAL := help
.PHONY: help setup data train train-lines model serve check test pytest lint format browser bench bench-wild \
        bench-train bench-load bench-micro bench-coldstart bench-soak docker-lint compose-smoke predict clean

help:  ## list the commands
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-14s %s\n", $$1, $$2}'

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

setup: $(BIN)/.installed  ## virtual environment with the project and its dev tools

data: setup  ## fetch and verify MNIST into data/MNIST/raw
	$(BIN)/python -m trainer.data

train: data  ## train the model (default recipe; ARGS="--epochs 3" etc.)
	$(BIN)/python -m trainer --out $(MODEL) $(ARGS)

$(MODEL): | data
	$(BIN)/python -m trainer --out $(MODEL) --no-progress

train-lines: data  ## train the line reader for /read (ARGS="--epochs 2" etc.)
	$(BIN)/python -m trainer.lines --out $(LINES) $(ARGS)

$(LINES): | data
	$(BIN)/python -m trainer.lines --out $(LINES)

model: $(MODEL) $(LINES)  ## train only what is missing: $(MODEL), $(LINES)

serve: model  ## set up, fetch, train if needed, then serve on http://127.0.0.1:8000
	MODEL_PATH=$(MODEL) LINE_READER_PATH=$(LINES) $(BIN)/python -m service

predict: model  ## predict images from the command line: make predict ARGS="digit.png scans/"
	$(BIN)/mnist-predict --model $(MODEL) --line-reader $(LINES) $(ARGS)

browser:  ## Debian chromium for the page test (no-op when present)
	bash scripts/install-browser.sh

lint: setup  ## ruff lint and format check, hadolint and compose config
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	bash scripts/docker-lint.sh

format: setup  ## apply ruff's fixes and formatting
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

pytest: model browser  ## the pytest suite alone
	MODEL_PATH=$(MODEL) LINE_READER_PATH=$(LINES) $(BIN)/python -m pytest $(ARGS)

check: lint pytest  ## lint and the pytest suite (test without the container smoke test)

test: check compose-smoke  ## everything CI runs: install, data, model, lint, tests, container smoke

bench-wild: model  ## accuracy on realistic uploads, naive vs ours, and pipeline cost
	$(BIN)/python -m bench.wild --model $(MODEL)

bench-train: data  ## images/s of the training input pipeline and of the training step
	$(BIN)/python -m bench.train_speed

bench-load: model  ## wrk load test on loopback: /predict vs /healthz vs the naive baseline
	$(BIN)/python -m bench.load --model $(MODEL) $(ARGS)

bench-micro: model  ## micro-benchmark of the parts of a request
	$(BIN)/python -m bench.micro

bench-coldstart: model  ## process start to /readyz, resident memory per worker
	$(BIN)/python -m bench.coldstart

bench-soak: model  ## 20,000 mixed valid/invalid requests: statuses, errors, memory growth
	$(BIN)/python -m bench.soak --model $(MODEL) $(ARGS)

.PHONY: bench-seeds bench-corruptions bench-nondigits bench-numbers
bench-seeds: data  ## the default recipe over 3 seeds (in parallel): mean and std of its figures
	$(BIN)/python -m bench.seeds --seeds 1 2 3 --parallel 3 $(ARGS)

bench-corruptions: model  ## accuracy and calibration per corruption, raw and through the service
	$(BIN)/python -m bench.corruptions --model $(MODEL) $(ARGS)

bench-nondigits: model  ## is_digit on held-out non-digits, MNIST test and the realistic sets
	$(BIN)/python -m bench.nondigits --model $(MODEL) $(ARGS)

bench-numbers: model  ## exact accuracy of POST /read's number reader on the number sets
	$(BIN)/python -m bench.numbers --model $(MODEL) $(ARGS)

.PHONY: bench-ray deploy-validate
bench-ray: model  ## Ray Serve (2 replicas) vs one uvicorn worker, wrk on loopback
	$(BIN)/python -m bench.ray_compare --model $(MODEL) $(ARGS)

bench: bench-wild bench-train bench-load bench-micro bench-coldstart bench-soak bench-corruptions \
       bench-nondigits bench-seeds  ## all benchmarks

deploy-validate: setup  ## deploy/: k8s manifests (kubernetes-validate), KServe, Ray Serve configs
	$(BIN)/kubernetes-validate --strict --quiet deploy/k8s/*.yaml
	$(BIN)/python -m pytest -q tests/deploy/test_manifests.py

docker-lint: setup  ## hadolint on the Dockerfile, docker compose config -q
	bash scripts/docker-lint.sh

compose-smoke: data  ## build and run the containers on a private Docker engine, post a digit
	bash scripts/compose-smoke.sh

clean:  ## remove caches and build outputs (keeps data/ and models/)
	rm -rf .pytest_cache .ruff_cache build dist *.egg-info artifacts
