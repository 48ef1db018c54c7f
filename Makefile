# VOC Tracer: every command a newcomer needs. `make demo` sets up and runs the demo;
# `make test` runs the test suite. uv is used if installed, else bootstrapped into .tools/.
export UV_PYTHON_DOWNLOADS ?= never
SYSTEM_UV := $(shell command -v uv 2>/dev/null)
UV := $(if $(SYSTEM_UV),$(SYSTEM_UV),.tools/bin/uv)
PYTHON ?= python3

.PHONY: help install demo test lint typecheck check eval bench bench-peer serve clean

help:
	@echo "make demo       set up (first run) and analyse the bundled sample into ./voc-demo/"
	@echo "make test       run the test suite"
	@echo "make check      lint + type-check + tests"
	@echo "make lint       ruff check and format check"
	@echo "make eval       score the agents on the labelled dataset (voc eval)"
	@echo "make bench      throughput against the embedding floor for 1,000 complaints (voc bench)"
	@echo "make bench-peer install BERTopic and compare clustering quality and time with it"
	@echo "make serve      run the HTTP service on 127.0.0.1:8000 (docs at /docs; see README)"
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

eval: install
	$(UV) run --frozen voc eval

bench: install
	$(UV) run --frozen voc bench --n 1000

# BERTopic is an optional peer for the clustering comparison. It is installed without its
# sentence-transformers dependency (which would pull PyTorch): it only gets our vectors.
bench-peer: install
	$(UV) pip install --no-deps "bertopic==0.17.4"
	$(UV) pip install "umap-learn>=0.5" "hdbscan>=0.8.29" "pandas>=1.1.5" "plotly>=4.7" "tqdm>=4.41"
	$(UV) run --no-sync voc bench --peer

serve: install
	$(UV) run --frozen voc serve

clean:
	rm -rf .venv .tools .pytest_cache .ruff_cache .mypy_cache voc-demo voc-out
