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
# their ratio for the floor and for `loadgen run --wire sse-h1`, the
# floor's `recv` calls per event (1.00: one event per read, as the load
# generator reads when it keeps up; fewer would flatter the floor) and the
# load generator's client CPU per event over the floor's. The
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
floor=$(loadgen/benches/bench_executable.sh floor_client)

# shellcheck source=feed_server.sh
. loadgen/benches/feed_server.sh
work=$(mktemp -d)
server=""
trap feed_server_stop EXIT
feed_server_start "$exe" --http 127.0.0.1:0 --no-tls --rate "$RATE"

echo "sse-h1, $CONNECTIONS connections x $RATE events/s, ${SECONDS_HELD}s counted; CPU per event, client / server"
for round in $(seq "$ROUNDS"); do
    "$floor" "$http" "$CONNECTIONS" "$SECONDS_HELD" "$server" >"$work/floor.json"
    python3 -c 'import json,sys
d = json.load(open(sys.argv[1]))
warn = "" if d["reads_per_event"] >= 0.98 else "  FELL BEHIND: several events per read"
print("round %s  floor    %6.2f / %6.2f us  ratio %.2f  (%d events, %.2f reads per event)%s" % (sys.argv[2],
      d["client_cpu_us_per_event"], d["server_cpu_us_per_event"], d["ratio"], d["events"],
      d["reads_per_event"], warn))' \
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
floor = json.load(open(sys.argv[3]))
w = d["scenarios"][0]["wires"][0]
server, loadgen = w.get("server") or {}, w.get("loadgen") or {}
s, l = server.get("cpu_us_per_event"), loadgen.get("cpu_us_per_event")
if not s or not l:
    sys.exit("round %s: the run has no CPU figures: %s" % (sys.argv[2], d.get("problems")))
print("round %s  loadgen  %6.2f / %6.2f us  ratio %.2f  (%d events%s); its client CPU per event %.2f x the floor'"'"'s" % (
      sys.argv[2], l, s, l / s, w["events_in_hold"],
      "" if d["complete"] and not w["lost"] else ", INCOMPLETE OR LOST",
      l / floor["client_cpu_us_per_event"]))' \
        "$work/run-$round/result.json" "$round" "$work/floor.json"
done
