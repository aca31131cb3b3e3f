# session-bridge: make demo | make test | make check | make check-lowest | make lint | make bench
# Run as root on Debian 12 (apt packages are installed when missing).

PYTHON ?= python3
VENV   ?= .venv
PY      = $(VENV)/bin/python
LOWEST ?= .venv-lowest
LOWEST_VERSIONS = tests/lowest-constraints.txt

.PHONY: deps deps-demo venv venv-demo test check check-lowest lint demo bench soak fuzz clean

deps:
	PYTHON=$(PYTHON) scripts/install-deps.sh test

deps-demo:
	PYTHON=$(PYTHON) scripts/install-deps.sh demo

$(VENV)/.demo: setup.cfg pyproject.toml setup.py bridge/php/_cparse.c
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -e .
	touch $@

$(VENV)/.installed: $(VENV)/.demo
	$(VENV)/bin/pip install -q -e '.[test]'
	touch $@

venv-demo: $(VENV)/.demo

venv: $(VENV)/.installed

php-demo/public/vendor/socket.io.min.js: php-demo/package.json
	cd php-demo && ./setup.sh

lint: venv
	$(VENV)/bin/ruff check bridge tests bench fuzz scripts devtools

test: deps venv lint php-demo/public/vendor/socket.io.min.js
	$(PY) -m pytest -q -rs

# The fast tier: no processes, no root, seconds.
check: venv
	$(PY) -m pytest -q tests/unit

# The whole suite on the lowest versions setup.cfg allows (exactly those, from the constraints).
$(LOWEST)/.installed: setup.cfg pyproject.toml setup.py bridge/php/_cparse.c $(LOWEST_VERSIONS)
	rm -rf $(LOWEST)
	$(PYTHON) -m venv $(LOWEST)
	$(LOWEST)/bin/pip install -q --upgrade pip
	$(LOWEST)/bin/pip install -q -c $(LOWEST_VERSIONS) -e '.[test]'
	touch $@

check-lowest: deps $(LOWEST)/.installed php-demo/public/vendor/socket.io.min.js
	$(LOWEST)/bin/pip check
	$(LOWEST)/bin/python -m pytest -q

demo: deps-demo venv-demo php-demo/public/vendor/socket.io.min.js
	$(PY) scripts/run_demo.py

soak: deps venv
	$(PY) -m pytest -q -s -m soak tests/test_soak.py

bench: deps venv
	$(VENV)/bin/pip install -q -r bench/requirements.txt
	$(PY) bench/run.py
	$(PY) bench/history.py

fuzz: venv
	$(PY) fuzz/fuzz_phpsession.py --runs 1000000
	$(PY) fuzz/fuzz_frameworks.py --runs 200000

clean:
	rm -rf $(VENV) $(LOWEST) php-demo/node_modules php-demo/public/vendor .pytest_cache
