#!/usr/bin/env bash
# Two nodes on one PostgreSQL database, side by side with one node, in one run:
#  1. latency: devices connected to node A, send_simple alerts at a fixed rate through
#     node A and through node B in turn (send → device, accept → device);
#  2. throughput: send_e2e accepted/s from two load generators, both against node A,
#     then one against each node.
# Needs a release build (cargo build --release --locked -p tocsin -p tocsin-load) and a
# PostgreSQL server (PG, trust auth). Usage: benches/cluster.sh [rate] [seconds] [rounds]
set -euo pipefail
cd "$(dirname "$0")/.."
T=$PWD/target/release/tocsin L=$PWD/target/release/tocsin-load
PG=${PG:-postgres://postgres@127.0.0.1:5432}
RATE=${1:-1000} SECS=${2:-10} ROUNDS=${3:-3}
DB=tocsin_bench_cluster
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT

export TOCSIN__STORAGE__URL=$PG/$DB TOCSIN__LOG__LEVEL=warn \
    TOCSIN__RATELIMIT__PER_IP_PER_SECOND=0 TOCSIN__RATELIMIT__PER_GATEWAY_PER_SECOND=0 \
    TOCSIN__SERVER__CONNECTIONS_PER_IP=0 TOCSIN__DIRECTORY__OPEN_ENROLLMENT=true \
    TOCSIN__DIRECTORY__IDENTITIES_PER_IP_PER_HOUR=0 \
    TOCSIN__STORAGE__DATA_KEY_FILE=$work/data.key TOCSIN__CHAT__SERVER_KEY_FILE=$work/server.key

fresh_database() {
    psql "$PG/postgres" -qc "DROP DATABASE IF EXISTS $DB" -qc "CREATE DATABASE $DB" >/dev/null
    TOCSIN__STORAGE__DATA_DIR=$work/a $T admin account create bench --credits 100000000 >/dev/null
    local out
    out=$(TOCSIN__STORAGE__DATA_DIR=$work/a $T admin gateway create --account bench --mode basic)
    BASIC_ID=$(sed -n 's/^created gateway ID \([^ ]*\) .*/\1/p' <<<"$out")
    BASIC_SECRET=$(sed -n 's/^secret: //p' <<<"$out")
    out=$(TOCSIN__STORAGE__DATA_DIR=$work/a $T admin gateway create --account bench --mode e2e)
    E2E_ID=$(sed -n 's/^created gateway ID \([^ ]*\) .*/\1/p' <<<"$out")
    E2E_SECRET=$(sed -n 's/^secret: //p' <<<"$out")
    TOCSIN__STORAGE__DATA_DIR=$work/a $T admin identity import ALICE123 \
        --public-key 8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a >/dev/null
}

node() { # name http-port metrics-port
    mkdir -p "$work/$1"
    TOCSIN__STORAGE__DATA_DIR=$work/$1 TOCSIN__SERVER__HTTP_ADDR=127.0.0.1:$2 \
        TOCSIN__SERVER__METRICS_ADDR=127.0.0.1:$3 $T serve >"$work/$1.log" 2>&1 &
    pids+=($!)
    for _ in $(seq 100); do curl -sf "http://127.0.0.1:$2/health" >/dev/null && return; sleep 0.1; done
    echo "node $1 did not start: $(cat "$work/$1.log")" >&2; exit 1
}

stop_nodes() { cleanup; pids=(); }

echo "== latency: devices on node A, $RATE alerts/s for $SECS s, through A and through B"
fresh_database
node a 18080 19101
node b 18081 19102
for round in $(seq "$ROUNDS"); do
    for via in 18080 18081; do
        echo "-- round $round, through $([ $via = 18080 ] && echo A || echo 'B (cross-node)')"
        TOCSIN_GATEWAY_ID=$BASIC_ID TOCSIN_SECRET=$BASIC_SECRET $L --scenario device-latency --url http://127.0.0.1:18080 \
            --send-url "http://127.0.0.1:$via" --rate "$RATE" --duration "$SECS" --devices 50 2>/dev/null
    done
done
stop_nodes

echo "== throughput: send_e2e, two load generators of 128 in flight each, $SECS s"
for round in $(seq "$ROUNDS"); do
    for layout in one two; do
        fresh_database
        node a 18080 19101
        second=18080
        if [ $layout = two ]; then node b 18081 19102; second=18081; fi
        loads=()
        for n in 1 2; do
            port=$([ $n = 1 ] && echo 18080 || echo $second)
            TOCSIN_GATEWAY_ID=$E2E_ID TOCSIN_SECRET=$E2E_SECRET $L --scenario send-e2e --url "http://127.0.0.1:$port" --to ALICE123 \
                --concurrency 128 --duration "$SECS" --no-ceiling >"$work/load-$n.txt" 2>/dev/null &
            loads+=($!)
        done
        wait "${loads[@]}"
        rates=$(awk '$1 == "accepted/s" {print $2}' "$work/load-1.txt" "$work/load-2.txt" | paste -sd' ')
        echo "-- round $round, $layout node(s): accepted/s per generator $rates, total $(awk '{print $1 + $2}' <<<"$rates")"
        stop_nodes
    done
done
