# VOC Tracer: every command a newcomer needs. `make demo` sets up and runs the demo;
# `make test` runs the test suite. uv is used if installed, else bootstrapped into .tools/.
export UV_PYTHON_DOWNLOADS ?= never
SYSTEM_UV := $(shell command -v uv 2>/dev/null)
UV := $(if $(SYSTEM_UV),$(SYSTEM_UV),.tools/bin/uv)
PYTHON ?= python3

.PHONY: help install demo test lint typecheck check eval bench serve clean

help:
	@echo "make demo       set up (first run) and analyse the bundled sample into ./voc-demo/"
	@echo "make test       run the test suite"
	@echo "make check      lint + type-check + tests"
	@echo "make lint       ruff check and format check"
	@echo "make clean      remove the virtualenv, caches and demo output (not ~/.voc)"

.tools/bin/uv:
	$(PYTHON) -m venv .tools
	.tools/bin/pip install --quiet --disable-pip-version-check "uv>=0.9,<1"

install: $(if $(SYSTEM_UV),,.tools/bin/uv)
	$(UV) sync --frozen

demo: install
	$(UV) run --frozen voc demo

test: install
	$(UV) run --frozen pytest

lint: install
	$(UV) run --frozen ruff check .
	$(UV) run --frozen ruff format --check .

typecheck: install
	$(UV) run --frozen mypy

check: lint typecheck test

clean:
	rm -rf .venv .tools .pytest_cache .ruff_cache .mypy_cache voc-demo voc-out
