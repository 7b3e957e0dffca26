#!/usr/bin/env bash
# `make test`: start the real services the suite needs, run pytest, and stop the
# services again on success, failure or Ctrl-C. Extra arguments go to pytest;
# INFERLOOP_TEST_SERVICES narrows the services started (`make test-fast`: postgres).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

started_here=()
cleanup() {
  for service in "${started_here[@]}"; do bash deploy/services.sh stop "$service" || true; done
}
trap cleanup EXIT
trap 'exit 130' INT TERM

is_up() {  # a busy broker can miss one probe: ask three times before calling it down
  for _ in 1 2 3; do
    bash deploy/services.sh status | grep -q "^$1: up" && return 0
    sleep 1
  done
  return 1
}

# Stop only what this run started, so a developer's `make services` stays up.
for service in ${INFERLOOP_TEST_SERVICES:-postgres kafka}; do
  if ! is_up "$service"; then
    bash deploy/services.sh start "$service"
    started_here+=("$service")
  fi
done
# The dashboard's browser tests drive Debian's Chromium (tests/ui): install it once.
if ! command -v chromium >/dev/null; then
  echo "installing Debian's chromium package (apt-get)" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq chromium >/dev/null
fi
eval "$(bash deploy/services.sh env)"
export INFERLOOP_TEST_KAFKA_BOOTSTRAP INFERLOOP_TEST_POSTGRES_URL

if [ "$#" -gt 0 ]; then
  exec .venv/bin/python -m pytest "$@"
fi
# `make test` with no arguments, in two passes to fit the machine's two cores: first what
# runs safely side by side (each test has its own SQLite file or PostgreSQL database), on
# both cores; then, one at a time, what needs the machine to itself: the broker's tests and
# the slow ones (faults with their own services, the demo, the browser, timings).
status=0
.venv/bin/python -m pytest -n 2 -m "not kafka and not slow and not browser" || status=$?
.venv/bin/python -m pytest -m "kafka or slow or browser" || status=$?
exit "$status"
