# Sourced by the bench scripts beside it: one feed server (`loadgen serve`)
# for the script's life, its files in the script's work directory.
#
#   work=$(mktemp -d); server=""; trap feed_server_stop EXIT
#   feed_server_start EXE [SERVE FLAGS...]   # sets $server, $http, $https
#
# The server stops when its stdin closes: a pipe the script holds open
# (descriptor 4) until `feed_server_stop`, which also kills it should it
# linger, and removes the work directory, also on failure.

feed_server_start() {
    local exe=$1
    shift
    mkfifo "$work/stdin"
    "$exe" serve "$@" <"$work/stdin" >"$work/server.json" 2>"$work/server.log" &
    server=$!
    exec 4>"$work/stdin"
    for _ in $(seq 100); do
        [ -s "$work/server.json" ] && break
        kill -0 "$server" 2>/dev/null || break
        sleep 0.1
    done
    [ -s "$work/server.json" ] || {
        echo "the feed server did not start: its log follows" >&2
        cat "$work/server.log" >&2
        exit 1
    }
    read -r http https < <(python3 -c 'import json,sys
d = json.loads(open(sys.argv[1]).readline())
print(d["http_addr"], d.get("https_addr") or "")' "$work/server.json")
}

feed_server_stop() {
    exec 4>&- || true
    [ -n "$server" ] && kill "$server" 2>/dev/null || true
    wait 2>/dev/null || true
    rm -rf "$work"
}
