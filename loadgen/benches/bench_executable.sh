#!/usr/bin/env bash
# Builds one of the load generator's benches (the bench profile) and prints
# the path of its executable; compile errors go to stderr.
#
#   loadgen/benches/bench_executable.sh NAME      (hot_paths, floor_client)
set -euo pipefail

name=${1:?usage: bench_executable.sh NAME}
cd "$(dirname "$0")/../.."
exe=$(cargo bench -p loadgen --bench "$name" --no-run --message-format=json-render-diagnostics |
    python3 -c 'import json,sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m["target"]["name"] == sys.argv[1] and m.get("executable"):
        print(m["executable"])' "$name")
[ -x "$exe" ] || {
    echo "could not build the $name bench (cargo bench -p loadgen --bench $name --no-run)" >&2
    exit 1
}
echo "$exe"
