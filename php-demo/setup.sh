#!/bin/sh
# Installs the browser's Socket.IO client for the demo page:
# npm install in php-demo/, then copies socket.io-client's dist/socket.io.min.js
# to public/vendor/ (not committed; see .gitignore). Safe to run again.
set -eu
cd "$(dirname "$0")"

if ! command -v npm >/dev/null 2>&1; then
    echo "setup.sh: npm is required (Node.js 18 or newer)" >&2
    exit 1
fi
npm install --no-audit --no-fund
mkdir -p public/vendor
cp node_modules/socket.io-client/dist/socket.io.min.js public/vendor/socket.io.min.js
cp node_modules/socket.io-client/dist/socket.io.min.js.map public/vendor/socket.io.min.js.map 2>/dev/null || true
echo "setup.sh: public/vendor/socket.io.min.js is socket.io-client $(node -p "require('./node_modules/socket.io-client/package.json').version")"
