#!/usr/bin/env bash
# Benchmark of one scrape of the cluster's exporter (`GET /metrics` on 127.0.0.1:metrics_port)
# beside the floor: one getAllProcessInfo round trip to the same daemon (the call a scrape
# cannot do without). Live clusters of 10 and 100 stand-in nodes; both requests are made from
# one Python process over fresh loopback connections, alternately, RUNS times each (default
# 200); the medians are printed, the scrape as a ratio of the round trip measured in the same
# run. Goals: ≤ 1.5× at 10 programs, ≤ 1.3× at 100.
#   usage: benches/metrics.sh [RUNS]     (needs python3 and a supervisord: `mup setup`)
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-200}
cargo build --release --locked --quiet
mup=$PWD/target/release/mup
work=$(mktemp -d)
export MUP_HOME=$work/home
supervisord=${MUP_SUPERVISORD:-$("$mup" setup | sed 's/.* is at //')}
export MUP_SUPERVISORD=$supervisord
cleanup() { for t in "$work"/tree-*; do [ -d "$t" ] && "$mup" ctl --dir "$t" down > /dev/null 2>&1 || true; done; rm -rf "$work"; }
trap cleanup EXIT

for n in 10 100; do
  tree=$work/tree-$n
  {
    echo "mongod_servers:"
    for ((i = 0; i < n; i++)); do echo "  - {host: 127.0.0.1, port: $((21000 + n * 10 + i))}"; done
  } > "$work/topology-$n.yaml"
  printf 'name: metrics%s\nversion: "7.0.14"\nbin_path: %s\n' "$n" "$PWD/fixtures/bin" > "$work/meta-$n.yaml"
  "$mup" gen "$work/topology-$n.yaml" --meta "$work/meta-$n.yaml" --out "$tree" > /dev/null
  "$mup" ctl --dir "$tree" up > /dev/null
  "$mup" ctl --dir "$tree" start > /dev/null
  python3 - "$runs" "$n" "$tree/meta.yaml" <<'PY'
import base64, statistics, sys, time, urllib.request
runs, n, meta = int(sys.argv[1]), sys.argv[2], sys.argv[3]
m = dict(l.split(": ", 1) for l in open(meta).read().splitlines() if ": " in l and not l.startswith((" ", "-", "#")))
auth = base64.b64encode(f"{m['supervisor_user']}:{m['supervisor_password']}".encode()).decode()
body = b"<?xml version='1.0'?><methodCall><methodName>supervisor.getAllProcessInfo</methodName><params></params></methodCall>"
rpc = lambda: urllib.request.urlopen(urllib.request.Request(
    f"http://127.0.0.1:{m['supervisor_port']}/RPC2", data=body,
    headers={"Content-Type": "text/xml", "Authorization": f"Basic {auth}"})).read()
scrape = lambda: urllib.request.urlopen(f"http://127.0.0.1:{m['metrics_port']}/metrics").read()
assert b"node_supervisord_up" in scrape()
times = {"rpc": [], "scrape": []}
for _ in range(runs):
    for name, f in (("rpc", rpc), ("scrape", scrape)):
        t = time.perf_counter(); f(); times[name].append((time.perf_counter() - t) * 1000)
r, s = statistics.median(times["rpc"]), statistics.median(times["scrape"])
goal = 1.5 if int(n) <= 10 else 1.3
print(f"{n:>4} nodes (+2 monitoring): scrape {s:6.2f} ms | getAllProcessInfo {r:6.2f} ms | scrape/round trip {s / r:4.2f}x (goal <= {goal}x)")
PY
  "$mup" ctl --dir "$tree" down > /dev/null
done
