# shellcheck shell=bash
# Shared settings for the playground scripts (sourced, not run).
#
# Every port, name and path the local stack uses is defined here once, each overridable from the
# environment, so scripts/stack, scripts/test and scripts/demo always agree.

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PLAY=${PLAYGROUND_DIR:-$ROOT/.playground}

PG_PORT=${PG_PORT:-55432}
PG_DB=${PG_DB:-playground}
PG_USER=${PG_USER:-playground}
PG_PASSWORD=${PG_PASSWORD:-playground}
KAFKA_PORT=${KAFKA_PORT:-59092}
KAFKA_CONTROLLER_PORT=${KAFKA_CONTROLLER_PORT:-59093}
KAFKA_VERSION=4.3.1
SCHEMA_REGISTRY_PORT=${SCHEMA_REGISTRY_PORT:-58081}
# SCHEMA_REGISTRY=off: a stack without the registry (the fault tests' private stacks need none).
SCHEMA_REGISTRY=${SCHEMA_REGISTRY:-on}
APICURIO_VERSION=3.0.9
# Apache Cassandra, on request only (`scripts/stack up --with cassandra`): CQL on CASSANDRA_PORT;
# its gossip (storage) and JMX ports sit next to it unless given.
CASSANDRA_PORT=${CASSANDRA_PORT:-59042}
CASSANDRA_STORAGE_PORT=${CASSANDRA_STORAGE_PORT:-$((CASSANDRA_PORT + 1))}
CASSANDRA_SSL_STORAGE_PORT=${CASSANDRA_SSL_STORAGE_PORT:-$((CASSANDRA_PORT + 2))}
CASSANDRA_JMX_PORT=${CASSANDRA_JMX_PORT:-$((CASSANDRA_PORT + 3))}
CASSANDRA_VERSION=5.0.6

DATABASE_URL_DEFAULT="postgres://$PG_USER:$PG_PASSWORD@127.0.0.1:$PG_PORT/$PG_DB"
# `scripts/stack up --brokers 3` runs three Kafka brokers (remembered in $PLAY/brokers): broker N
# listens on KAFKA_PORT + 2(N-1), its controller on KAFKA_CONTROLLER_PORT + 2(N-1).
kafka_brokers() {
  if [[ -n ${KAFKA_BROKERS:-} ]]; then echo "$KAFKA_BROKERS"
  elif [[ -f $PLAY/brokers ]]; then cat "$PLAY/brokers"
  else echo 1; fi
}
broker_port() { echo $((KAFKA_PORT + 2 * ($1 - 1))); }
broker_controller_port() { echo $((KAFKA_CONTROLLER_PORT + 2 * ($1 - 1))); }
kafka_bootstrap_servers() {
  local n out=""
  for n in $(seq 1 "$(kafka_brokers)"); do out+="${out:+,}127.0.0.1:$(broker_port "$n")"; done
  echo "$out"
}
KAFKA_BOOTSTRAP_DEFAULT=$(kafka_bootstrap_servers)
# The base URL a Confluent client is given (Apicurio's Confluent-compatible API).
SCHEMA_REGISTRY_URL_DEFAULT="http://127.0.0.1:$SCHEMA_REGISTRY_PORT/apis/ccompat/v7"
CASSANDRA_CONTACT_POINTS_DEFAULT="127.0.0.1:$CASSANDRA_PORT"

say()  { printf '\033[1;34m==>\033[0m %s\n' "$*" >&2; }
warn() { printf '\033[1;33mwarn:\033[0m %s\n' "$*" >&2; }
die()  { printf '\033[1;31merror:\033[0m %s\n' "$*" >&2; exit 1; }

# SCRIPTS_DRY_RUN=1: a script checks its whole command line, says what it would do, and exits 0
# before touching anything (db/tests/documented_commands.rs runs every command the README and the
# workshop pages show this way, so a renamed command or option fails CI, not a learner).
stop_if_dry_run() {
  if [[ ${SCRIPTS_DRY_RUN:-0} == 1 ]]; then
    printf 'dry run: %s: arguments accepted, nothing done\n' "$*"
    exit 0
  fi
}

# The benchmarks' build: every binary and example of the workspace in one cargo call, so cargo
# unifies the dependencies' features once and the scripts share one build (building `-p a` then
# `-p b` rebuilds the crates they share whenever their features differ). PROFILE: release | debug.
build_workspace_bins() {
  local flag=(); [[ ${1:-release} == release ]] && flag=(--release)
  cargo build --quiet "${flag[@]}" --workspace --bins --examples
}

# Debezium option KEY=VALUE -> a .properties line (a backslash in the value is written `\\`, as a
# .properties reader expects; scripts/conformance and conformance/record --debezium-option).
debezium_option_line() {
  local option=$1
  [[ $option == ?*=* ]] || die "--debezium-option takes KEY=VALUE (a Debezium connector key), got '$option'"
  local value=${option#*=}
  printf '%s=%s\n' "${option%%=*}" "${value//\\/\\\\}"
}
