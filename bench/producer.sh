#!/usr/bin/env bash
# bench/producer.sh: order transactions per second the producer sustains, by --concurrency.
#
#   bench/producer.sh                          10 s per concurrency level: 1, 4, 16
#   DURATION=30s LEVELS="1 4 8 16 32" bench/producer.sh
#
# Each order is its own transaction: the order, 3 lines (one multi-row INSERT) and its outbox
# row, then COMMIT (`--mix create=100 --items 3 --rate unlimited`). Each level writes into a
# fresh database of its own (bench_producer), so levels start from the same empty tables and the
# playground database is left alone. Not a test: it asserts nothing; it prints a Markdown table.
# The playground cluster runs with synchronous_commit=off (the table says what the server uses).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=scripts/lib.sh
source "$ROOT/scripts/lib.sh"
cd "$ROOT"

DURATION=${DURATION:-10s}
LEVELS=${LEVELS:-"1 4 16"}
DB=bench_producer

export PGPASSWORD=$PG_PASSWORD PGOPTIONS="-c client_min_messages=warning"
PSQL=(psql -X -q -t -A -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PG_PORT" -U "$PG_USER")
URL="postgres://$PG_USER:$PG_PASSWORD@127.0.0.1:$PG_PORT/$DB"

"${PSQL[@]}" -d "$PG_DB" -c "SELECT 1" >/dev/null 2>&1 \
  || die "PostgreSQL does not answer on 127.0.0.1:$PG_PORT: start the stack with scripts/stack up"
SYNC_COMMIT=$("${PSQL[@]}" -d "$PG_DB" -c "SHOW synchronous_commit")

say "building producer (release)"
build_workspace_bins release
PRODUCER="$ROOT/target/release/producer"

fresh_db() {
  "${PSQL[@]}" -d postgres -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" >/dev/null
  "${PSQL[@]}" -d postgres -c "CREATE DATABASE $DB" >/dev/null
  for f in db/migrations/*.sql; do "${PSQL[@]}" -d "$DB" -f "$f" >/dev/null; done
}

ROWS=()
for level in $LEVELS; do
  fresh_db
  say "concurrency $level: creating orders for $DURATION"
  summary=$(DATABASE_URL=$URL "$PRODUCER" --duration "$DURATION" --rate unlimited \
    --mix create=100 --items 3 --concurrency "$level" --seed 1 --no-progress)
  # "52311 operations in 10.00 s: 5230 ops/s (concurrency 4, seed 1)"
  # "  transaction latency: p50 0.71 ms, p99 3.20 ms"
  read -r orders seconds rate < <(sed -n '1s/^\([0-9]*\) operations in \([0-9.]*\) s: \([0-9]*\) ops\/s.*/\1 \2 \3/p' <<<"$summary")
  read -r p50 p99 < <(sed -n 's/.*p50 \([0-9.]*\) ms, p99 \([0-9.]*\) ms.*/\1 \2/p' <<<"$summary")
  stored=$("${PSQL[@]}" -d "$DB" -c "SELECT count(*) FROM orders")
  [[ $stored == "$orders" ]] || warn "summary says $orders orders, the table holds $stored"
  ROWS+=("$(printf '| %11s | %8s | %7s | %9s | %8s | %8s |' "$level" "$orders" "$seconds" "$rate" "$p50" "$p99")")
done
"${PSQL[@]}" -d postgres -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" >/dev/null

echo
echo "producer: order creates (3 items + 1 outbox row, one transaction each), $(nproc) cores, synchronous_commit=$SYNC_COMMIT"
echo
printf '| %11s | %8s | %7s | %9s | %8s | %8s |\n' concurrency orders seconds "orders/s" "p50 ms" "p99 ms"
printf '|%s|%s|%s|%s|%s|%s|\n' "-------------" "----------" "---------" "-----------" "----------" "----------"
printf '%s\n' "${ROWS[@]}"
