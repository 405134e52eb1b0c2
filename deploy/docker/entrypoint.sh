#!/bin/sh
# Entry point of every Fabrique image: the first argument says which process this container is.
# FABRIQUE_SERVICE (inventory, leasing, notifications or portal) is baked into the image at build time.
set -eu

service="${FABRIQUE_SERVICE:?FABRIQUE_SERVICE is not set (the image build sets it)}"
command="${1:-serve}"
[ "$#" -gt 0 ] && shift

case "$command" in
  serve)
    # One uvicorn worker per container: scale with replicas, not with processes in a pod.
    # The graceful timeout stays below the pods' terminationGracePeriodSeconds (45 s).
    exec uvicorn --factory "${service}.main:create_app" \
      --host 0.0.0.0 --port "${FABRIQUE_PORT:-8000}" \
      --no-access-log --timeout-graceful-shutdown 20 "$@"
    ;;
  migrate)
    exec python -m "${service}.cli" migrate "$@"
    ;;
  wait-for-migrations)
    exec python "${FABRIQUE_TOOLS_DIR:-/app/bin}/wait_for_migrations.py" "$service" "$@"
    ;;
  cli)
    exec python -m "${service}.cli" "$@"
    ;;
  *)
    exec "$command" "$@"
    ;;
esac
