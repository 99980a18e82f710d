# The two commands a newcomer needs: `make demo` (a whole simulated call, no keys, no services to
# configure) and `make test` (every test, against real Postgres, Redis, livekit-server and livekit-sip).

SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
APT_PACKAGES := python3-venv postgresql redis-server espeak-ng sox libsox-fmt-all sip-tester \
	pkg-config libopus-dev libopusfile-dev libsoxr-dev libportaudio2 iproute2
# the owner's console is tested in a real browser, the operator metrics and alert rules in a real
# Prometheus (and its promtool), the connection budget through PgBouncer, the worker image in Docker
# (on a base made with debootstrap where Docker Hub is out of reach); `make demo` needs none of it
TEST_APT_PACKAGES := chromium chromium-driver prometheus pgbouncer debootstrap
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: setup system-packages venv demo test stack lint bench report-screenshot clean

setup: system-packages venv

system-packages:
	@missing=$$(for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		echo "installing: $$missing"; \
		$(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing >/dev/null; \
	fi

venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[dev]"
	touch $@

# one simulated call, printed with timings, tool calls, outcome and the rows it left in Postgres
demo: setup
	$(VENV)/bin/receptionist simulate tests/scenarios/book-drain-cleaning.yaml

# Any Go will do (Debian's golang-go): scripts/stack fetches the release the pinned go.mod needs when
# the machine's Go is older, and caches it under ~/.cache/receptionist.
stack: setup
	@command -v go >/dev/null || $(MAKE) --no-print-directory system-packages APT_PACKAGES=golang-go
	scripts/stack build

# Most of the suite is calls played in real time, which wait far more than they compute: it runs on
# TEST_WORKERS processes at once (pytest-xdist). The calls over the real phone stack (marker `alone`)
# start worker processes whose start-up and bursts take both cores, and would delay the others' audio:
# they run afterwards, one at a time. Both parts always run; either failing fails the target.
TEST_WORKERS ?= 3

test: setup stack
	@$(MAKE) --no-print-directory system-packages APT_PACKAGES="$(TEST_APT_PACKAGES)"
	@# Debian's Docker engine only where the machine has none (never beside a docker-ce install)
	@command -v dockerd >/dev/null || docker info >/dev/null 2>&1 \
		|| $(MAKE) --no-print-directory system-packages APT_PACKAGES=docker.io
	status=0; \
	$(VENV)/bin/pytest -n $(TEST_WORKERS) -m "not alone" || status=$$?; \
	$(VENV)/bin/pytest -m alone || status=$$?; \
	exit $$status

lint: venv
	$(VENV)/bin/ruff check .

bench: setup stack
	$(PY) -m pip install -q -e ".[bench]"
	$(PY) -m bench.run
	$(PY) -m bench.time_to_greeting
	$(PY) -m bench.store_bench
	$(PY) -m bench.call_reports
	$(PY) -m bench.console
	$(PY) -m bench.outbox
	@$(MAKE) --no-print-directory system-packages APT_PACKAGES=pgbouncer
	$(PY) -m bench.connections
	$(PY) -m bench.grounding
	$(PY) -m bench.grounding_playout
	$(PY) -m bench.turn_taking
	$(PY) -m bench.turn_taking --material open
	$(PY) -m bench.eot_sweep
	$(PY) -m bench.fleet
	$(PY) -m bench.yield_on_resume
	$(PY) -m bench.backchannel_lengths
	$(PY) -m bench.short_overlaps
	$(PY) -m bench.noise_gate
	$(PY) -m bench.flow_switch

# the README's picture of `receptionist report --html` (docs/img/report.png), redrawn from a fresh run
# of every scenario; headless chromium takes the picture
report-screenshot: setup
	@$(MAKE) --no-print-directory system-packages APT_PACKAGES=chromium
	$(PY) scripts/report_screenshot.py

clean:
	rm -rf $(VENV) .pytest_cache var
