# perfgate: two commands do all the set-up (make run, make test).
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: run test lint bench bench-baseline bench-power bench-extra mutation clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)
	$(VENV)/bin/perfgate serve $(ARGS)

# Two pytest workers (a file's tests stay together), then the tests that measure the machine
# (marked alone) by themselves: beside another worker their bench runs would measure it.
# Exit 5 ("nothing selected") passes the second step only when PYTEST_ARGS narrowed the run.
test: $(STAMP)
	.ci/system-packages
	$(PY) -m pytest -n 2 --dist loadfile -m "not alone" $(PYTEST_ARGS)
	$(PY) -m pytest -m alone $(PYTEST_ARGS) || { rc=$$?; [ -n "$(strip $(PYTEST_ARGS))" ] && [ $$rc -eq 5 ]; }

lint: $(STAMP)
	$(VENV)/bin/ruff check perfgate tests bench
	$(VENV)/bin/ruff format --check perfgate tests bench
	$(VENV)/bin/mypy perfgate

# The default suite (all scenarios, peers in the same run), gated against the committed
# baseline: exit 0 pass, 1 regression, 2 inconclusive. Results: bench/results/<UTC>.json/.html
BENCH_ARGS ?=
bench-extra: $(STAMP)
	$(PY) -m pip install --quiet -e '.[bench]'

bench: bench-extra
	$(PY) -m perfgate.bench.cli bench --peers --baseline bench/baseline.json $(BENCH_ARGS)

# Refresh bench/baseline.json from a fresh run of the same suite (then review and commit it).
bench-baseline: bench-extra
	$(PY) -m perfgate.bench.cli bench --peers --write-baseline bench/baseline.json $(BENCH_ARGS)

# The gate's power on this machine: record many runs (quiet machine, ~10 minutes), then
# resample them into A/A and 30 %-slower pairs (see README, "How good is the gate").
POWER_OUT ?= bench/power
bench-power: bench-extra
	$(PY) -m perfgate.bench.cli bench http jobs ws-fanout ws-churn --peers --runs 14 --out $(POWER_OUT) $(BENCH_ARGS)
	$(PY) -m perfgate.bench.cli gate --power $$(ls -t $(POWER_OUT)/*.json | head -1)

# Mutation testing of the pure modules that hold the rules (not part of `make test`: CPU-heavy).
# One module at a time; each mutant runs only the unit tests that reach it (mutmut's coverage
# map over the test files in [tool.mutmut] in pyproject.toml). A module not written yet is
# skipped. Prints killed/total per module; the survivors judged equivalent: docs/mutation.md.
MUTATION_MODULES ?= perfgate.pool.queue perfgate.pool.backoff perfgate.gateway.heartbeat \
	perfgate.gateway.outbox perfgate.ratelimit perfgate.bench.stats perfgate.jobs.lifecycle \
	perfgate.gateway.accept
mutation: $(STAMP)
	@for module in $(MUTATION_MODULES); do \
		if [ -f "$$(echo $$module | tr . /).py" ]; then \
			$(VENV)/bin/mutmut run "$$module.*" > /dev/null || exit 1; \
		else echo "mutation: $$module not found, skipped"; fi; \
	done
	@$(VENV)/bin/mutmut results --all true | sed -nE 's/^ *(perfgate\.[a-z_.]+)\.x[^:]*: (.*)$$/\1 \2/p' \
		| awk '{n[$$1]++; if ($$2 == "killed") k[$$1]++} \
		END {for (m in n) printf "%-28s %4d/%-4d killed (%.0f %%)\n", m, k[m], n[m], 100 * k[m] / n[m]}' \
		| sort
	@$(VENV)/bin/mutmut results

clean:
	rm -rf $(VENV) .perfgate .pytest_cache .mypy_cache .ruff_cache build *.egg-info mutants
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
