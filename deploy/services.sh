#!/usr/bin/env bash
# Real services for tests and local work, without Docker:
#   a single-node Apache Kafka (KRaft) broker from Maven jars, and a throwaway
#   PostgreSQL cluster from Debian's `postgresql` package.
#
# usage: deploy/services.sh {start|stop|status} [kafka|postgres|all]
#        deploy/services.sh env        # prints the export lines tests read
#
# Everything lives under .cache/ (jars, data dirs, logs) and is reused by the
# next run. Ports are not the defaults, so a developer's own services are safe.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/.." && pwd)"
# In a source checkout the cache sits beside the code; from an installed package
# (`inferloop dev`), in the user's cache directory.
if [ -f "$ROOT/pyproject.toml" ]; then DEFAULT_CACHE="$ROOT/.cache"
else DEFAULT_CACHE="${XDG_CACHE_HOME:-$HOME/.cache}/inferloop"; fi
CACHE="${INFERLOOP_CACHE_DIR:-$DEFAULT_CACHE}"
KAFKA_HOME="$CACHE/kafka"
KAFKA_PORT="${INFERLOOP_DEV_KAFKA_PORT:-19092}"
KAFKA_CONTROLLER_PORT="${INFERLOOP_DEV_KAFKA_CONTROLLER_PORT:-19093}"
# PostgreSQL runs as the unprivileged `postgres` user when we are root, and that user
# may not be able to enter the checkout (e.g. under /root): keep its cluster in a
# per-checkout folder under /var/tmp instead.
if [ "$(id -u)" = 0 ]; then
  PG_HOME="${INFERLOOP_DEV_POSTGRES_DIR:-/var/tmp/inferloop-postgres-$(printf '%s' "$ROOT" | cksum | cut -d' ' -f1)}"
else
  PG_HOME="${INFERLOOP_DEV_POSTGRES_DIR:-$CACHE/postgres}"
fi
PG_PORT="${INFERLOOP_DEV_POSTGRES_PORT:-15432}"

log() { printf '[services] %s\n' "$*" >&2; }

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# ---------------------------------------------------------------- Kafka
kafka_jars() {
  if [ -f "$KAFKA_HOME/libs/.complete" ]; then return; fi
  log "fetching the Kafka broker jars with Maven (once; cached in $KAFKA_HOME/libs)"
  mkdir -p "$KAFKA_HOME/libs"
  (cd "$HERE/kafka" && mvn -q -B dependency:copy-dependencies -Dlibs.dir="$KAFKA_HOME/libs")
  touch "$KAFKA_HOME/libs/.complete"
}

kafka_config() {
  mkdir -p "$KAFKA_HOME/data" "$KAFKA_HOME/logs"
  cat > "$KAFKA_HOME/server.properties" <<PROPS
process.roles=broker,controller
node.id=1
controller.quorum.bootstrap.servers=127.0.0.1:$KAFKA_CONTROLLER_PORT
listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT,CONTROLLER://127.0.0.1:$KAFKA_CONTROLLER_PORT
advertised.listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT,CONTROLLER://127.0.0.1:$KAFKA_CONTROLLER_PORT
inter.broker.listener.name=PLAINTEXT
controller.listener.names=CONTROLLER
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=$KAFKA_HOME/data
num.partitions=1
offsets.topic.replication.factor=1
offsets.topic.num.partitions=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
delete.topic.enable=true
message.max.bytes=10485760
PROPS
  cat > "$KAFKA_HOME/log4j2.properties" <<'PROPS'
status = warn
appender.file.type = File
appender.file.name = file
appender.file.fileName = ${sys:kafka.logs.dir}/server.log
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = WARN
rootLogger.appenderRef.file.ref = file
logger.kafka.name = kafka
logger.kafka.level = INFO
PROPS
}

kafka_start() {
  if port_open "$KAFKA_PORT"; then log "Kafka already listening on 127.0.0.1:$KAFKA_PORT"; return; fi
  kafka_jars
  kafka_config
  local cp="$KAFKA_HOME/libs/*"
  if [ ! -f "$KAFKA_HOME/data/meta.properties" ]; then
    local cluster_id
    cluster_id="$(java -cp "$cp" kafka.tools.StorageTool random-uuid)"
    java -cp "$cp" kafka.tools.StorageTool format -t "$cluster_id" \
      -c "$KAFKA_HOME/server.properties" --standalone --ignore-formatted >/dev/null
  fi
  log "starting Kafka on 127.0.0.1:$KAFKA_PORT"
  nohup java -Xms512m -Xmx512m -XX:+UseG1GC \
    -Dlog4j2.configurationFile="$KAFKA_HOME/log4j2.properties" \
    -Dkafka.logs.dir="$KAFKA_HOME/logs" \
    -cp "$cp" kafka.Kafka "$KAFKA_HOME/server.properties" \
    >"$KAFKA_HOME/logs/stdout.log" 2>&1 &
  echo $! > "$KAFKA_HOME/broker.pid"
  # Kafka opens the client port only once the broker is unfenced: open = ready.
  for _ in $(seq 1 180); do
    if port_open "$KAFKA_PORT"; then log "Kafka ready"; return; fi
    if ! kill -0 "$(cat "$KAFKA_HOME/broker.pid")" 2>/dev/null; then
      log "Kafka exited; last log lines:"; tail -20 "$KAFKA_HOME/logs/stdout.log" >&2; exit 1
    fi
    sleep 0.5
  done
  log "Kafka did not open its port in 90 s"; tail -20 "$KAFKA_HOME/logs/server.log" >&2; exit 1
}

kafka_stop() {
  local pidfile="$KAFKA_HOME/broker.pid"
  [ -f "$pidfile" ] || return 0
  local pid; pid="$(cat "$pidfile")"
  if kill -0 "$pid" 2>/dev/null; then
    log "stopping Kafka (pid $pid)"
    kill -TERM "$pid"
    for _ in $(seq 1 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid"
  fi
  rm -f "$pidfile"
}

# ---------------------------------------------------------------- PostgreSQL
pg_bin() {
  local dir
  dir="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1 || true)"
  if [ -z "$dir" ] || [ ! -x "$dir/initdb" ]; then
    log "installing Debian's postgresql package (apt-get)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null
    apt-get install -y -qq postgresql >/dev/null
    dir="$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)"
  fi
  echo "$dir"
}

# PostgreSQL refuses to run as root; run it as an unprivileged user when we are root.
as_pg_user() {
  if [ "$(id -u)" = 0 ]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

postgres_start() {
  if port_open "$PG_PORT"; then log "PostgreSQL already listening on 127.0.0.1:$PG_PORT"; return; fi
  local bin; bin="$(pg_bin)"
  mkdir -p "$PG_HOME"
  [ "$(id -u)" = 0 ] && chown postgres:postgres "$PG_HOME"
  if [ ! -f "$PG_HOME/data/PG_VERSION" ]; then
    log "creating a throwaway PostgreSQL cluster in $PG_HOME/data"
    as_pg_user "$bin/initdb" -D "$PG_HOME/data" -U postgres -A trust --no-sync >/dev/null
  fi
  log "starting PostgreSQL on 127.0.0.1:$PG_PORT"
  as_pg_user "$bin/pg_ctl" -D "$PG_HOME/data" -l "$PG_HOME/server.log" -w -t 60 start \
    -o "-p $PG_PORT -k /tmp -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200" >/dev/null
  log "PostgreSQL ready"
}

postgres_stop() {
  [ -f "$PG_HOME/data/postmaster.pid" ] || return 0
  local bin; bin="$(pg_bin)"
  log "stopping PostgreSQL"
  as_pg_user "$bin/pg_ctl" -D "$PG_HOME/data" -m fast -w stop >/dev/null || true
}

# ---------------------------------------------------------------- main
print_env() {
  echo "export INFERLOOP_TEST_KAFKA_BOOTSTRAP=127.0.0.1:$KAFKA_PORT"
  echo "export INFERLOOP_TEST_POSTGRES_URL=postgresql+psycopg://postgres@127.0.0.1:$PG_PORT/postgres"
}

action="${1:-status}"; which="${2:-all}"
wants() { [[ "$which" == all || "$which" == "$1" ]]; }
case "$action" in
  start)
    if wants postgres; then postgres_start; fi
    if wants kafka; then kafka_start; fi
    ;;
  stop)
    if wants kafka; then kafka_stop; fi
    if wants postgres; then postgres_stop; fi
    ;;
  status)
    port_open "$KAFKA_PORT" && echo "kafka: up on 127.0.0.1:$KAFKA_PORT" || echo "kafka: down"
    port_open "$PG_PORT" && echo "postgres: up on 127.0.0.1:$PG_PORT" || echo "postgres: down"
    ;;
  kafka-jars) kafka_jars ;;
  env) print_env ;;
  *) echo "usage: $0 {start|stop|status|env|kafka-jars} [kafka|postgres|all]" >&2; exit 2 ;;
esac
