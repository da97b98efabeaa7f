# The README's two commands are `make train` and `make test`; each sets up .venv first.
PY := .venv/bin/python
STAMP := .venv/.installed

.PHONY: help setup train test test-slow lint bench report

help:  ## list the targets
	@grep -E '^[a-z-]+:.*##' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	python3 -m venv .venv
	$(PY) -m pip install --upgrade pip
	$(PY) -m pip install -e ".[dev,keops]"
	touch $(STAMP)

setup: $(STAMP)  ## create .venv and install s4lab with its dev tools

train: $(STAMP)  ## run the default experiment (S4 on MNIST-1D, CPU, a few minutes)
	$(PY) train.py

test: $(STAMP)  ## lint, then the fast tests (no data, no network, no GPU)
	.venv/bin/ruff check .
	.venv/bin/pytest

test-slow: $(STAMP)  ## the slow tests: keops agreement, 64K memory, DDP on CPU
	.venv/bin/pytest -m slow

lint: $(STAMP)  ## ruff check + format check
	.venv/bin/ruff check . && .venv/bin/ruff format --check .

bench: $(STAMP)  ## layer speed/memory on this machine's CPU (JSON lines)
	$(PY) benchmarks/layer_speed.py --device cpu

TABLE ?= lra
RUNS ?= $(lastword $(sort $(wildcard logs/tables/$(TABLE)/*/)))  # the newest sweep
report: $(STAMP)  ## paper vs ours: make report TABLE=lra RUNS=logs/tables/lra/<time> -> results/
	$(PY) scripts/report.py --table $(TABLE) --runs $(RUNS)
