#!/usr/bin/env bash
# `make test`: start the real services the suite needs, run pytest, and stop the
# services again on success, failure or Ctrl-C. Extra arguments go to pytest.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

started_here=()
cleanup() {
  for service in "${started_here[@]}"; do bash deploy/services.sh stop "$service" || true; done
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Stop only what this run started, so a developer's `make services` stays up.
for service in postgres kafka; do
  if ! bash deploy/services.sh status | grep -q "^$service: up"; then
    bash deploy/services.sh start "$service"
    started_here+=("$service")
  fi
done
eval "$(bash deploy/services.sh env)"
export INFERLOOP_TEST_KAFKA_BOOTSTRAP INFERLOOP_TEST_POSTGRES_URL

.venv/bin/python -m pytest "$@"
