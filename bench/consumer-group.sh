#!/usr/bin/env bash
# bench/consumer-group.sh: replay throughput of a consumer group (`consumer --group-mode`) with 1, 2
# and 3 instances on a six-partition topic. A benchmark, not a test (it does check that
# order_totals equals the GROUP BY after every run).
#
#   bench/consumer-group.sh                    # 300,000 events, 6 partitions, 1 2 3 instances
#   EVENTS=100000 INSTANCES="1 3" bench/consumer-group.sh
#   PROFILE=debug bench/consumer-group.sh     # the debug build (optimized dependencies), no release build
#
# Each run starts from empty projections and no stored offsets (the group's "replay": reset once,
# then start the members), starts N members with --until-caught-up at once, and times until the
# last one exits (the group's stored offsets reached the end). A database of its own
# (playground_bench_group) and a topic of its own (bench.group.orders.<events>, filled once).
set -euo pipefail
source "$(dirname "$0")/../scripts/lib.sh"
cd "$ROOT"

EVENTS=${EVENTS:-300000}
PARTITIONS=${PARTITIONS:-6}
INSTANCES=${INSTANCES:-1 2 3}
BATCH_SIZE=${BATCH_SIZE:-5000}
BENCH_DB=${BENCH_DB:-playground_bench_group}
PROFILE=${PROFILE:-release}
KAFKA_BOOTSTRAP_SERVERS=${KAFKA_BOOTSTRAP_SERVERS:-$KAFKA_BOOTSTRAP_DEFAULT}
TOPIC=bench.group.orders.$EVENTS.$PARTITIONS
GROUP=bench-group-$EVENTS
export PGPASSWORD=$PG_PASSWORD KAFKA_BOOTSTRAP_SERVERS
BENCH_URL="postgres://$PG_USER:$PG_PASSWORD@127.0.0.1:$PG_PORT/$BENCH_DB"
psql_bench() { psql -h 127.0.0.1 -p "$PG_PORT" -U "$PG_USER" -v ON_ERROR_STOP=1 -Atq "$@"; }
stop_if_dry_run "bench/consumer-group.sh"

say "building ($PROFILE)"
build_workspace_bins "$PROFILE"

say "fresh database $BENCH_DB"
psql_bench -d "$PG_DB" -c "DROP DATABASE IF EXISTS $BENCH_DB WITH (FORCE)" -c "CREATE DATABASE $BENCH_DB"
DATABASE_URL=$BENCH_URL "target/$PROFILE/db" migrate >/dev/null

say "filling $TOPIC ($PARTITIONS partitions, once) and writing the final orders for the check"
DATABASE_URL=$BENCH_URL target/$PROFILE/examples/produce_synthetic \
    --topic "$TOPIC" --events "$EVENTS" --partitions "$PARTITIONS" --write-orders

rows=()
for n in $INSTANCES; do
  psql_bench -d "$BENCH_DB" -c "TRUNCATE order_totals, order_status_totals, projection_order_state, projection_outbox_events, projection_batches" \
             -c "DELETE FROM consumer_offsets"
  say "replaying $TOPIC with $n instance(s)"
  start=$(date +%s.%N)
  pids=()
  for i in $(seq 1 "$n"); do
    DATABASE_URL=$BENCH_URL RUST_LOG=warn target/$PROFILE/consumer --group-mode --group-id "$GROUP" \
        --topics "$TOPIC" --batch-size "$BATCH_SIZE" --until-caught-up >/dev/null 2>"$PLAY/bench-group-$i.log" &
    pids+=($!)
  done
  for pid in "${pids[@]}"; do wait "$pid" || die "a member failed; its log: $PLAY/bench-group-*.log"; done
  seconds=$(echo "$(date +%s.%N) - $start" | bc)
  differences=$(psql_bench -d "$BENCH_DB" -c "
      WITH oracle AS (SELECT customer_id, count(*) AS order_count, sum(total) AS total_amount FROM orders GROUP BY customer_id)
      SELECT count(*) FROM ((TABLE oracle EXCEPT SELECT * FROM order_totals)
                            UNION ALL (SELECT * FROM order_totals EXCEPT TABLE oracle)) d")
  [[ $differences == 0 ]] || die "with $n instance(s) order_totals differs from the GROUP BY in $differences row(s)"
  writers=$(psql_bench -d "$BENCH_DB" -c "SELECT count(DISTINCT writer_epoch) FROM projection_batches")
  records=$(psql_bench -d "$BENCH_DB" -c "SELECT sum(next_offset) FROM consumer_offsets WHERE consumer = '$GROUP'")
  rows+=("$(printf '| %s | %s | %s | %.1f s | %.0f | %s | %s |' "$n" "$writers" "$records" "$seconds" "$(echo "$records / $seconds" | bc -l)" "$(cut -d' ' -f1 /proc/loadavg)" "$PROFILE")")
done

say "result (order_totals equals the GROUP BY over orders after every run)"
printf '| instances | members that applied | records | time | records/s | load avg at end | build |\n|---|---|---|---|---|---|---|\n'
printf '%s\n' "${rows[@]}"
