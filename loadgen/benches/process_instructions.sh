#!/usr/bin/env bash
# Instructions the whole load-generator process spends per received event,
# wire by wire, counted by callgrind: unlike CPU time on shared cores, the
# count does not move with what else runs, so two builds compare exactly.
#
#   loadgen/benches/process_instructions.sh [WIRE...]   (default: sse-h1 sse-h2 sse-h2c ws-h1)
#   LOADGEN=/tmp/loadgen-before loadgen/benches/process_instructions.sh sse-h1
#
# Unlike hot_paths.rs (parse + record only), this counts everything in user
# space: the runtime's wake-ups, hyper, h2, the WebSocket reader, TLS, the recorder,
# the stop signals. Not the kernel. A feed server (`loadgen serve`, outside
# valgrind) sends RATE events/s (default 5); `loadgen run` holds 100
# connections under callgrind for SHORT and LONG seconds (default 4 and 16), and the
# difference of the two totals divided by the difference of the events
# received during the holds is the cost of one event: start-up, connecting
# and writing the result cancel out. Valgrind runs one thread at a time,
# so contention between threads (cache lines moving between cores) is not
# in the count. The rate is low on purpose: a load generator slowed down
# by valgrind that falls behind reads several events per wake-up, and the
# count per event then depends on how far behind it fell (at 20 events/s
# per connection two runs of one build differed by 20 %). Takes about a
# minute per wire.
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
SHORT=${SHORT:-4}
LONG=${LONG:-16}
RATE=${RATE:-5}
wires=("$@")
[ ${#wires[@]} -gt 0 ] || wires=(sse-h1 sse-h2 sse-h2c ws-h1)

command -v valgrind >/dev/null || {
    echo "valgrind is missing (install: apt-get install -y valgrind)" >&2
    exit 1
}
cd "$root"
# LOADGEN=/path/to/loadgen measures another build (say, one of the commit
# before a change, copied aside) instead of building this tree's.
if [ -n "${LOADGEN:-}" ]; then
    exe=$LOADGEN
else
    cargo build --release -p loadgen >&2
    exe=$root/target/release/loadgen
fi
# shellcheck source=feed_server.sh
. loadgen/benches/feed_server.sh
work=$(mktemp -d)
server=""
trap feed_server_stop EXIT
feed_server_start "$exe" --http 127.0.0.1:0 --https 127.0.0.1:0 \
    --cert-out "$work/cert.pem" --rate "$RATE"

# Instructions and events in the hold of one run of `hold` seconds.
count() {
    local wire=$1 hold=$2 out=$work/$1-$2
    valgrind --tool=callgrind --callgrind-out-file=/dev/null "$exe" run \
        --target "http://$http" --tls-target "https://$https" --ca-cert "$work/cert.pem" \
        --wire "$wire" --connections 100 --duration "${hold}s" --quiet --out "$out" \
        >"$out.log" 2>&1
    local instructions
    instructions=$(sed -n 's/.*Collected : \([0-9]*\).*/\1/p' "$out.log")
    python3 -c 'import json,sys
d = json.load(open(sys.argv[1]))
w = d["scenarios"][0]["wires"][0]
if not d["complete"] or w["lost"]:
    sys.exit("%s: the run was incomplete or lost events: %s" % (w["wire"], d["problems"]))
print(sys.argv[2], w["events_in_hold"])' "$out/result.json" "$instructions"
}

echo "wire     instructions/event  (100 connections x $RATE events/s, ${SHORT}s and ${LONG}s holds, $exe)"
for wire in "${wires[@]}"; do
    read -r i1 e1 < <(count "$wire" "$SHORT")
    read -r i2 e2 < <(count "$wire" "$LONG")
    python3 -c 'import sys
w, i1, e1, i2, e2 = sys.argv[1], *map(int, sys.argv[2:])
print(f"{w:<8} {(i2 - i1) / (e2 - e1):>18,.0f}")' "$wire" "$i1" "$e1" "$i2" "$e2"
done
