#!/usr/bin/env bash
# bench/latency.sh: end-to-end latency at fixed rates, measured with the pipeline's own
# histograms (the consumer's source COMMIT -> projection COMMIT, the reader's COMMIT -> Kafka ack).
#
#   bench/latency.sh                          1,000, 5,000 and 10,000 row changes/s, 60 s each
#   bench/latency.sh --duration 10s           shorter runs
#   bench/latency.sh --rates "1000 5000"      other rates (row changes per second)
#   BENCH_PROFILE=release bench/latency.sh    release binaries (default: the debug build, whose
#                                             dependencies are optimized, see Cargo.toml)
#   bench/latency.sh --sink postgres          also table-sink on the orders and order_items topics
#   bench/latency.sh --sink cassandra         (into bench_latency_mirror / keyspace bench_latency):
#                                             its source COMMIT -> rows written, in three more columns
#
# Per rate: a database of its own (bench_latency), cdc-reader and the consumer started with
# --metrics-listen, a 5 s warm-up write (the topic appears, the consumer finds it and gets its
# partition: seconds the first records wait that no steady pipeline has), both /metrics pages
# read, then the producer at the rate (its mix: create=70,update=20,cancel=5,delete=5; a create
# writes ~5 rows: the order, 3 items, the outbox row), a wait until the consumer is caught up,
# both pages read again; p50/p95/p99 come from the difference of the histogram buckets (linear
# inside a bucket, as Prometheus's histogram_quantile). Not a test: a table.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=scripts/lib.sh
source "$ROOT/scripts/lib.sh"
cd "$ROOT"

DURATION=60s
RATES="1000 5000 10000"
SINK=
while (($#)); do
  case $1 in
    -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
    --duration) DURATION=${2:?--duration needs a value, e.g. 10s}; shift 2 ;;
    --rates) RATES=${2:?--rates needs a list, e.g. \"1000 5000\"}; shift 2 ;;
    --sink) SINK=${2:?--sink needs a target: postgres or cassandra}; shift 2 ;;
    *) die "unknown argument '$1' (see bench/latency.sh --help)" ;;
  esac
done
[[ $DURATION =~ ^[0-9]+s$ ]] || die "--duration takes whole seconds, e.g. 10s (got '$DURATION')"
[[ -z $SINK || $SINK == postgres || $SINK == cassandra ]] || die "--sink is postgres or cassandra (got '$SINK')"
stop_if_dry_run "bench/latency.sh --duration $DURATION --rates $RATES${SINK:+ --sink $SINK}"

PROFILE=${BENCH_PROFILE:-debug}
if [[ $SINK == cassandra ]]; then "$ROOT/scripts/stack" up --with cassandra >/dev/null; else "$ROOT/scripts/stack" up >/dev/null; fi
say "building the binaries ($PROFILE)"
build_workspace_bins "$PROFILE"
BIN=$ROOT/target/$PROFILE

