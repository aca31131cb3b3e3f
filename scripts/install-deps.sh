#!/usr/bin/env bash
# Installs, from Debian's packages, what the demo (`demo`) or the demo and the
# tests (`test`, the default) need and this machine lacks. Checks by command
# where a tool may come from elsewhere (node/npm from NodeSource, Python from
# pyenv), by package otherwise.
#
#   scripts/install-deps.sh demo   # redis-server, php-cli, Predis, phpredis, npm, venv, a C compiler
#   scripts/install-deps.sh test   # the above plus Chromium, chromedriver, docker-compose, ...
set -euo pipefail
what=${1:-test}
python=${PYTHON:-python3}
missing=()
need_cmd() { command -v "$1" >/dev/null 2>&1 || missing+=("$2"); }
need_pkg() { dpkg -s "$1" >/dev/null 2>&1 || missing+=("$1"); }

# --- the demo: Redis, PHP with Predis and phpredis, npm for the page's client ---
need_cmd redis-server redis-server
need_cmd php php-cli
need_pkg php-predis
need_pkg php-redis
need_cmd npm npm
"$python" -c 'import ensurepip, venv' >/dev/null 2>&1 || missing+=(python3-venv)
# The decoder's C extension (without these it falls back to pure Python, 10x slower).
need_cmd gcc gcc
need_pkg libc6-dev
"$python" -c 'import os, sys, sysconfig
sys.exit(not os.path.exists(os.path.join(sysconfig.get_paths()["include"], "Python.h")))' \
  || missing+=(python3-dev)

# --- the tests only ---
if [ "$what" = test ]; then
  need_pkg php-igbinary                 # sessions the decoder must refuse by name
  need_cmd redis-sentinel redis-sentinel  # the Sentinel topology tests
  need_cmd chromium chromium            # the browser tests (Debian's Chromium, headless)
  need_cmd chromedriver chromium-driver
  need_cmd docker-compose docker-compose  # validates compose.yaml (no engine needed)
  need_cmd promtool prometheus          # checks the Grafana dashboard's queries
  # The real frameworks of the preset tests (tests/apps): Laravel 8, Symfony 5.4.
  for pkg in php-laravel-framework php-symfony-http-foundation php-symfony-http-kernel \
      php-symfony-event-dispatcher php-symfony-security-core php-symfony-security-http; do
    need_pkg "$pkg"
  done
fi

if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}"
  apt-get update -qq
  # Packages like redis-server or prometheus would start their service: the
  # demo and the tests start their own, so nothing is started while installing.
  policy=/usr/sbin/policy-rc.d
  [ -e "$policy" ] || { printf '#!/bin/sh\nexit 101\n' > "$policy"; chmod +x "$policy"; trap 'rm -f "$policy"' EXIT; }
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
