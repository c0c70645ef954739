# Attest — `make demo` and `make test` do all set-up on a fresh machine.
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
HOST   ?= 127.0.0.1:8000
PYTEST_ARGS ?=
# The suite starts many Python processes (servers, workers, commands), and pytest rewrites the
# asserts of its plugins' packages (hypothesis, schemathesis: ~500 modules). Where the machine sets
# PYTHONDONTWRITEBYTECODE, nothing of that is cached and every process compiles it all again: an
# empty value lets the tests write __pycache__ (git-ignored). Collecting the suite: 38 s -> 20 s.
PYTEST := PYTHONDONTWRITEBYTECODE= $(BIN)/python -m pytest

.DEFAULT_GOAL := help
.PHONY: help install demo test lint bench fuzz nightly clean

help: ## show this help
	@echo "Attest — ML governance and compliance audit service"
	@echo
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "}; {printf "  make %-10s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP) ## create .venv and install Attest with its dev tools

demo: $(STAMP) ## migrate, create demo users, load the demo data and serve on 127.0.0.1:8000
	DEBUG=1 $(BIN)/python manage.py migrate --noinput
	DEBUG=1 $(BIN)/python manage.py collectstatic --noinput -v0
	DEBUG=1 $(BIN)/python manage.py create_demo_users
	DEBUG=1 $(BIN)/python manage.py load_demo
	DEBUG=1 $(BIN)/python manage.py runserver $(HOST)

test: $(STAMP) ## run the whole test suite (SQLite and eager Celery unless DATABASE_URL/CELERY_BROKER_URL say otherwise)
	$(PYTEST) $(PYTEST_ARGS)

# Four tools, each failing the target on a finding: ruff (style, imports, bugbear, Django, naive
# datetimes), mypy with the Django and DRF stubs ([tool.mypy]: the project's packages, not tests,
# benchmarks or migrations), bandit ([tool.bandit]; each `# nosec` says why on its line) and
# pip-audit over the installed packages (a version the index does not know is a skip, counted).
lint: $(STAMP) ## ruff, mypy, bandit and pip-audit (see docs/security.md, supply chain)
	@echo "== ruff"
	$(BIN)/ruff check .
	@echo "== mypy"
	$(BIN)/mypy
	@echo "== bandit"
	$(BIN)/bandit -q -c pyproject.toml -r .
	@echo "== pip-audit"
	@mkdir -p var/lint && rm -f var/lint/pip-audit.json
	$(BIN)/pip-audit --skip-editable --progress-spinner off --format json --output var/lint/pip-audit.json || true
	$(BIN)/python .ci/pip_audit_summary.py var/lint/pip-audit.json

bench: $(STAMP) ## run every benchmark at its quick size
	@for b in bench/*.py; do \
	  case $$b in bench/_*|bench/loadgen.py) continue;; esac; \
	  echo "== $$b"; $(BIN)/python $$b --quick || exit 1; \
	done

# Measured 27 Nov 2026 on SQLite: 57 operations x 300 examples and 7 parser/path tests x 2,000 in
# 17 min on the 2-core machine while other test runs shared it (docs/security.md).
fuzz: $(STAMP) ## schemathesis at 300 examples per API operation, and the upload/path parsers under hypothesis
	ATTEST_FUZZ_EXAMPLES=300 ATTEST_PARSER_EXAMPLES=2000 $(PYTEST) -p no:cacheprovider -q tests/security/test_schemathesis.py tests/security/test_paths_and_parsers.py

nightly: $(STAMP) ## the long property runs: 5,000 random governance workflows (hypothesis state machine)
	ATTEST_STATEFUL_EXAMPLES=5000 $(PYTEST) -p no:cacheprovider tests/governance/test_workflow_state_machine.py

clean: ## remove the virtualenv and local data
	rm -rf $(VENV) var
