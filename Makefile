# Kommuncentral — the two commands: `make run` (demo centre) and `make test` (whole suite).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test test-fast bench messages system system-test clean-var

$(STAMP): pyproject.toml constraints.txt
	@$(PYTHON) -m venv --help >/dev/null 2>&1 || (apt-get update -q && apt-get install -y -q python3-venv)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q -c constraints.txt -e '.[test]'
	touch $(STAMP)

# Asterisk 22 (the system's where the release ships 20+, else Debian unstable's in a private
# root under /var/cache/kommuncentral, made once), SIPp, espeak-ng, sox.
# KC_ASTERISK=16 make system|run: Asterisk 16 from Debian 11's security suite instead.
system:
	bash asterisk-docker/install-asterisk.sh

# The same plus Chromium for browser tests, and Asterisk 16 for the smoke run where it can be had.
system-test:
	bash asterisk-docker/install-asterisk.sh --with-test-tools

run: system $(STAMP)
	$(BIN)/kc init --demo $(if $(KC_NODES),--nodes config/nodes-$(KC_NODES).yaml)
	$(BIN)/kc up

# The floor plan (layer contracts, docs/architecture.md), then every test on Asterisk 22 (or
# KC_ASTERISK's): tests/fast (no PBX, no browser) and tests/pbx (real Asterisk, SIPp, Chromium);
# then the smoke subset on Asterisk 16. Modules run on TEST_WORKERS workers (each with its own
# centre; a module stays on one worker): most tests wait on real calls, so two workers halve
# the time on two cores. Tests marked serial (the API fuzz) then run on their own. The slowest
# tests are printed; every test's time is in var/test-report*.xml.
TEST_WORKERS ?= 2
test: system-test $(STAMP)
	$(BIN)/lint-imports
	$(BIN)/python -m pytest -ra -n $(TEST_WORKERS) --dist loadfile -m 'not serial' --durations=25 --junitxml=var/test-report.xml --hypothesis-profile=thorough
	$(BIN)/python -m pytest -ra -m serial --junitxml=var/test-report-serial.xml --hypothesis-profile=thorough
	KC_ASTERISK=16 $(BIN)/python -m pytest -ra -n $(TEST_WORKERS) --dist loadfile -m smoke16 -p no:cacheprovider

# The layer contracts and the tests that need neither Asterisk nor a browser (about a minute).
test-fast: $(STAMP)
	$(BIN)/lint-imports
	$(BIN)/python -m pytest -q -n $(TEST_WORKERS) tests/fast

# Speed and memory targets (not tests): every benchmarks/bench_*.py; results in var/bench/results.json.
bench: $(STAMP)
	$(BIN)/python -m benchmarks.run

# The translation catalog: every message of the code and the templates (babel.cfg) merged into
# the Swedish catalog kc/locale/sv/LC_MESSAGES/messages.po; translate what comes in empty
# (tests/fast/test_translations.py fails until every message has its Swedish).
messages: $(STAMP)
	mkdir -p var
	$(BIN)/pybabel extract -F babel.cfg -k N_ --no-location --sort-output -o var/messages.pot .
	$(BIN)/pybabel update -i var/messages.pot -d kc/locale -l sv --no-fuzzy-matching --ignore-obsolete --width 100

clean-var:
	rm -rf var