DB=bench_latency
export PGPASSWORD=$PG_PASSWORD
PSQL=(psql -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PG_PORT" -U "$PG_USER")
export DATABASE_URL="postgres://$PG_USER:$PG_PASSWORD@127.0.0.1:$PG_PORT/$DB"
export KAFKA_BOOTSTRAP_SERVERS=$KAFKA_BOOTSTRAP_DEFAULT
READER_METRICS=127.0.0.1:${BENCH_READER_METRICS_PORT:-9111}
CONSUMER_METRICS=127.0.0.1:${BENCH_CONSUMER_METRICS_PORT:-9112}
SINK_METRICS=127.0.0.1:${BENCH_SINK_METRICS_PORT:-9113}
MIRROR=bench_latency_mirror
CASSANDRA=${CASSANDRA_CONTACT_POINTS:-$CASSANDRA_CONTACT_POINTS_DEFAULT}
CASSANDRA=${CASSANDRA%%,*}
LOGS=$PLAY/bench-latency
mkdir -p "$LOGS"
pids=()
cleanup() { for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT

# p50 p95 p99 (ms) and the count of histogram $2 on the /metrics page $1.
# With a second page ($3, read earlier), the quantiles of what was observed between the two.
QUANTILES_PY=$(cat <<'PY'
import sys, re
name = sys.argv[1] + "_bucket"
def read(lines):
    buckets = {}
    for line in lines:
        if line.startswith(name):
            m = re.search(r'le="([^"]+)"\}\s+(\S+)', line)
            if m:
                le = float("inf") if m.group(1) == "+Inf" else float(m.group(1))
                buckets[le] = buckets.get(le, 0.0) + float(m.group(2))
    return buckets
buckets = read(sys.stdin)
before = read(sys.argv[2].splitlines()) if len(sys.argv) > 2 else {}
buckets = {le: count - before.get(le, 0.0) for le, count in buckets.items()}
b = sorted(buckets.items())
total = b[-1][1] if b else 0
def q(p):
    if total <= 0: return "-"
    rank, lo, lo_count = p * total, 0.0, 0.0
    for le, count in b:
        if count >= rank:
            if le == float("inf"): return f">{lo * 1000:.0f}"
            inside = count - lo_count
            v = le if inside <= 0 else lo + (le - lo) * (rank - lo_count) / inside
            return f"{v * 1000:.1f}"
        lo, lo_count = le, count
    return f"{lo * 1000:.1f}"
print(q(0.5), q(0.95), q(0.99), int(total))
PY
)
quantiles() { python3 -c "$QUANTILES_PY" "$2" "${3:-}" <<<"$1"; }

metric_sum() { awk -v n="$2" '$1 ~ "^"n"({|$)" { s += $NF } END { printf "%.0f", s }' <<<"$1"; }

rows=()
for rate in $RATES; do
  say "rate $rate row changes/s for $DURATION"
  "${PSQL[@]}" -d postgres -c "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE database = '$DB'" >/dev/null
  "${PSQL[@]}" -d postgres -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" -c "CREATE DATABASE $DB" >/dev/null
  "$BIN/db" migrate >/dev/null
  prefix=benchlat$rate$(date +%s)
  "$BIN/cdc-reader" --slot-name bench_latency_slot --publication-name bench_latency_pub --topic-prefix "$prefix" \
    --outbox-table none --snapshot-mode no-data --metrics-listen "$READER_METRICS" >"$LOGS/cdc-reader-$rate.log" 2>&1 &
  pids+=($!)
  for _ in $(seq 1 100); do
    [[ $("${PSQL[@]}" -d "$DB" -tAc "SELECT active FROM pg_replication_slots WHERE slot_name = 'bench_latency_slot'") == t ]] && break
    sleep 0.2
  done
  "$BIN/consumer" --topics "$prefix.public.orders" --group-id "bench-latency-$prefix" \
    --metrics-listen "$CONSUMER_METRICS" >"$LOGS/consumer-$rate.log" 2>&1 &
  pids+=($!)
  if [[ -n $SINK ]]; then
    if [[ $SINK == postgres ]]; then
      "${PSQL[@]}" -d postgres -c "DROP DATABASE IF EXISTS $MIRROR WITH (FORCE)" -c "CREATE DATABASE $MIRROR" >/dev/null
      sink_to=(--to "postgres://$PG_USER:$PG_PASSWORD@127.0.0.1:$PG_PORT/$MIRROR" --schema-evolution basic)
    else
      python3 scripts/cql_probe.py "$CASSANDRA" --query "DROP KEYSPACE IF EXISTS bench_latency" >/dev/null
      sink_to=(--to "cassandra://$CASSANDRA/bench_latency" --auto-create --consistency one)
    fi
    "$BIN/table-sink" --topics "$prefix.public.orders,$prefix.public.order_items" "${sink_to[@]}" \
      --group-id "bench-latency-sink-$prefix" \
      --metrics-listen "$SINK_METRICS" >"$LOGS/table-sink-$rate.log" 2>&1 &
    pids+=($!)
  fi
  sleep 2
  # Warm-up: the first records create the topic; the consumer finds it on its next metadata refresh.
  "$BIN/producer" --duration 5s --rate 50 --no-progress --seed 7 >"$LOGS/producer-warmup-$rate.log" 2>&1
  sleep 3
  reader_before=$(curl -sf --max-time 5 "http://$READER_METRICS/metrics" || true)
  sink_before=$([[ -n $SINK ]] && curl -sf --max-time 5 "http://$SINK_METRICS/metrics" || true)
  consumer_before=$(curl -sf --max-time 5 "http://$CONSUMER_METRICS/metrics" || true)
  # ~5 row changes per operation on average (creates write 5 rows, the rest 1-2): operations/s = rate / 4.
  "$BIN/producer" --duration "$DURATION" --rate $((rate / 4)) --concurrency 4 --no-progress \
    --mix create=70,update=20,cancel=5,delete=5 >"$LOGS/producer-$rate.log" 2>&1
  # Caught up: the consumer's lag is 0 twice in a row, a second apart.
  zero=0
  for _ in $(seq 1 300); do
    page=$(curl -sf --max-time 2 "http://$CONSUMER_METRICS/metrics" || true)
    if [[ -n $page ]] && grep -q '^pgcdc_consumer_lag_records' <<<"$page" && [[ $(metric_sum "$page" pgcdc_consumer_lag_records) == 0 ]]; then
      zero=$((zero + 1)); ((zero >= 3)) && break
    else zero=0; fi
    sleep 1
  done
  if [[ -n $SINK ]]; then
    # The sink is caught up when its record count stands still for 3 s.
    last=-1 still=0
    for _ in $(seq 1 300); do
      page=$(curl -sf --max-time 2 "http://$SINK_METRICS/metrics" || true)
      now=$(metric_sum "$page" pgcdc_table_sink_records_total)
      if [[ $now == "$last" ]]; then still=$((still + 1)); ((still >= 3)) && break; else still=0; fi
      last=$now
      sleep 1
    done
    sink=$(curl -sf --max-time 5 "http://$SINK_METRICS/metrics")
    read -r s50 s95 s99 scount < <(quantiles "$sink" pgcdc_table_sink_end_to_end_latency_seconds "$sink_before")
    sink_cells=" $s50 | $s95 | $s99 | $scount |"
  else
    sink_cells=""
  fi
  reader=$(curl -sf --max-time 5 "http://$READER_METRICS/metrics")
  consumer=$(curl -sf --max-time 5 "http://$CONSUMER_METRICS/metrics")
  seconds=${DURATION%s}
  changes=$(($(metric_sum "$reader" pgcdc_reader_changes_total) - $(metric_sum "$reader_before" pgcdc_reader_changes_total)))
  read -r e50 e95 e99 ecount < <(quantiles "$consumer" pgcdc_consumer_end_to_end_latency_seconds "$consumer_before")
  read -r a50 a95 a99 _ < <(quantiles "$reader" pgcdc_reader_commit_to_ack_seconds "$reader_before")
  rows+=("| $rate | $((changes / seconds)) | $e50 | $e95 | $e99 | $a50 | $a95 | $a99 | $ecount |$sink_cells")
  cleanup; pids=()
done

if [[ -n $SINK ]]; then
  printf '\n| target changes/s | measured changes/s | e2e p50 ms | e2e p95 ms | e2e p99 ms | commit->ack p50 ms | p95 ms | p99 ms | e2e observations | sink (%s) p50 ms | sink p95 ms | sink p99 ms | sink observations |\n' "$SINK"
  printf '|---|---|---|---|---|---|---|---|---|---|---|---|---|\n'
else
  printf '\n| target changes/s | measured changes/s | e2e p50 ms | e2e p95 ms | e2e p99 ms | commit->ack p50 ms | p95 ms | p99 ms | e2e observations |\n'
  printf '|---|---|---|---|---|---|---|---|---|\n'
fi
printf '%s\n' "${rows[@]}"
printf '\n(%s build, %s, load average %s)\n' "$PROFILE" "$(nproc) cores" "$(cut -d' ' -f1-3 /proc/loadavg)"
