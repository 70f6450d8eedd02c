# The two commands of the README:  make demo  and  make test.
# Both create the virtualenv if it is missing and install the pinned stack (constraints.txt).

SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp

export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)
export YOLO_OFFLINE := 1
export YOLO_AUTOINSTALL := false
export YOLO_CONFIG_DIR := $(CURDIR)/.yolo
export MLFLOW_DISABLE_TELEMETRY := true
export DVC_NO_ANALYTICS := 1
export MPLCONFIGDIR := $(CURDIR)/.cache/matplotlib

.PHONY: install browser demo test test-fast lint clean

install: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -c constraints.txt -e '.[dev,scale]'
	@touch $(STAMP)

# The browser test drives Debian's chromium with its chromedriver (nothing is downloaded at run time).
browser:
	@command -v chromium >/dev/null && test -x /usr/bin/chromedriver || { \
	  echo "installing chromium and chromium-driver (Debian packages) for the browser test"; \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq chromium chromium-driver >/dev/null; \
	  else sudo apt-get update -qq && sudo apt-get install -y -qq chromium chromium-driver >/dev/null; fi; }

# The main job on the embedded default (params.yaml: BCCD, uncertainty, imgsz 320): import the
# bundled dataset, seed a random labeled set, run two active-learning cycles with `dvc repro`
# (the simulation's oracle answers each cycle's queries), store the snapshots in the local DVC
# remote and print the summary. MLflow logs to mlflow.db in the repo.
demo: install
	dvc repro import
	alod seed --force
	dvc repro
	dvc repro
	dvc push
	alod summary

lint: install
	$(VENV)/bin/ruff format --check core backend strategies pipelines tests benchmarks
	$(VENV)/bin/ruff check core backend strategies pipelines tests benchmarks

test: lint browser
	$(VENV)/bin/pytest -q --durations=15

test-fast: lint
	$(VENV)/bin/pytest -q -m "not slow"

clean:
	rm -rf data runs .yolo .cache .pytest_cache .ruff_cache
