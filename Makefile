# qkt developer commands. `make run` and `make test` are the README's two commands.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install run test lint format bench bench-backtest chromium test-docker clean

# Re-install only when the project metadata changed: `make install` is quick when nothing did.
$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "qkt needs Python >= 3.11 (set PYTHON=...)")'
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@# pip compiles an installed package to bytecode, not an editable one: without this, a
	@# shell with PYTHONDONTWRITEBYTECODE=1 compiles every qkt module at every `qkt` command.
	$(BIN)/python -m compileall -q qkt
	@touch $(STAMP)

install: $(STAMP)

# The demo: the daemon with the example strategies on a simulated market 120x faster than real
# time (no network), so that they trade within a minute; Ctrl-C stops everything. Its state
# (journals, logs, control files) stays in ./state, not in the user's real state dir:
# `.venv/bin/qkt --state-dir state list` (or `export QKT_STATE_DIR=$PWD/state`) talks to it.
STATE ?= $(CURDIR)/state

run: $(STAMP)
	$(BIN)/qkt daemon --state-dir $(STATE) --load-dir examples/strategies --speed 120

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy qkt

format: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

test: lint chromium
	$(BIN)/pytest -m 'not docker' -q

# The headless browser that opens `qkt backtest --report` pages in tests/cli/test_backtest_report.py
# (Debian's package). Installed here, never by a test; without root the test skips and says why.
chromium:
	@command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || \
	  if [ "$$(id -u)" = 0 ]; then \
	    apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium; \
	  else echo "chromium missing and not root: the HTML report test will skip"; fi

# Issue 7's acceptance against the local Docker engine: build docker/Dockerfile (QKT_BASE_IMAGE,
# default the local base image when it exists), run it, compose up/exec/stop/down, the example
# bundle. Skips with the reason when no engine answers (QKT_REQUIRE_DOCKER=1 makes that a failure).
test-docker: $(STAMP)
	$(BIN)/pytest -m docker -q

bench: $(STAMP)
	$(BIN)/python -m bench

# qkt backtest side by side with backtrader and backtesting.py (installed here, never at runtime).
bench-backtest: $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[dev,bench]'
	$(BIN)/python -m bench.bench_backtest

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis
