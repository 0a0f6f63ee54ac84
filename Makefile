# The two commands of the README: `make run` and `make test`. Both create or reuse .venv.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
# The files the install links (every module and package data file). setuptools' strict editable mode
# installs leaderwatch.bot, leaderwatch.alerts ... as links to bot/, alerts/ ... (a tree mypy can
# follow), so the install is made again when a file is added or removed, not when one is edited.
PACKAGE_FILES := $(VENV)/.package-files

.PHONY: run test lint bench clean FORCE

$(PACKAGE_FILES): FORCE
	@mkdir -p $(VENV)
	@find package bot alerts storage sources -type f \( -name '*.py' -o -name '*.csv' -o -name '*.toml' \
		-o -name py.typed \) -not -path '*/__pycache__/*' | LC_ALL=C sort > $@.new
	@if cmp -s $@.new $@; then rm $@.new; else mv $@.new $@; fi

$(STAMP): pyproject.toml $(PACKAGE_FILES)
	@$(PYTHON) -c 'import sys; sys.exit("leaderwatch needs Python 3.11 or newer, found " + sys.version.split()[0]) if sys.version_info < (3, 11) else None'
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install -qq -e '.[dev]' --config-settings editable_mode=strict  # -qq: not setuptools' notice about the link tree
	@touch $(STAMP)

run: $(STAMP)
	$(BIN)/leaderwatch run

test: $(STAMP)
	@tests/postgres-up  # the tests' PostgreSQL (127.0.0.1:5432), started when installed but stopped
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/pytest -q -n auto  # one worker per core; each reads the recorded history once

bench: $(STAMP)
	@for b in bench/bench_*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

clean:
	rm -rf $(VENV) build .mypy_cache .pytest_cache .ruff_cache
