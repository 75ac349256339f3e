#!/bin/bash
# The service as deployed: a real `rune serve` process (the built CLI) in a throw-away home on
# 127.0.0.1:18422, a 3 s warm-up, then ROUNDS (default 2) rounds of SECS (default 30) seconds of
# steady dry runs at 200 req/s from bench/lib/steady-load.mjs (a client process of its own,
# latencies from each request's scheduled time), and the server's RSS at the end (/proc).
# CLI=path/to/bin/rune.js measures another build; SERVER_EXTRA='key = value' adds a line to the
# [server] table (e.g. SERVER_EXTRA='heap_growth = "off"'). Never part of the tests.
set -e
HERE=$(cd "$(dirname "$0")" && pwd)
H=$(mktemp -d /tmp/p99-XXXX)
export HOME=$H XDG_CONFIG_HOME="$H"/config XDG_STATE_HOME="$H"/state XDG_DATA_HOME="$H"/data
mkdir -p "$H"/config/rune
printf '[server]\nlisten = "127.0.0.1:18422"\nrate_limit = 1000000\nqueue_size = 100000\n%s\n' "${SERVER_EXTRA:-}" > "$H"/config/rune/config.toml
CLI=${CLI:-$HERE/../apps/cli/bin/rune.js}
TOKEN=$(node "$CLI" token create --name bench --role operator --output json | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.parse(s).token))')
node "$CLI" serve > "$H"/serve.log 2>&1 &
SP=$!
for _ in $(seq 50); do curl -fs http://127.0.0.1:18422/livez >/dev/null && break; sleep 0.2; done
arg() { printf '{"url":"http://127.0.0.1:18422/v1/runs","headers":{"authorization":"Bearer %s","content-type":"application/json"},"body":{"action":"noop","targets":["localhost"],"options":{"dry_run":true}},"rate":200,"seconds":%s}' "$TOKEN" "$1"; }
node "$HERE/lib/steady-load.mjs" "$(arg 3)" > /dev/null
for _ in $(seq "${ROUNDS:-2}"); do
  node "$HERE/lib/steady-load.mjs" "$(arg "${SECS:-30}")" | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>{const r=JSON.parse(s);console.log(JSON.stringify({ok:r["2xx"],non2xx:r.non2xx,errors:r.errors,...r.fromSchedule}))})'
done
echo "rss=$(awk '/VmRSS/{print $2/1024}' /proc/"$SP"/status) load=$(cut -d' ' -f1 /proc/loadavg)"
kill -TERM "$SP"; wait "$SP" || true; rm -rf "$H"
