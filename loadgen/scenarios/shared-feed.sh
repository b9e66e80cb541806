#!/usr/bin/env bash
# Benchmark: several server processes (--reuse-port, one port) sharing one
# feed through one Redis, loaded by several load-generator processes (one
# per wire and shard, all holding over the same window with --start-at),
# then one server killed with SIGKILL mid-hold: its clients reconnect to
# the others and resume. Prints, per wire: connections, opened, lost,
# duplicates, reconnects, reconnect time p50/p99 (a stream's break to its
# resumed stream's response, the 1 s retry included), connect time and
# latency p99/max, from the merged results.
#
#   loadgen/scenarios/shared-feed.sh                 # 4 servers, 22,500 sse-h1 + 22,500 ws-h1, 60 s
#   CONNECTIONS=2000 HOLD=20 KILL_AFTER=10 loadgen/scenarios/shared-feed.sh   # a small check
#
# Environment: SERVERS (4), CONNECTIONS per wire (22500), SHARDS per wire
# (2: a process may hold at most 20,000 open files), HOLD seconds (60),
# KILL_AFTER seconds into the hold (30; 0: no kill), RATE (1), RAMP (new
# connections per second, all shards together: 4000), LEASE (the
# producer's lease, 1s), BIN (the
# folder with release `server` and `loadgen`: target/release), OUT.
# Everything it starts (redis-server on a free port with persistence off,
# the servers, the shards) is stopped when it ends, also on failure.
set -euo pipefail
cd "$(dirname "$0")/../.."

SERVERS=${SERVERS:-4}
CONNECTIONS=${CONNECTIONS:-22500}
SHARDS=${SHARDS:-2}
HOLD=${HOLD:-60}
KILL_AFTER=${KILL_AFTER:-30}
RATE=${RATE:-1}
RAMP=${RAMP:-4000}
LEASE=${LEASE:-1s}
BIN=${BIN:-target/release}
OUT=${OUT:-results/$(date -u +%Y%m%d-%H%M%S)-shared-feed}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)

pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

redis_port=$(free_port)
mkdir -p "$OUT/redis"
redis-server --bind 127.0.0.1 --port "$redis_port" --save '' --appendonly no --dir "$OUT/redis" \
  >"$OUT/redis/redis.log" 2>&1 &
pids+=($!)
until redis-cli -p "$redis_port" ping >/dev/null 2>&1; do sleep 0.1; done

port=$(free_port)
server_pids=()
for i in $(seq 1 "$SERVERS"); do
  "$BIN/server" --http "127.0.0.1:$port" --no-tls --reuse-port --rate "$RATE" \
    --feed-redis "redis://127.0.0.1:$redis_port/" --feed-key bench --feed-lease "$LEASE" \
    >/dev/null 2>"$OUT/server-$i.log" &
  pids+=($!); server_pids+=($!)
done
until curl -sf "http://127.0.0.1:$port/stats" | grep -q '"last_id_read":[1-9]'; do sleep 0.2; done

# Every shard opens its block at once (ramped), then holds from START.
start_epoch=$(( $(date +%s) + 20 + 2 * CONNECTIONS / RAMP * 2 ))
START=$(date -u -d "@$start_epoch" +%Y-%m-%dT%H:%M:%SZ)
echo "servers on 127.0.0.1:$port (pids ${server_pids[*]}), redis on $redis_port; hold from $START for ${HOLD}s"
# One index space for both wires (shards 0..SHARDS-1 run sse-h1, the
# next SHARDS run ws-h1, each a block of 2 x CONNECTIONS): connection
# indices pick 127.0.0.x source addresses, and one address reaches only
# about 28,000 ports of the servers' one port, so the wires must not reuse
# the same indices.
TOTAL_SHARDS=$((2 * SHARDS))
shard_pids=()
for k in $(seq 0 $((TOTAL_SHARDS - 1))); do
  if [ "$k" -lt "$SHARDS" ]; then wire=sse-h1; else wire=ws-h1; fi
  "$BIN/loadgen" run --target "http://127.0.0.1:$port" --wire "$wire" \
    --connections $((2 * CONNECTIONS)) --rate "$RATE" --duration "${HOLD}s" --ramp "$RAMP" \
    --shard "$k/$TOTAL_SHARDS" --start-at "$START" --name shared-feed --quiet \
    --out "$OUT/shard-$k-$wire" 2>"$OUT/shard-$k-$wire.log" &
  pids+=($!); shard_pids+=($!)
done

if [ "$KILL_AFTER" -gt 0 ]; then
  sleep $(( start_epoch + KILL_AFTER - $(date +%s) ))
  victim=${server_pids[0]}
  echo "$(date -u +%T) SIGKILL server pid $victim"
  kill -9 "$victim"
fi
status=0
for p in "${shard_pids[@]}"; do wait "$p" || status=1; done

for wire in sse-h1 ws-h1; do
  dirs=("$OUT"/shard-*-"$wire")
  if [ "${#dirs[@]}" -gt 1 ]; then
    "$BIN/loadgen" merge "${dirs[@]}" --out "$OUT/$wire" >/dev/null 2>&1
  else
    cp -r "${dirs[0]}" "$OUT/$wire"
  fi
  python3 - "$OUT/$wire/result.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
w = r["scenarios"][0]["wires"][0]
c, l = w["connect_us"], w["latency_us"]
rc = w.get("reconnect_us") or {"p50": 0, "p99": 0, "max": 0}
print(f'{w["wire"]}: connections {w["connections"]} opened {w["opened"]} lost {w["lost"]} '
      f'duplicates {w["duplicates"]} gaps {w["gap_events"]} reconnects {w["reconnects"]} '
      f'reconnect p50 {rc["p50"]/1000:.0f} ms p99 {rc["p99"]/1000:.0f} ms max {rc["max"]/1000:.0f} ms '
      f'connect p50 {c["p50"]/1000:.1f} ms p99 {c["p99"]/1000:.1f} ms '
      f'latency p99 {l["p99"]/1000:.1f} ms max {l["max"]/1000:.1f} ms; complete {r["complete"]}')
for p in r["problems"][:5]:
    print("  problem:", p)
PY
done
echo "results: $OUT"
exit $status
