#!/usr/bin/env bash
# bench/snapshot.sh: how fast cdc-reader snapshots a table, initial (1, 2 and 4 connections,
# --snapshot-max-threads) and incremental (signal-driven, chunked), next to
# `COPY (SELECT ...) TO STDOUT` into /dev/null as the ceiling.
#
#   bench/snapshot.sh                      1M orders-like rows, release build
#   ROWS=200000 bench/snapshot.sh          smaller
#   PROFILE=debug bench/snapshot.sh        the debug build (dependencies optimized) already built
#   DEBEZIUM=yes bench/snapshot.sh         also Debezium's incremental snapshot of the same table
#                                          (scripts/debezium, chunks of 1024), for the "3x" goal
#
# A database of its own (bench_snap), the rows, ANALYZE; then each run reads the whole table
# into Kafka (a topic prefix per run), timed with /usr/bin/time (elapsed, peak RSS, and the
# reader's CPU seconds, user + system: on a shared machine the steadier number). The
# initial runs use --snapshot-mode initial-only (exit when the snapshot is delivered); the
# incremental run streams, gets an execute-snapshot signal, and is timed from the signal to the
# stored progress saying done. Not a test: it asserts nothing; it prints a table.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=scripts/lib.sh
source "$ROOT/scripts/lib.sh"
cd "$ROOT"

usage() { sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; }
case "${1:-}" in -h|--help) usage; exit 0 ;; "") ;; *) die "no arguments (ROWS=..., PROFILE=... in the environment)" ;; esac
ROWS=${ROWS:-1000000}
PROFILE=${PROFILE:-release}
DEBEZIUM=${DEBEZIUM:-no}
[[ $PROFILE == release || $PROFILE == debug ]] || die "PROFILE is release or debug, not '$PROFILE'"
[[ $DEBEZIUM == yes || $DEBEZIUM == no ]] || die "DEBEZIUM is yes or no, not '$DEBEZIUM'"
stop_if_dry_run "bench/snapshot.sh"

DB=bench_snap
RUN=$(date +%s)
command -v /usr/bin/time >/dev/null 2>&1 || { [[ $(id -u) -eq 0 ]] && apt-get install -y -qq time >/dev/null; }
"$ROOT/scripts/stack" up >/dev/null
if [[ $PROFILE == release ]]; then
  say "building cdc-reader (release)"
  cargo build --quiet --release -p cdc-reader
fi
READER=target/$PROFILE/cdc-reader
[[ -x $READER ]] || die "$READER is missing: build it (cargo build -p cdc-reader, or PROFILE=release)"

