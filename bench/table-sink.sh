#!/usr/bin/env bash
# bench/table-sink.sh: rows/s from a backlog of Debezium change events into PostgreSQL tables
# with table-sink. A benchmark, not a test (but it checks the mirror is exact).
#
#   bench/table-sink.sh                   # 1M change events (JSON with schema), release build
#   EVENTS=200000 PROFILE=debug bench/table-sink.sh   (debug: our crates unoptimised, dependencies at -O2)
#   TARGET=cassandra bench/table-sink.sh  # into Cassandra (scripts/stack up --with cassandra):
#                                         # keyspace bench_sink, table orders, auto-created
#
# The backlog is consumer/examples/produce_synthetic.rs's order history (creates, updates,
# cancels, deletes with tombstones, redelivered duplicates) on a topic of its own
# (bench.table-sink.orders.<events>, filled once, reused). The final orders go to the database
# playground_bench_sink_src (for the check), the mirror to playground_bench_sink (both
# recreated each run); the playground database and topics are never touched.
set -euo pipefail
source "$(dirname "$0")/../scripts/lib.sh"
case "${1:-}" in -h|--help) sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;; esac
(($# == 0)) || die "no arguments: set EVENTS, BATCH_SIZE, PROFILE, TARGET"
stop_if_dry_run "bench/table-sink.sh"
cd "$ROOT"

EVENTS=${EVENTS:-1000000}
BATCH_SIZE=${BATCH_SIZE:-10000}
PROFILE=${PROFILE:-release}
TARGET=${TARGET:-postgres}
[[ $TARGET == postgres || $TARGET == cassandra ]] || die "TARGET is postgres or cassandra (got '$TARGET')"
CASSANDRA=${CASSANDRA_CONTACT_POINTS:-$CASSANDRA_CONTACT_POINTS_DEFAULT}
CASSANDRA=${CASSANDRA%%,*}
KAFKA_BOOTSTRAP_SERVERS=${KAFKA_BOOTSTRAP_SERVERS:-$KAFKA_BOOTSTRAP_DEFAULT}
TOPIC=bench.table-sink.orders.$EVENTS
SOURCE_DB=playground_bench_sink_src
MIRROR_DB=playground_bench_sink

export PGPASSWORD=$PG_PASSWORD KAFKA_BOOTSTRAP_SERVERS
url() { echo "postgres://$PG_USER:$PG_PASSWORD@127.0.0.1:$PG_PORT/$1"; }
psql_bench() { psql -h 127.0.0.1 -p "$PG_PORT" -U "$PG_USER" -v ON_ERROR_STOP=1 -Atq "$@"; }

say "building ($PROFILE)"
build_workspace_bins "$PROFILE"

say "fresh databases $SOURCE_DB (the final orders, for the check) and $MIRROR_DB (the mirror)"
for database in "$SOURCE_DB" "$MIRROR_DB"; do
    psql_bench -d "$PG_DB" -c "DROP DATABASE IF EXISTS $database WITH (FORCE)" -c "CREATE DATABASE $database"
done
DATABASE_URL=$(url "$SOURCE_DB") "target/$PROFILE/db" migrate >/dev/null

say "filling $TOPIC (once) and writing the final orders"
DATABASE_URL=$(url "$SOURCE_DB") "target/$PROFILE/examples/produce_synthetic" \
    --topic "$TOPIC" --events "$EVENTS" --write-orders

if [[ $TARGET == cassandra ]]; then
    python3 scripts/cql_probe.py "$CASSANDRA" >/dev/null \
        || die "Cassandra does not answer at $CASSANDRA: start it with scripts/stack up --with cassandra"
    python3 scripts/cql_probe.py "$CASSANDRA" --query "DROP KEYSPACE IF EXISTS bench_sink" >/dev/null
    to=cassandra://$CASSANDRA/bench_sink
    target_flags=(--auto-create --consistency one)
    where=bench_sink.orders
else
    to=$(url "$MIRROR_DB")
    target_flags=(--schema-evolution basic)
    where=$MIRROR_DB.public.orders
fi
say "table-sink: $TOPIC -> $where"
log=$(mktemp)
out=$(mktemp)
/usr/bin/time -v "target/$PROFILE/table-sink" --topics "$TOPIC" --to "$to" \
    --group-id "bench-table-sink-$(date +%s)" "${target_flags[@]}" --batch-size "$BATCH_SIZE" \
    --until-caught-up 2>"$log" | tee "$out"
summary=$(grep -E 'records/s$' "$out" | tail -1) || die "table-sink printed no summary; its log: $(tail -20 "$log")"
records=$(awk '{print $1}' <<<"$summary")
seconds=$(sed -E 's/.* in ([0-9.]+)s: .*/\1/' <<<"$summary")
rate=$(sed -E 's/.*: ([0-9]+) records\/s$/\1/' <<<"$summary")
rss_kb=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$log")
cpu=$(awk -F': ' '/Percent of CPU this job got/ {print $2}' "$log")
rm -f "$log" "$out"

if [[ $TARGET == cassandra ]]; then
    say "checking: Cassandra holds as many orders as the final orders"
    expected=$(psql_bench -d "$SOURCE_DB" -c "SELECT count(*) FROM orders")
    rows=$(python3 scripts/cql_probe.py "$CASSANDRA" --query "SELECT count(*) FROM bench_sink.orders")
    [[ $expected == "$rows" ]] || die "Cassandra holds $rows orders, the source $expected"
else
    say "checking: the mirror equals the final orders (id, customer, status, total)"
    expected=$(psql_bench -d "$SOURCE_DB" -c "SELECT md5(string_agg(format('%s|%s|%s|%s', id, customer_id, status, total), ',' ORDER BY id)) FROM orders")
    actual=$(psql_bench -d "$MIRROR_DB" -c "SELECT md5(string_agg(format('%s|%s|%s|%s', id, customer_id, status, total), ',' ORDER BY id)) FROM public.orders")
    rows=$(psql_bench -d "$MIRROR_DB" -c "SELECT count(*) FROM public.orders")
    [[ $expected == "$actual" ]] || die "the mirror differs from the final orders"
fi

say "result ($where equals the final orders: $rows rows)"
printf '| target | records | batch | seconds | records/s | peak RSS | CPU | profile | cores | load average |\n|---|---|---|---|---|---|---|---|---|---|\n'
printf '| %s | %s | %s | %s | %s | %s MiB | %s | %s | %s | %s |\n' \
    "$TARGET" "$records" "$BATCH_SIZE" "$seconds" "$rate" "$((rss_kb / 1024))" "$cpu" "$PROFILE" "$(nproc)" "$(cut -d' ' -f1-3 /proc/loadavg)"
