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

uv sync --locked --python 3.11 --quiet
uv run --no-sync fabrique-stack fetch
