#!/usr/bin/env bash
# Instructions the whole load-generator process spends per received event,
# wire by wire, counted by callgrind (or cachegrind, with CACHE=1): unlike
# CPU time on shared cores, the count does not move with what else runs,
# so two builds compare exactly.
#
#   loadgen/benches/process_instructions.sh [WIRE...]   (default: sse-h1 sse-h2 sse-h2c ws-h1)
#   LOADGEN=/tmp/loadgen-before loadgen/benches/process_instructions.sh sse-h1
#   CACHE=1 CONNECTIONS=150 RATE=15 loadgen/benches/process_instructions.sh sse-h1
#
# Unlike hot_paths.rs (parse + record only), this counts everything in user
# space: the runtime's wake-ups, hyper, h2, the WebSocket reader, TLS, the recorder,
# the stop signals. Not the kernel. A feed server (`loadgen serve`, outside
# valgrind) sends RATE events/s (default 5); `loadgen run` holds
# CONNECTIONS (default 100) under valgrind for SHORT and LONG seconds
# (default 4 and 16), and the
# difference of the two totals divided by the difference of the events
# received during the holds is the cost of one event: start-up, connecting
# and writing the result cancel out. Valgrind runs one thread at a time,
# so contention between threads (cache lines moving between cores) is not
# in the count. The rate is low on purpose: a load generator slowed down
# by valgrind that falls behind reads several events per wake-up, and the
# count per event then depends on how far behind it fell (at 20 events/s
# per connection two runs of one build differed by 20 %). Takes about a
# minute per wire. The median latency of the long run (its ramp included)
# is printed beside the count: near the time between a connection's
# events, or above it, the load generator fell behind.
#
# CACHE=1 runs cachegrind with its cache simulation instead, and adds the
# first-level data-cache misses per event (reads and writes): how many of
# the process's cache lines an event touches that are no longer in a
# 48 KiB first-level cache. With thousands of connections a task's lines
# are cold by the time its next event comes, so each line an event touches
# costs a fetch from a farther cache; instructions do not show that. Use
# more connections than fit in that cache and a rate at which a
# connection's batch holds several events (its events less than 100 ms
# apart), as in the example above: at 5 events/s every event hands its
# batch to the recorder, which is not the steady state. That example is
# 2,250 events/s in all (150 x 15), more than the 2,000 (100 x 20) at
# which callgrind fell behind above, yet cachegrind kept up there: three runs of one build gave 4,566-4,608
# instructions and 37.9-38.3 misses per event (sse-h1), and the median
# latency was 5.5-6 ms (4 ms at the default 100 x 5 under callgrind),
# with the events 67 ms apart. The simulated cache is valgrind's model of this machine's,
# shared by the process's threads; the kernel's copy of the data into the
# read buffer is not in it, so the buffer's lines may count as misses where
# a real cache holds them.
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
SHORT=${SHORT:-4}
LONG=${LONG:-16}
RATE=${RATE:-5}
CONNECTIONS=${CONNECTIONS:-100}
# Any value but empty or 0 turns the cache simulation on.
CACHE=${CACHE:-0}
[ "$CACHE" = 0 ] && CACHE=
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

if [ -n "$CACHE" ]; then
    tool=(--tool=cachegrind --cache-sim=yes --cachegrind-out-file=/dev/null)
else
    tool=(--tool=callgrind --callgrind-out-file=/dev/null)
fi
# Valgrind fixes the client's descriptor limit at the soft limit it
# starts with: raise it to the hard one for the connections.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

# Instructions, first-level data-cache misses (0 without CACHE), events in
# the hold and the median latency (ms) of one run of `hold` seconds.
count() {
    local wire=$1 hold=$2 out=$work/$1-$2
    valgrind "${tool[@]}" "$exe" run \
        --target "http://$http" --tls-target "https://$https" --ca-cert "$work/cert.pem" \
        --wire "$wire" --connections "$CONNECTIONS" --duration "${hold}s" --quiet --out "$out" \
        >"$out.log" 2>&1 || {
        echo "$wire: loadgen run under valgrind failed: its log follows" >&2
        cat "$out.log" >&2
        exit 1
    }
    python3 -c 'import json,re,sys
log = open(sys.argv[2]).read()
def total(label):
    m = re.search(label + r"\s*:\s*([\d,]+)", log)
    if not m:
        sys.exit("no %r in valgrind'"'"'s summary (%s)" % (label, sys.argv[2]))
    return int(m.group(1).replace(",", ""))
d = json.load(open(sys.argv[1]))
w = d["scenarios"][0]["wires"][0]
if not d["complete"] or w["lost"]:
    sys.exit("%s: the run was incomplete or lost events: %s" % (w["wire"], d["problems"]))
p50_ms = (w.get("latency_us") or {}).get("p50", 0) / 1000
if sys.argv[3]:
    print(total(r"I\s+refs"), total(r"D1\s+misses"), w["events_in_hold"], p50_ms)
else:
    print(total("Collected"), 0, w["events_in_hold"], p50_ms)' "$out/result.json" "$out.log" "$CACHE"
}

header="wire     instructions/event"
[ -n "$CACHE" ] && header="$header  D1 misses/event"
echo "$header  p50 latency  ($CONNECTIONS connections x $RATE events/s, ${SHORT}s and ${LONG}s holds, $exe)"
for wire in "${wires[@]}"; do
    read -r i1 m1 e1 _ < <(count "$wire" "$SHORT")
    read -r i2 m2 e2 p50 < <(count "$wire" "$LONG")
    python3 -c 'import sys
w, cache, p50 = sys.argv[1], sys.argv[2], float(sys.argv[3])
i1, m1, e1, i2, m2, e2 = map(int, sys.argv[4:])
line = f"{w:<8} {(i2 - i1) / (e2 - e1):>18,.0f}"
if cache:
    line += f"  {(m2 - m1) / (e2 - e1):>15.1f}"
print(f"{line}  {p50:>8.1f} ms")' "$wire" "$CACHE" "$p50" "$i1" "$m1" "$e1" "$i2" "$m2" "$e2"
done
