#!/usr/bin/env bash
# bench/replay.sh: replay ~1M Debezium change events from Kafka into order_totals, and report
# events/s and peak RSS. A benchmark, not a test (but it does check the result is exact).
#
#   bench/replay.sh                     # 1M events, with the JSON schema part (Debezium's default)
#   EVENTS=200000 SCHEMAS=no bench/replay.sh
#
# It uses a database of its own (playground_bench, dropped and recreated) and a topic of its own
# (bench.replay.orders.<events>.<schemas>, filled once by consumer/examples/produce_synthetic.rs
# and reused by later runs); the playground database and topics are never touched.
set -euo pipefail
source "$(dirname "$0")/../scripts/lib.sh"
cd "$ROOT"

EVENTS=${EVENTS:-1000000}
SCHEMAS=${SCHEMAS:-yes}
BATCH_SIZE=${BATCH_SIZE:-10000}
BENCH_DB=${BENCH_DB:-playground_bench}
KAFKA_BOOTSTRAP_SERVERS=${KAFKA_BOOTSTRAP_SERVERS:-$KAFKA_BOOTSTRAP_DEFAULT}
TOPIC=bench.replay.orders.v2.$EVENTS.$SCHEMAS
export PGPASSWORD=$PG_PASSWORD KAFKA_BOOTSTRAP_SERVERS
BENCH_URL="postgres://$PG_USER:$PG_PASSWORD@127.0.0.1:$PG_PORT/$BENCH_DB"
psql_bench() { psql -h 127.0.0.1 -p "$PG_PORT" -U "$PG_USER" -v ON_ERROR_STOP=1 -Atq "$@"; }

say "building (release)"
build_workspace_bins release

say "fresh database $BENCH_DB"
psql_bench -d "$PG_DB" -c "DROP DATABASE IF EXISTS $BENCH_DB WITH (FORCE)" -c "CREATE DATABASE $BENCH_DB"
DATABASE_URL=$BENCH_URL target/release/db migrate >/dev/null

say "filling $TOPIC (once) and writing the final orders for the check"
no_schemas=()
[[ $SCHEMAS == no ]] && no_schemas=(--no-schemas)
DATABASE_URL=$BENCH_URL target/release/examples/produce_synthetic \
    --topic "$TOPIC" --events "$EVENTS" --write-orders "${no_schemas[@]}"

say "replaying $TOPIC into order_totals"
log=$(mktemp)
out=$(mktemp)
DATABASE_URL=$BENCH_URL /usr/bin/time -v target/release/consumer \
    --topics "$TOPIC" --group-id bench-replay --batch-size "$BATCH_SIZE" --replay --until-caught-up 2>"$log" | tee "$out"
summary=$(grep -E 'events/s$' "$out" | tail -1) || die "the consumer printed no summary; its log: $(tail -20 "$log")"
rate=$(sed -E 's/.*: ([0-9]+) events\/s$/\1/' <<<"$summary")
records=$(awk '{print $1}' <<<"$summary")
rss_kb=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$log")
cpu=$(awk -F': ' '/Percent of CPU this job got/ {print $2}' "$log")
rm -f "$log" "$out"

differences=$(psql_bench -d "$BENCH_DB" -c "
    WITH oracle AS (SELECT customer_id, count(*) AS order_count, sum(total) AS total_amount FROM orders GROUP BY customer_id)
    SELECT count(*) FROM ((TABLE oracle EXCEPT SELECT * FROM order_totals)
                          UNION ALL (SELECT * FROM order_totals EXCEPT TABLE oracle)) d")
[[ $differences == 0 ]] || die "order_totals differs from the GROUP BY over orders in $differences row(s)"

say "result (order_totals equals the GROUP BY over orders)"
printf '| events | schemas | batch | events/s | peak RSS | CPU | cores |\n|---|---|---|---|---|---|---|\n'
printf '| %s | %s | %s | %s | %s MiB | %s | %s |\n' \
    "$records" "$SCHEMAS" "$BATCH_SIZE" "$rate" "$((rss_kb / 1024))" "$cpu" "$(nproc)"