export PGPASSWORD=$PG_PASSWORD
PSQL=(psql -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PG_PORT" -U "$PG_USER")
URL="postgres://$PG_USER:$PG_PASSWORD@127.0.0.1:$PG_PORT/$DB"

drop_db() {
  "${PSQL[@]}" -d postgres -c "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE database = '$DB' AND NOT active" >/dev/null
  "${PSQL[@]}" -d postgres -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" >/dev/null
}
timed() { # command...: prints "seconds peak_rss_kb cpu_seconds"
  /usr/bin/time -f "%e %M %U %S" -o /tmp/bench_time.$$ "$@" >/dev/null 2>/tmp/bench_err.$$ \
    || { tail -5 /tmp/bench_err.$$ >&2; die "failed: $*"; }
  awk '{ print $1, $2, $3 + $4 }' /tmp/bench_time.$$
}
cpu_of() { awk '{ print ($14 + $15) / 100 }' "/proc/$1/stat"; } # pid: user + system CPU seconds so far
rate() { python3 -c "print(f'{$1 / $2:,.0f}')"; }
mb() { python3 -c "print(f'{$1 / 1024:.1f}')"; }
READER_ARGS=(--database-url "$URL" --kafka-bootstrap-servers "$KAFKA_BOOTSTRAP_DEFAULT" --publication-name bench_snap_pub
  --tables public.orders --outbox-table none --drop-slot-on-exit)

say "$ROWS orders-like rows in $DB"
drop_db
"${PSQL[@]}" -d postgres -c "CREATE DATABASE $DB" >/dev/null
for f in db/migrations/*.sql; do "${PSQL[@]}" -d "$DB" -f "$f" >/dev/null; done
"${PSQL[@]}" -d "$DB" \
  -c "INSERT INTO orders (customer_id, status, total) SELECT g % 1000, (ARRAY['NEW','PAID','SHIPPED'])[1 + g % 3], (g % 10000)::numeric / 100 FROM generate_series(1, $ROWS) g" \
  -c "CREATE TABLE debezium_signal (id varchar(42) PRIMARY KEY, type varchar(32) NOT NULL, data varchar(2048))" \
  -c "VACUUM ANALYZE orders" >/dev/null

say "COPY (SELECT * FROM orders) TO STDOUT > /dev/null (the ceiling)"
read -r COPY_S COPY_KB _ < <(timed "${PSQL[@]}" -d "$DB" -c "COPY (SELECT * FROM orders) TO STDOUT")
declare -A INITIAL_S INITIAL_KB INITIAL_CPU
for threads in 1 2 4; do
  say "initial snapshot, --snapshot-max-threads $threads"
  read -r "INITIAL_S[$threads]" "INITIAL_KB[$threads]" "INITIAL_CPU[$threads]" < <(timed "$READER" "${READER_ARGS[@]}" --slot-name "bench_snap_$threads" \
    --topic-prefix "benchsnap${threads}x$RUN" --snapshot-mode initial-only --snapshot-max-threads "$threads")
done

say "incremental snapshot (chunks of 1024)"
INC_SLOT=bench_snap_inc
"$READER" "${READER_ARGS[@]}" --slot-name "$INC_SLOT" \
  --topic-prefix "benchsnapinc$RUN" --snapshot-mode no-data \
  --signal-data-collection public.debezium_signal >/dev/null 2>/tmp/bench_inc_err.$$ &
INC_PID=$!
q() { "${PSQL[@]}" -d "$DB" -tAc "$1"; }
until [[ $(q "SELECT active AND confirmed_flush_lsn IS NOT NULL FROM pg_replication_slots WHERE slot_name = '$INC_SLOT'") == t ]]; do sleep 0.2; done
START=$(date +%s.%N)
q "INSERT INTO debezium_signal VALUES ('bench-$RUN', 'execute-snapshot', '{\"data-collections\": [\"public.orders\"], \"type\": \"incremental\"}')" >/dev/null
until [[ $(q "SELECT progress->>'signal_id' IS NULL FROM cdc_reader_incremental_snapshots WHERE slot_name = '$INC_SLOT'") == t ]]; do sleep 0.2; done
INC_S=$(python3 -c "print(round($(date +%s.%N) - $START, 2))")
INC_KB=$(awk '/VmHWM/ { print $2 }' "/proc/$INC_PID/status") # peak RSS so far
INC_CPU=$(cpu_of "$INC_PID") # the whole run's: streaming before the signal is idle
kill -INT "$INC_PID"; wait "$INC_PID" || true

if [[ $DEBEZIUM == yes ]]; then
  say "Debezium's incremental snapshot (scripts/debezium, chunks of 1024)"
  DBZ_PREFIX=benchdbz$RUN
  DBZ_PROPS=$PLAY/bench-snapshot-debezium.properties
  printf 'signal.data.collection=public.debezium_signal\nincremental.snapshot.chunk.size=1024\n' >"$DBZ_PROPS"
  dbz() { DEBEZIUM_DATABASE=$DB DEBEZIUM_TABLES='public\.(orders|debezium_signal)' DEBEZIUM_TOPIC_PREFIX=$DBZ_PREFIX \
    DEBEZIUM_CONNECTOR_PROPERTIES=$DBZ_PROPS "$ROOT/scripts/debezium" "$@" >/dev/null; }
  dbz down --drop-slot
  dbz up
  records() { "target/$PROFILE/topic-peek" --kafka-bootstrap-servers "$KAFKA_BOOTSTRAP_DEFAULT" --list 2>/dev/null \
    | awk -v t="$DBZ_PREFIX.public.orders" '$1 == t { print $3 }'; }
  START=$(date +%s.%N)
  q "INSERT INTO debezium_signal VALUES ('dbz-$RUN', 'execute-snapshot', '{\"data-collections\": [\"public.orders\"], \"type\": \"incremental\"}')" >/dev/null
  while n=$(records); (( ${n:-0} < ROWS )); do
    python3 -c "import sys; sys.exit($(date +%s.%N) - $START > 1800)" \
      || die "Debezium wrote ${n:-0} of $ROWS records in 30 min (scripts/debezium logs)"
    sleep 0.5
  done
  DBZ_S=$(python3 -c "print(round($(date +%s.%N) - $START, 2))")
  DBZ_PID=$(cat "$PLAY/debezium/connect.pid")
  DBZ_KB=$(awk '/VmHWM/ { print $2 }' "/proc/$DBZ_PID/status")
  DBZ_CPU=$(cpu_of "$DBZ_PID") # includes the JVM's start
  dbz down --drop-slot
fi

row() { printf '%-46s | %9s | %10s | %8s | %11s | %7s\n' "$@"; }
echo
row "run ($ROWS rows, $PROFILE build)" "seconds" "rows/s" "of COPY" "peak RSS MB" "CPU s"
printf '%s\n' "-----------------------------------------------+-----------+------------+----------+-------------+--------"
share() { python3 -c "print(f'{100 * $COPY_S / $1:.0f}%')"; }
row "COPY (SELECT * FROM orders) TO STDOUT (psql)" "$COPY_S" "$(rate "$ROWS" "$COPY_S")" "100%" "$(mb "$COPY_KB")" "-"
for threads in 1 2 4; do
  row "initial snapshot -> Kafka, $threads connection(s)" "${INITIAL_S[$threads]}" "$(rate "$ROWS" "${INITIAL_S[$threads]}")" \
    "$(share "${INITIAL_S[$threads]}")" "$(mb "${INITIAL_KB[$threads]}")" "${INITIAL_CPU[$threads]}"
done
row "incremental snapshot -> Kafka, chunks of 1024" "$INC_S" "$(rate "$ROWS" "$INC_S")" "$(share "$INC_S")" "$(mb "$INC_KB")" "$INC_CPU"
if [[ $DEBEZIUM == yes ]]; then
  row "Debezium 3.6.1 incremental snapshot, 1024" "$DBZ_S" "$(rate "$ROWS" "$DBZ_S")" "$(share "$DBZ_S")" "$(mb "$DBZ_KB")" "$DBZ_CPU"
fi
printf 'load average at the end: %s (%s cores)\n' "$(cut -d' ' -f1-3 /proc/loadavg)" "$(nproc)"
drop_db
