# Every target sets up what it needs; nothing has to be installed by hand first.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: help venv test unit lint audit demo soak bench clean airflow3 airflow2

help:
	@echo "make demo   - install and start a local Airflow 3, trigger DAG runs from a GCS and an S3 event, show them"
	@echo "make test   - unit and integration tests (real Airflow 3 and 2, installed on first run)"
	@echo "make lint   - ruff and mypy"
	@echo "make unit   - unit tests only (seconds)"
	@echo "make soak   - the exactly-once fault suite with FAULT_EVENTS=2000 (minutes)"

$(STAMP): requirements/dev.txt pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements/dev.txt
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps -e .
	@touch $@

venv: $(STAMP)

airflow3 airflow2: $(STAMP)
	$(PY) -m scripts.local_airflow install $(subst airflow,,$@)

unit: $(STAMP)
	$(PY) -m pytest tests -m "not integration" -q

# Both Airflow venvs are installed side by side before the tests start (each takes ~1 minute).
test: $(STAMP)
	$(MAKE) --no-print-directory -j2 airflow3 airflow2
	$(PY) -m pytest tests -q

lint: $(STAMP) audit
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

# Known vulnerabilities in the installed, pinned dependencies (PyPI's advisory data). Packages the
# registry has no advisory data for are listed as skipped, not failed.
audit: $(STAMP)
	$(VENV)/bin/pip-audit --progress-spinner off

bench: $(STAMP) airflow3
	$(PY) -m bench.trigger_latency

soak: $(STAMP) airflow3 airflow2
	FAULT_EVENTS=$${FAULT_EVENTS:-2000} $(PY) -m pytest tests/integration/test_faults.py -k every_event -q

demo: $(STAMP) airflow3
	$(PY) -m scripts.demo

clean:
	rm -rf $(VENV) .venv-airflow3 .venv-airflow2 .pytest_cache .mypy_cache .ruff_cache
