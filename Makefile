# tgk-deploy: the commands a newcomer needs. `make demo`, then `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install demo test test-deps lint format bench clean

install: $(STAMP)  ## virtualenv in .venv, editable install with the test extras

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	$(BIN)/python -m compileall -q tgk_deploy  # as pip does for an installed package: no compile per run
	touch $(STAMP)

demo: install  ## the whole rollout, with an incident, on the built-in Cloudflare emulator
	$(BIN)/tgk-deploy validate
	$(BIN)/tgk-deploy rehearse --scenario ai-latency-incident

test-deps: install  ## what the tests need beyond Python: Prometheus, Alertmanager, the Worker's npm packages
	@if [ -x .ci/install-prometheus.sh ]; then .ci/install-prometheus.sh; fi
	@if [ -x .ci/install-alertmanager.sh ]; then .ci/install-alertmanager.sh; fi
	@if [ -x .ci/install-pushgateway.sh ]; then .ci/install-pushgateway.sh; fi
	@if [ -x .ci/install-node-deps.sh ]; then .ci/install-node-deps.sh; fi

test: test-deps  ## the whole suite
	$(BIN)/python -m pytest -q

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

bench: install  ## the project's own benchmarks
	@for script in bench/*; do case $$script in *.py|*/__pycache__) continue;; esac; echo "== $$script"; $(BIN)/python $$script; done  # *.py: shared by the scripts

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis
