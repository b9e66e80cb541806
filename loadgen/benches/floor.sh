#!/usr/bin/env bash
# The load generator's CPU per event on sse-h1 beside a floor: a reader that
# does the least one recv per event allows (floor_client.rs beside this
# file: epoll, one recv, a scan for the event's end; no parsing, no clock,
# no recording, no task runtime). Both read one feed server in turn, so the
# ratios compare on one machine in one run.
#
#   loadgen/benches/floor.sh [CONNECTIONS RATE SECONDS ROUNDS]   (default: 1000 100 10 2)
#
# Prints, for each round, client CPU per event, server CPU per event and
# their ratio for the floor and for `loadgen run --wire sse-h1`. The
# server is `loadgen serve` (HTTP/1.1 on loopback, no TLS), started here
# and stopped at the end, also on failure. CPU time on shared cores is
# noisy: compare the two readers within a round, and run it on a quiet
# machine.
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
CONNECTIONS=${1:-1000}
RATE=${2:-100}
SECONDS_HELD=${3:-10}
ROUNDS=${4:-2}
cd "$root"
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
cargo build --release -p loadgen >&2
exe=$root/target/release/loadgen
floor=$(cargo bench -p loadgen --bench floor_client --no-run --message-format=json 2>/dev/null |
    python3 -c 'import json,sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m["target"]["name"] == "floor_client" and m.get("executable"):
        print(m["executable"])')
[ -x "$floor" ] || {
    echo "could not build the floor client (cargo bench -p loadgen --bench floor_client --no-run)" >&2
    exit 1
}

work=$(mktemp -d)
server=""
cleanup() {
    exec 4>&- 2>/dev/null || true
    [ -n "$server" ] && kill "$server" 2>/dev/null || true
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

# The server stops when its stdin closes: a pipe this script holds open.
mkfifo "$work/stdin"
"$exe" serve --http 127.0.0.1:0 --no-tls --rate "$RATE" \
    <"$work/stdin" >"$work/server.json" 2>"$work/server.log" &
server=$!
exec 4>"$work/stdin"
for _ in $(seq 100); do
    [ -s "$work/server.json" ] && break
    sleep 0.1
done
http=$(python3 -c 'import json,sys
print(json.loads(open(sys.argv[1]).readline())["http_addr"])' "$work/server.json")

echo "sse-h1, $CONNECTIONS connections x $RATE events/s, ${SECONDS_HELD}s counted; CPU per event, client / server"
for round in $(seq "$ROUNDS"); do
    "$floor" "$http" "$CONNECTIONS" "$SECONDS_HELD" "$server" >"$work/floor.json"
    python3 -c 'import json,sys
d = json.load(open(sys.argv[1]))
print("round %s  floor    %6.2f / %6.2f us  ratio %.2f  (%d events)" % (sys.argv[2],
      d["client_cpu_us_per_event"], d["server_cpu_us_per_event"], d["ratio"], d["events"]))' \
        "$work/floor.json" "$round"
    "$exe" run --target "http://$http" --wire sse-h1 \
        --connections "$CONNECTIONS" --duration "${SECONDS_HELD}s" --quiet \
        --out "$work/run-$round" >"$work/run-$round.log" 2>&1 || {
        echo "loadgen run failed: see below" >&2
        cat "$work/run-$round.log" >&2
        exit 1
    }
    python3 -c 'import json,sys
d = json.load(open(sys.argv[1]))
w = d["scenarios"][0]["wires"][0]
s, l = w["server"]["cpu_us_per_event"], w["loadgen"]["cpu_us_per_event"]
print("round %s  loadgen  %6.2f / %6.2f us  ratio %.2f  (%d events%s)" % (sys.argv[2], l, s, l / s,
      w["events_in_hold"], "" if d["complete"] and not w["lost"] else ", INCOMPLETE OR LOST"))' \
        "$work/run-$round/result.json" "$round"
done
