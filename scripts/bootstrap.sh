#!/usr/bin/env bash
# Installs everything Fabrique needs on a fresh Debian machine, then the Python workspace and
# the Kafka broker jars. Safe to run again: each step is skipped when already done.
set -euo pipefail
cd "$(dirname "$0")/.."
export UV_PYTHON_DOWNLOADS=never

missing=()
command -v java >/dev/null 2>&1 || missing+=(openjdk-17-jre-headless)
command -v mvn >/dev/null 2>&1 || missing+=(maven)
compgen -G "/usr/lib/postgresql/*/bin/postgres" >/dev/null || missing+=(postgresql)
command -v make >/dev/null 2>&1 || missing+=(make)
command -v kubectl >/dev/null 2>&1 || missing+=(kubernetes-client)  # kubectl kustomize, tests/deploy
command -v promtool >/dev/null 2>&1 || missing+=(prometheus)  # promtool + prometheus for tests/deploy
command -v npm >/dev/null 2>&1 || missing+=(npm)  # the portal's front-end packages (Leaflet, axe-core)
[ -x /usr/bin/chromium ] || missing+=(chromium)  # the portal's browser tests (Playwright drives it)
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "bootstrap: please install: ${missing[*]} (needs root)" >&2
    exit 1
  fi
  echo "bootstrap: installing ${missing[*]} from Debian packages"
  apt-get update -q
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
  # Debian starts a cluster of its own on 5432; the project runs its own servers instead.
  if command -v pg_ctlcluster >/dev/null 2>&1; then
    service postgresql stop >/dev/null 2>&1 || true
  fi
  service prometheus stop >/dev/null 2>&1 || true  # Debian may start one on 9090
fi

if ! command -v uv >/dev/null 2>&1; then
  echo "bootstrap: installing uv from PyPI"
  python3 -m pip install --quiet --disable-pip-version-check "uv>=0.5"
fi

# Playwright drives Debian's Chromium (executable_path); it must never fetch a browser of its own.
export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1
uv sync --locked --python 3.11 --quiet
# The portal serves Leaflet from its own node_modules (never a CDN); axe-core is for the tests.
portal=services/portal
if [ ! -f "$portal/node_modules/.package-lock.json" ] \
  || [ "$portal/package-lock.json" -nt "$portal/node_modules/.package-lock.json" ]; then
  echo "bootstrap: installing the portal's npm packages"
  npm ci --prefix "$portal" --no-audit --no-fund --loglevel=error
fi
uv run --no-sync fabrique-stack fetch
