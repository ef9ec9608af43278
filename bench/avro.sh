#!/usr/bin/env bash
# bench/avro.sh: cdc-reader --format avro against --format json (with schemas) on the same WAL,
# then the replay of both topics into order_totals.
#
#   bench/avro.sh                          200k row changes (40k transactions of 5 rows), release build
#   CHANGES=50000 PROFILE=debug bench/avro.sh
#
# What it does: a database of its own (bench_avro), two slots created BEFORE the writes (one per
# format, so both readers read exactly the same WAL), the writes, then each reader from its slot
# to the LSN where the writes ended (`--until-lsn`), timed with /usr/bin/time (elapsed, peak RSS),
# with `--kafka-compression none` so that Kafka's log size on disk is the records' own size
# (plus Kafka's per-record and per-batch overhead, the same for both). Then
# `consumer --replay --until-caught-up` over each topic (own group, the same database's
# order_totals rebuilt each time) for events/s, and order_totals checked against the GROUP BY.
# Not a test: it asserts nothing about speed; it prints a table. Needs the stack with its registry.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=scripts/lib.sh
source "$ROOT/scripts/lib.sh"
cd "$ROOT"

CHANGES=${CHANGES:-200000}
PROFILE=${PROFILE:-release}
[[ $PROFILE == release || $PROFILE == debug ]] || die "PROFILE is release or debug (got '$PROFILE')"
stop_if_dry_run "bench/avro.sh"
ROWS_PER_TX=5
TXS=$((CHANGES / ROWS_PER_TX))
DB=bench_avro
RUN=$(date +%s)
BIN=target/$PROFILE

command -v /usr/bin/time >/dev/null 2>&1 || { [[ $(id -u) -eq 0 ]] && apt-get install -y -qq time >/dev/null; }
"$ROOT/scripts/stack" up >/dev/null
say "building the workspace ($PROFILE)"
build_workspace_bins "$PROFILE"

