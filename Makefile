# session-bridge: make demo | make test | make lint | make bench | make soak
# Run as root on Debian 12 (apt packages are installed when missing).

PYTHON ?= python3
VENV   ?= .venv
PY      = $(VENV)/bin/python
APT_PACKAGES = redis-server php-cli php-predis php-redis php-igbinary python3-venv nodejs npm

.PHONY: deps venv test test-all lint demo bench soak fuzz clean

deps:
	@missing=""; for p in $(APT_PACKAGES); do \
	  dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	fi

$(VENV)/.installed: setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -e '.[test]'
	touch $@

venv: $(VENV)/.installed

php-demo/public/vendor/socket.io.min.js: php-demo/package.json
	cd php-demo && ./setup.sh

lint: venv
	$(VENV)/bin/ruff check bridge tests bench fuzz

test: deps venv lint
	$(PY) -m pytest -q

demo: deps venv php-demo/public/vendor/socket.io.min.js
	$(PY) -m demo

fuzz: venv
	$(PY) fuzz/fuzz_phpsession.py --runs 1000000

clean:
	rm -rf $(VENV) php-demo/node_modules php-demo/public/vendor .pytest_cache
