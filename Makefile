# session-bridge: make demo | make test | make lint | make bench | make soak
# Run as root on Debian 12 (apt packages are installed when missing).

PYTHON ?= python3
VENV   ?= .venv
PY      = $(VENV)/bin/python

.PHONY: deps venv test lint demo bench soak fuzz clean

deps:
	PYTHON=$(PYTHON) scripts/install-deps.sh

$(VENV)/.installed: setup.cfg pyproject.toml setup.py bridge/php/_cparse.c
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -e '.[test]'
	touch $@

venv: $(VENV)/.installed

php-demo/public/vendor/socket.io.min.js: php-demo/package.json
	cd php-demo && ./setup.sh

lint: venv
	$(VENV)/bin/ruff check bridge tests bench fuzz scripts

test: deps venv lint php-demo/public/vendor/socket.io.min.js
	$(PY) -m pytest -q

demo: deps venv php-demo/public/vendor/socket.io.min.js
	$(PY) scripts/run_demo.py

soak: deps venv
	$(PY) -m pytest -q -s -m soak tests/test_soak.py

bench: deps venv
	$(VENV)/bin/pip install -q -r bench/requirements.txt
	$(PY) bench/run.py

fuzz: venv
	$(PY) fuzz/fuzz_phpsession.py --runs 1000000
	$(PY) fuzz/fuzz_frameworks.py --runs 200000

clean:
	rm -rf $(VENV) php-demo/node_modules php-demo/public/vendor .pytest_cache
