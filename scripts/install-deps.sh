#!/usr/bin/env bash
# Installs, from Debian's packages, what the demo and the tests need and this
# machine lacks. Checks by command where a tool may come from elsewhere
# (node/npm from NodeSource, Python from pyenv), by package otherwise.
set -euo pipefail
python=${PYTHON:-python3}
missing=()
need_cmd() { command -v "$1" >/dev/null 2>&1 || missing+=("$2"); }
need_pkg() { dpkg -s "$1" >/dev/null 2>&1 || missing+=("$1"); }

need_cmd redis-server redis-server
need_cmd php php-cli
need_pkg php-predis
need_pkg php-redis
need_pkg php-igbinary
# The real frameworks of the preset tests (tests/apps): Laravel 8, Symfony 5.4.
for pkg in php-laravel-framework php-symfony-http-foundation php-symfony-http-kernel \
    php-symfony-event-dispatcher php-symfony-security-core php-symfony-security-http; do
  need_pkg "$pkg"
done
need_cmd npm npm
need_cmd chromium chromium
need_cmd chromedriver chromium-driver
need_cmd docker-compose docker-compose
"$python" -c 'import ensurepip, venv' >/dev/null 2>&1 || missing+=(python3-venv)
# The decoder's C extension (without these it falls back to pure Python, 10x slower).
need_cmd gcc gcc
need_pkg libc6-dev
"$python" -c 'import os, sys, sysconfig
sys.exit(not os.path.exists(os.path.join(sysconfig.get_paths()["include"], "Python.h")))' \
  || missing+=(python3-dev)

if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