export PGPASSWORD=$PG_PASSWORD
PSQL=(psql -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PG_PORT" -U "$PG_USER")
URL="postgres://$PG_USER:$PG_PASSWORD@127.0.0.1:$PG_PORT/$DB"

drop_db() {
  "${PSQL[@]}" -d postgres -c "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE database = '$DB'" >/dev/null
  "${PSQL[@]}" -d postgres -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" >/dev/null
}

timed() { # a command under /usr/bin/time; prints "seconds peak_rss_kb"
  /usr/bin/time -f "%e %M" -o /tmp/bench_time.$$ "$@" >/tmp/bench_out.$$ 2>/tmp/bench_err.$$ \
    || { tail -20 /tmp/bench_err.$$ >&2; die "failed: $*"; }
  cat /tmp/bench_time.$$
}

run_reader() { # slot, topic prefix, format
  timed "$BIN/cdc-reader" --database-url "$URL" --kafka-bootstrap-servers "$KAFKA_BOOTSTRAP_DEFAULT" \
    --slot-name "$1" --publication-name bench_pub --tables public.orders --topic-prefix "$2" \
    --until-lsn "$END_LSN" --kafka-compression none --format "$3" \
    --schema-registry-url "$SCHEMA_REGISTRY_URL_DEFAULT"
}

replay() { # topic: prints "seconds events_per_s"
  "${PSQL[@]}" -d "$DB" -c "TRUNCATE order_totals, order_status_totals, projection_order_state" >/dev/null 2>&1 || true
  local out
  out=$(DATABASE_URL=$URL "$BIN/consumer" --topics "$1" --group-id "bench-avro-$1" \
          --schema-registry-url "$SCHEMA_REGISTRY_URL_DEFAULT" --replay --until-caught-up 2>/tmp/bench_err.$$) \
    || { tail -20 /tmp/bench_err.$$ >&2; die "the consumer failed on $1"; }
  grep -E 'events/s$' <<<"$out" | tail -1 | sed -E 's/.*: ([0-9]+) events\/s$/\1/'
  local wrong
  wrong=$("${PSQL[@]}" -d "$DB" -tAc "
    WITH oracle AS (SELECT customer_id, count(*) AS order_count, sum(total) AS total_amount FROM orders GROUP BY customer_id)
    SELECT count(*) FROM ((TABLE oracle EXCEPT SELECT * FROM order_totals)
                          UNION ALL (SELECT * FROM order_totals EXCEPT TABLE oracle)) d")
  [[ $wrong == 0 ]] || warn "order_totals from $1 differs from the GROUP BY in $wrong customers"
}

log_bytes() { # the size of partition 0's log segments (not its preallocated index files)
  cat "$PLAY/kafka/data/$1-0/"*.log | wc -c
}

rate() { python3 -c "print(f'{$1 / $2:,.0f}')"; }
mb() { python3 -c "print(f'{$1 / 1024:.1f}')"; }

say "writing $CHANGES row changes ($TXS transactions of $ROWS_PER_TX rows)"
drop_db
"${PSQL[@]}" -d postgres -c "CREATE DATABASE $DB" >/dev/null
for f in db/migrations/*.sql; do "${PSQL[@]}" -d "$DB" -f "$f" >/dev/null; done
"${PSQL[@]}" -d "$DB" -c "CREATE PUBLICATION bench_pub FOR TABLE orders" \
  -c "SELECT pg_create_logical_replication_slot('bench_json_slot', 'pgoutput')" \
  -c "SELECT pg_create_logical_replication_slot('bench_avro_slot', 'pgoutput')" >/dev/null
"${PSQL[@]}" -d "$DB" -c "DO \$\$ BEGIN
  FOR t IN 1..$TXS LOOP
    INSERT INTO orders (customer_id, total) SELECT t % 100, (g * 10 + t % 7)::numeric / 100 FROM generate_series(1, $ROWS_PER_TX) g;
    COMMIT;
  END LOOP; END \$\$;"
END_LSN=$("${PSQL[@]}" -d "$DB" -tAc "SELECT pg_current_wal_insert_lsn()")

JSON_PREFIX=benchjson$RUN AVRO_PREFIX=benchavro$RUN
say "cdc-reader --format json to $END_LSN"
read -r JSON_S JSON_KB < <(run_reader bench_json_slot "$JSON_PREFIX" json)
say "cdc-reader --format avro to $END_LSN"
read -r AVRO_S AVRO_KB < <(run_reader bench_avro_slot "$AVRO_PREFIX" avro)
sleep 2 # let the broker write its segments
JSON_BYTES=$(log_bytes "$JSON_PREFIX.public.orders")
AVRO_BYTES=$(log_bytes "$AVRO_PREFIX.public.orders")

say "replaying both topics into order_totals"
JSON_REPLAY=$(replay "$JSON_PREFIX.public.orders")
AVRO_REPLAY=$(replay "$AVRO_PREFIX.public.orders")

printf '\n%-34s | %9s | %11s | %9s | %13s | %16s\n' "$CHANGES changes, $PROFILE build" "seconds" "changes/s" "peak RSS" "bytes/record" "replay events/s"
printf '%s\n' "-----------------------------------+-----------+-------------+-----------+---------------+-----------------"
printf '%-34s | %9s | %11s | %6s MB | %13s | %16s\n' "cdc-reader --format json" "$JSON_S" "$(rate "$CHANGES" "$JSON_S")" "$(mb "$JSON_KB")" "$((JSON_BYTES / CHANGES))" "${JSON_REPLAY:-?}"
printf '%-34s | %9s | %11s | %6s MB | %13s | %16s\n' "cdc-reader --format avro" "$AVRO_S" "$(rate "$CHANGES" "$AVRO_S")" "$(mb "$AVRO_KB")" "$((AVRO_BYTES / CHANGES))" "${AVRO_REPLAY:-?}"
python3 -c "print(f'\nAvro: {100 * $JSON_S / $AVRO_S:.0f}% of JSON\'s rate, records {100 * $AVRO_BYTES / $JSON_BYTES:.0f}% of the size (Kafka log, uncompressed)')"
drop_db
