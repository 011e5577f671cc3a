# perfgate: two commands do all the set-up (make run, make test).
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: run test lint bench bench-baseline clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)
	$(VENV)/bin/perfgate serve $(ARGS)

test: $(STAMP)
	.ci/system-packages
	$(PY) -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check perfgate tests bench
	$(VENV)/bin/ruff format --check perfgate tests bench
	$(VENV)/bin/mypy perfgate

bench: $(STAMP)
	@echo "make bench: the benchmark suite is not built yet (see the bench issue)"; exit 2

bench-baseline: $(STAMP)
	@echo "make bench-baseline: the benchmark suite is not built yet"; exit 2

clean:
	rm -rf $(VENV) .perfgate .pytest_cache .mypy_cache .ruff_cache build *.egg-info
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
