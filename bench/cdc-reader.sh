#!/usr/bin/env bash
# bench/cdc-reader.sh: how fast cdc-reader turns WAL into acknowledged Kafka records, next to
# pg_recvlogical reading the same WAL (pgoutput, to /dev/null) as the ceiling.
#
#   bench/cdc-reader.sh                 1M row changes: 200k transactions of 5 rows
#   CHANGES=200000 bench/cdc-reader.sh  smaller
#
# What it does: a database of its own (bench_cdc), two slots created BEFORE the writes (one for
# each reader, so both read exactly the same WAL), the writes, then each reader from its slot to
# the LSN where the writes ended (`--until-lsn` / `--endpos`), timed with /usr/bin/time for the
# elapsed time and peak RSS (pg_recvlogical runs before and after cdc-reader; the faster run
# counts, so neither side is charged for reading cold WAL). Then one single transaction of 1M rows, for peak RSS on a big
# transaction. Not a test: it asserts nothing; it prints a table.
#
# Kafka keeps what the benchmark writes (~0.5 KB per record after lz4); reclaim the space with
# `scripts/stack down && rm -rf .playground/kafka && scripts/stack up`.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=scripts/lib.sh
source "$ROOT/scripts/lib.sh"
cd "$ROOT"

CHANGES=${CHANGES:-1000000}
ROWS_PER_TX=5
TXS=$((CHANGES / ROWS_PER_TX))
BIG_TX_ROWS=${BIG_TX_ROWS:-1000000}
DB=bench_cdc
RUN=$(date +%s)

command -v /usr/bin/time >/dev/null 2>&1 || { [[ $(id -u) -eq 0 ]] && apt-get install -y -qq time >/dev/null; }
"$ROOT/scripts/stack" up >/dev/null
say "building cdc-reader (release)"
build_workspace_bins release

export PGPASSWORD=$PG_PASSWORD
PSQL=(psql -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PG_PORT" -U "$PG_USER")
URL="postgres://$PG_USER:$PG_PASSWORD@127.0.0.1:$PG_PORT/$DB"
PG_BIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)

drop_db() {
  "${PSQL[@]}" -d postgres -c "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE database = '$DB'" >/dev/null
  "${PSQL[@]}" -d postgres -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" >/dev/null
}

fresh_db() {
  drop_db
  "${PSQL[@]}" -d postgres -c "CREATE DATABASE $DB" >/dev/null
  for f in db/migrations/*.sql; do "${PSQL[@]}" -d "$DB" -f "$f" >/dev/null; done
  "${PSQL[@]}" -d "$DB" -c "CREATE PUBLICATION bench_pub FOR TABLE orders" \
    -c "SELECT pg_create_logical_replication_slot('bench_reader_slot', 'pgoutput')" \
    -c "SELECT pg_create_logical_replication_slot('bench_recv_slot', 'pgoutput')" \
    -c "SELECT pg_create_logical_replication_slot('bench_recv2_slot', 'pgoutput')" >/dev/null
}

# Runs a command under /usr/bin/time; prints "seconds peak_rss_kb".
timed() {
  /usr/bin/time -f "%e %M" -o /tmp/bench_time.$$ "$@" >/dev/null 2>/tmp/bench_err.$$ \
    || { cat /tmp/bench_err.$$ >&2; die "failed: $*"; }
  cat /tmp/bench_time.$$
}

run_reader() { # prefix, end lsn
  timed target/release/cdc-reader --database-url "$URL" --kafka-bootstrap-servers "$KAFKA_BOOTSTRAP_DEFAULT" \
    --slot-name bench_reader_slot --publication-name bench_pub --tables public.orders \
    --topic-prefix "$1" --until-lsn "$2"
}

run_recvlogical() { # end lsn [slot]
  timed "$PG_BIN/pg_recvlogical" -d "$URL" --slot "${2:-bench_recv_slot}" --start --endpos "$1" \
    -o proto_version=1 -o publication_names=bench_pub -f /dev/null
}

rate() { python3 -c "print(f'{$1 / $2:,.0f}')"; }
mb() { python3 -c "print(f'{$1 / 1024:.1f}')"; }

say "writing $CHANGES row changes ($TXS transactions of $ROWS_PER_TX rows)"
fresh_db
"${PSQL[@]}" -d "$DB" -c "DO \$\$ BEGIN
  FOR t IN 1..$TXS LOOP
    INSERT INTO orders (customer_id, total) SELECT t % 100, (g * 10 + t % 7)::numeric / 100 FROM generate_series(1, $ROWS_PER_TX) g;
    COMMIT;
  END LOOP; END \$\$;"
END_LSN=$("${PSQL[@]}" -d "$DB" -tAc "SELECT pg_current_wal_insert_lsn()")

# The first reader of fresh WAL pays for reading it from disk: pg_recvlogical runs before and
# after cdc-reader, and the faster of its two runs is the ceiling.
say "pg_recvlogical (the ceiling) to $END_LSN"
read -r RECV1_S RECV_KB < <(run_recvlogical "$END_LSN")
say "cdc-reader -> Kafka to $END_LSN"
read -r READER_S READER_KB < <(run_reader "bench$RUN" "$END_LSN")
say "pg_recvlogical again"
read -r RECV2_S _ < <(run_recvlogical "$END_LSN" bench_recv2_slot)
RECV_S=$(python3 -c "print(min($RECV1_S, $RECV2_S))")

say "one transaction of $BIG_TX_ROWS rows"
fresh_db
"${PSQL[@]}" -d "$DB" -c "INSERT INTO orders (customer_id, total) SELECT g % 100, 1.00 FROM generate_series(1, $BIG_TX_ROWS) g"
BIG_END=$("${PSQL[@]}" -d "$DB" -tAc "SELECT pg_current_wal_insert_lsn()")
read -r BIGRECV1_S BIGRECV_KB < <(run_recvlogical "$BIG_END")
read -r BIG_S BIG_KB < <(run_reader "benchbig$RUN" "$BIG_END")
read -r BIGRECV2_S _ < <(run_recvlogical "$BIG_END" bench_recv2_slot)
BIGRECV_S=$(python3 -c "print(min($BIGRECV1_S, $BIGRECV2_S))")

printf '\n%-48s | %10s | %14s | %12s\n' "run" "seconds" "changes/s" "peak RSS MB"
printf '%s\n' "-------------------------------------------------+------------+----------------+-------------"
printf '%-48s | %10s | %14s | %12s\n' "pg_recvlogical, $CHANGES changes in $TXS tx" "$RECV_S" "$(rate "$CHANGES" "$RECV_S")" "$(mb "$RECV_KB")"
printf '%-48s | %10s | %14s | %12s\n' "cdc-reader -> Kafka, same WAL" "$READER_S" "$(rate "$CHANGES" "$READER_S")" "$(mb "$READER_KB")"
printf '%-48s | %10s | %14s | %12s\n' "pg_recvlogical, 1 tx of $BIG_TX_ROWS rows" "$BIGRECV_S" "$(rate "$BIG_TX_ROWS" "$BIGRECV_S")" "$(mb "$BIGRECV_KB")"
printf '%-48s | %10s | %14s | %12s\n' "cdc-reader -> Kafka, 1 tx of $BIG_TX_ROWS rows" "$BIG_S" "$(rate "$BIG_TX_ROWS" "$BIG_S")" "$(mb "$BIG_KB")"
python3 -c "print(f'\ncdc-reader reaches {100 * $RECV_S / $READER_S:.0f}% of pg_recvlogical\'s rate')"
drop_db
