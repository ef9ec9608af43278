#!/usr/bin/env bash
# bench/order-events.sh: the order-events stream processor joining a backlog: row changes/s in,
# events/s out, peak RSS. A benchmark, not a test (it checks the processor wrote one event per
# source transaction).
#
#   bench/order-events.sh                   # 200k orders with 3 items each (~1M row changes)
#   ORDERS=20000 PROFILE=debug bench/order-events.sh
#
# It uses a database of its own (playground_bench_oe, recreated), a slot of its own and topics
# under a fresh prefix (bench_oe_<time>); the playground's database, slot and topics are never
# touched. The backlog is written first (producer, creates only, through cdc-reader with
# --provide-transaction-metadata), then order-events --until-caught-up reads it all.
set -euo pipefail
source "$(dirname "$0")/../scripts/lib.sh"
case "${1:-}" in -h|--help) sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;; esac
(($# == 0)) || die "no arguments: set ORDERS, PROFILE"
stop_if_dry_run "bench/order-events.sh"
cd "$ROOT"

ORDERS=${ORDERS:-200000}
PROFILE=${PROFILE:-release}
BENCH_DB=${BENCH_DB:-playground_bench_oe}
KAFKA_BOOTSTRAP_SERVERS=${KAFKA_BOOTSTRAP_SERVERS:-$KAFKA_BOOTSTRAP_DEFAULT}
PREFIX=bench_oe_$(date +%s)
SLOT=bench_oe_slot
export PGPASSWORD=$PG_PASSWORD KAFKA_BOOTSTRAP_SERVERS
BENCH_URL="postgres://$PG_USER:$PG_PASSWORD@127.0.0.1:$PG_PORT/$BENCH_DB"
psql_bench() { psql -h 127.0.0.1 -p "$PG_PORT" -U "$PG_USER" -v ON_ERROR_STOP=1 -Atq "$@"; }
BIN=target/$PROFILE

say "building ($PROFILE)"
build_workspace_bins "$PROFILE"

say "fresh database $BENCH_DB"
psql_bench -d "$PG_DB" -c "SELECT pg_drop_replication_slot('$SLOT') FROM pg_replication_slots WHERE slot_name = '$SLOT' AND NOT active" >/dev/null
psql_bench -d "$PG_DB" -c "DROP DATABASE IF EXISTS $BENCH_DB WITH (FORCE)" -c "CREATE DATABASE $BENCH_DB"
DATABASE_URL=$BENCH_URL "$BIN/db" migrate >/dev/null

say "the backlog: $ORDERS orders through cdc-reader (prefix $PREFIX)"
reader_log=$(mktemp)
DATABASE_URL=$BENCH_URL "$BIN/cdc-reader" --provide-transaction-metadata --snapshot-mode no-data \
    --slot-name "$SLOT" --publication-name bench_oe_pub --topic-prefix "$PREFIX" 2>"$reader_log" &
reader=$!
for _ in $(seq 300); do
  [[ $(psql_bench -d "$BENCH_DB" -c "SELECT active AND confirmed_flush_lsn IS NOT NULL FROM pg_replication_slots WHERE slot_name = '$SLOT'") == t ]] && break
  sleep 0.1
done
DATABASE_URL=$BENCH_URL "$BIN/producer" --orders "$ORDERS" --rate unlimited --concurrency 4 --mix create=100 --no-progress >/dev/null
target=$(psql_bench -d "$BENCH_DB" -c "SELECT pg_current_wal_lsn()")
until [[ $(psql_bench -d "$BENCH_DB" -c "SELECT confirmed_flush_lsn >= '$target' FROM pg_replication_slots WHERE slot_name = '$SLOT'") == t ]]; do
  kill -0 "$reader" 2>/dev/null || die "cdc-reader stopped: $(tail -5 "$reader_log")"
  sleep 0.5
done
kill -INT "$reader"; wait "$reader" || true
rm -f "$reader_log"

say "order-events --until-caught-up over the backlog"
log=$(mktemp)
start=$(date +%s.%N)
/usr/bin/time -v "$BIN/order-events" --source-prefix "$PREFIX" --output-topic "$PREFIX.orders.events.v1" \
    --changelog-topic "$PREFIX.order-events-state-changelog" --group-id "$PREFIX-order-events" \
    --transactional-id "$PREFIX-order-events-0" --until-caught-up 2>"$log" || die "order-events failed: $(tail -20 "$log")"
end=$(date +%s.%N)
line=$(sed 's/\x1b\[[0-9;]*m//g' "$log" | grep 'caught up' | tail -1) || die "no summary: $(tail -20 "$log")"
records=$(sed -E 's/.*records=([0-9]+).*/\1/' <<<"$line")
events=$(sed -E 's/.*events=([0-9]+).*/\1/' <<<"$line")
dead=$(sed -E 's/.*dead_letters=([0-9]+).*/\1/' <<<"$line")
rss_kb=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$log")
rm -f "$log"
psql_bench -d "$PG_DB" -c "SELECT pg_drop_replication_slot('$SLOT') FROM pg_replication_slots WHERE slot_name = '$SLOT' AND NOT active" >/dev/null
[[ $events == "$ORDERS" && $dead == 0 ]] || die "expected $ORDERS events and no dead letters, got $events and $dead"

seconds=$(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.2f", b - a }')
say "result ($events events, one per source transaction; the time includes start and restore)"
printf '| profile | records in | events out | seconds | records/s | events/s | peak RSS |\n|---|---|---|---|---|---|---|\n'
printf '| %s | %s | %s | %s | %s | %s | %s MiB |\n' "$PROFILE" "$records" "$events" "$seconds" \
    "$(awk -v r="$records" -v s="$seconds" 'BEGIN { printf "%d", r / s }')" \
    "$(awk -v r="$events" -v s="$seconds" 'BEGIN { printf "%d", r / s }')" "$((rss_kb / 1024))"
