# Every target sets up what it needs; nothing has to be installed by hand first.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: help venv test unit lint audit demo soak bench clean airflow3 airflow2 tf-tools tf-check package

help:
	@echo "make demo   - install and start a local Airflow 3, trigger DAG runs from a GCS and an S3 event, show them"
	@echo "make test   - unit and integration tests (real Airflow 3 and 2, installed on first run)"
	@echo "make lint   - ruff and mypy"
	@echo "make unit   - unit tests only (seconds)"
	@echo "make soak   - the exactly-once fault suite with FAULT_EVENTS=2000, and the soak-marked tests (minutes)"
	@echo "make tf-check - the Terraform: parsed, checked against the providers' schemas, checkov, review rules"
	@echo "make package  - the zips the Terraform modules deploy, into build/ (with their sizes)"

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

# The Airflow and Terraform-tool venvs are installed side by side before the tests start (each takes
# a minute or three); the tests include tf-check's.
test: $(STAMP)
	$(MAKE) --no-print-directory -j3 airflow3 airflow2 tf-tools
	$(PY) -m pytest tests -q -m "not soak"

# python-hcl2 and checkov, each in its own venv (checkov's hcl2 fork would overwrite python-hcl2).
tf-tools: $(STAMP)
	$(PY) -c "from scripts import tf_tools; tf_tools.ensure_hcl2(); tf_tools.ensure_checkov()"

# No terraform binary can be installed here: parse, schema and checkov (scripts/tf_check.py), then the
# review rules and the schema checker's own tests.
tf-check: tf-tools
	$(PY) -m scripts.tf_check
	$(PY) -m pytest -q tests/terraform tests/unit/test_tf_schema.py

package: $(STAMP)
	$(PY) -m scripts.package --out build

lint: $(STAMP) audit
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

# Known vulnerabilities in the installed, pinned dependencies (PyPI's advisory data). Packages the
# registry has no advisory data for are listed as skipped, not failed.
audit: $(STAMP)
	$(VENV)/bin/pip-audit --progress-spinner off

# Writers against the local Airflow, then this project against the usual way (bench/compare.py); both
# print, and compare.py writes its tables into bench/RESULTS.md.
bench: $(STAMP) airflow3
	$(PY) -m bench.trigger_latency
	$(PY) -m bench.compare

soak: $(STAMP) airflow3 airflow2
	FAULT_EVENTS=$${FAULT_EVENTS:-2000} $(PY) -m pytest tests/integration/test_faults.py -k every_event -q
	$(PY) -m pytest tests -q -m soak

demo: $(STAMP) airflow3
	$(PY) -m scripts.demo

clean:
	rm -rf $(VENV) .venv-airflow3 .venv-airflow2 .venv-hcl2 .venv-checkov .pytest_cache .mypy_cache .ruff_cache \
		.cache build
