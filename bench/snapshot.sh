#!/usr/bin/env bash
# bench/snapshot.sh: how fast cdc-reader snapshots a table, initial (1, 2 and 4 connections,
# --snapshot-max-threads) and incremental (signal-driven, chunked), next to
# `COPY (SELECT ...) TO STDOUT` into /dev/null as the ceiling.
#
#   bench/snapshot.sh                      1M orders-like rows, release build
#   ROWS=200000 bench/snapshot.sh          smaller
#   PROFILE=debug bench/snapshot.sh        the debug build (dependencies optimized) already built
#
# A database of its own (bench_snap), the rows, ANALYZE; then each run reads the whole table
# into Kafka (a topic prefix per run), timed with /usr/bin/time (elapsed, peak RSS). The
# initial runs use --snapshot-mode initial-only (exit when the snapshot is delivered); the
# incremental run streams, gets an execute-snapshot signal, and is timed from the signal to the
# stored progress saying done. Not a test: it asserts nothing; it prints a table.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=scripts/lib.sh
source "$ROOT/scripts/lib.sh"
cd "$ROOT"

usage() { sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'; }
case "${1:-}" in -h|--help) usage; exit 0 ;; "") ;; *) die "no arguments (ROWS=..., PROFILE=... in the environment)" ;; esac
ROWS=${ROWS:-1000000}
PROFILE=${PROFILE:-release}
[[ $PROFILE == release || $PROFILE == debug ]] || die "PROFILE is release or debug, not '$PROFILE'"
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
timed() { # command...: prints "seconds peak_rss_kb"
  /usr/bin/time -f "%e %M" -o /tmp/bench_time.$$ "$@" >/dev/null 2>/tmp/bench_err.$$ \
    || { tail -5 /tmp/bench_err.$$ >&2; die "failed: $*"; }
  cat /tmp/bench_time.$$
}
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
read -r COPY_S COPY_KB < <(timed "${PSQL[@]}" -d "$DB" -c "COPY (SELECT * FROM orders) TO STDOUT")
declare -A INITIAL_S INITIAL_KB
for threads in 1 2 4; do
  say "initial snapshot, --snapshot-max-threads $threads"
  read -r "INITIAL_S[$threads]" "INITIAL_KB[$threads]" < <(timed "$READER" "${READER_ARGS[@]}" --slot-name "bench_snap_$threads" \
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
kill -INT "$INC_PID"; wait "$INC_PID" || true

printf '\n%-44s | %9s | %12s | %8s | %11s\n' "run ($ROWS rows, $PROFILE build)" "seconds" "rows/s" "of COPY" "peak RSS MB"
printf '%s\n' "---------------------------------------------+-----------+--------------+----------+------------"
share() { python3 -c "print(f'{100 * $COPY_S / $1:.0f}%')"; }
printf '%-44s | %9s | %12s | %8s | %11s\n' "COPY (SELECT * FROM orders) TO STDOUT (psql)" "$COPY_S" "$(rate "$ROWS" "$COPY_S")" "100%" "$(mb "$COPY_KB")"
for threads in 1 2 4; do
  printf '%-44s | %9s | %12s | %8s | %11s\n' "initial snapshot -> Kafka, $threads connection(s)" "${INITIAL_S[$threads]}" \
    "$(rate "$ROWS" "${INITIAL_S[$threads]}")" "$(share "${INITIAL_S[$threads]}")" "$(mb "${INITIAL_KB[$threads]}")"
done
printf '%-44s | %9s | %12s | %8s | %11s\n' "incremental snapshot -> Kafka, chunks of 1024" "$INC_S" "$(rate "$ROWS" "$INC_S")" "$(share "$INC_S")" "$(mb "$INC_KB")"
drop_db
