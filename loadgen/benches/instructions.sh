#!/usr/bin/env bash
# Instructions per event on the per-event hot paths (see hot_paths.rs),
# counted by callgrind: a figure that does not drift with machine load, so
# a later change can be compared exactly.
#
#   [PAYLOAD_BYTES=N] loadgen/benches/instructions.sh [OUT.json]
#
# PAYLOAD_BYTES pads each event as `--payload-bytes` does (default 0, the
# feed's default: a tick's JSON is about 100 bytes); the reference figure
# is the default.
#
# Writes OUT.json (default results/reference/instructions.json) with the
# commit it measured, and prints each path's count beside the one OUT.json
# held before. Each path runs twice, with SMALL and LARGE events; the
# difference of the two totals divided by the difference of the counts is
# the cost of one event. Only the per-event loop is counted (building the
# frames a reader parses is not), and what is fixed in it (first
# allocations, growing the per-second series) cancels out.
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
out=${1:-$root/results/reference/instructions.json}
SMALL=${SMALL:-2000}
LARGE=${LARGE:-12000}
export PAYLOAD_BYTES=${PAYLOAD_BYTES:-0}
[[ $PAYLOAD_BYTES =~ ^[0-9]+$ ]] && ((10#$PAYLOAD_BYTES <= 1000000)) || {
    echo "PAYLOAD_BYTES must be a whole number of bytes from 0 to 1000000 (as --payload-bytes), not \"$PAYLOAD_BYTES\"" >&2
    exit 1
}
PAYLOAD_BYTES=$((10#$PAYLOAD_BYTES))
if ((PAYLOAD_BYTES != 0)) && [ -z "${1:-}" ]; then
    echo "the reference file holds the default payload's counts: give an OUT.json for PAYLOAD_BYTES=$PAYLOAD_BYTES" >&2
    exit 1
fi
paths=(server-sse server-ws loadgen-sse loadgen-sse-h1 loadgen-ws)

command -v valgrind >/dev/null || {
    echo "valgrind is missing (install: apt-get install -y valgrind)" >&2
    exit 1
}
cd "$root"
exe=$(loadgen/benches/bench_executable.sh hot_paths)

# Instructions inside the per-event loop (hot_paths.rs's `counted`) of one
# run, as callgrind's summary says.
count() {
    valgrind --tool=callgrind --callgrind-out-file=/dev/null \
        --toggle-collect='hot_paths::counted*' "$exe" "$1" "$2" 2>&1 >/dev/null |
        sed -n 's/.*Collected : \([0-9]*\).*/\1/p'
}

results=""
for p in "${paths[@]}"; do
    small=$(count "$p" "$SMALL")
    large=$(count "$p" "$LARGE")
    [ -n "$small" ] && [ -n "$large" ] || {
        echo "$p: callgrind gave no count" >&2
        exit 1
    }
    results+="$p $small $large"$'\n'
done

commit=$(git rev-parse HEAD)
dirty=$(git status --porcelain --untracked-files=no | grep -q . && echo true || echo false)
RESULTS="$results" python3 - "$out" "$commit" "$dirty" "$SMALL" "$LARGE" "$(valgrind --version)" "$(rustc --version)" "$PAYLOAD_BYTES" <<'PY'
import json, os, sys
out, commit, dirty, small, large, valgrind, rustc, payload = sys.argv[1:]
small, large, payload = int(small), int(large), int(payload)
previous = {}
if os.path.exists(out):
    with open(out) as f:
        old = json.load(f)
    if old.get("payload_bytes", 0) == payload:
        previous = {k: v["instructions_per_event"] for k, v in old.get("paths", {}).items()}
    else:
        print(f"(the figures {out} held were for {old.get('payload_bytes', 0)}-byte payloads: not compared)")
paths = {}
for line in os.environ["RESULTS"].split("\n"):
    if not line:
        continue
    name, a, b = line.split()
    per = (int(b) - int(a)) / (large - small)
    paths[name] = {"instructions_per_event": round(per, 1), "total_small": int(a), "total_large": int(b)}
doc = {
    "what": "instructions per event on each hot path (loadgen/benches/hot_paths.rs), callgrind inside its per-event loop, (total(large) - total(small)) / (large - small)",
    "commit": commit,
    "uncommitted_changes": dirty == "true",
    "events": {"small": small, "large": large},
    "payload_bytes": payload,
    "valgrind": valgrind,
    "rustc": rustc,
    "paths": paths,
}
os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
with open(out, "w") as f:
    json.dump(doc, f, indent=2)
    f.write("\n")
print(f"{'path':<15} {'instr/event':>12} {'before':>12} {'change':>8}")
for name, v in paths.items():
    now, was = v["instructions_per_event"], previous.get(name)
    change = f"{(now - was) / was * 100:+.1f} %" if was else "-"
    print(f"{name:<15} {now:>12.1f} {was if was is not None else '-':>12} {change:>8}")
print(f"written to {out} (commit {commit[:12]}{', with uncommitted changes' if dirty == 'true' else ''})")
PY
