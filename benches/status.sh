#!/usr/bin/env bash
# Benchmark of `mup ctl status` on a live cluster of 10, 100 and 500 programs, beside
# `supervisorctl -c <tree>/supervisor.ini status` and the floor: one raw HTTP POST of
# supervisor.getAllProcessInfo with curl (the daemon's own cost). The three commands run
# alternately, RUNS times each (default 15); the medians are printed, mup's as a ratio to
# the floor.
#   usage: benches/status.sh [RUNS]     (needs curl, python3 and a supervisord: `mup setup`)
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-15}
cargo build --release --locked --quiet
mup=$PWD/target/release/mup
work=$(mktemp -d)
export MUP_HOME=$work/home
supervisord=${MUP_SUPERVISORD:-$("$mup" setup | sed 's/.* is at //')}
export MUP_SUPERVISORD=$supervisord
supervisorctl=$(dirname "$supervisord")/supervisorctl
cleanup() { for t in "$work"/tree-*; do [ -d "$t" ] && "$mup" ctl --dir "$t" down > /dev/null 2>&1 || true; done; rm -rf "$work"; }
trap cleanup EXIT

for n in 10 100 500; do
  tree=$work/tree-$n
  {
    echo "mongod_servers:"
    for ((i = 0; i < n; i++)); do echo "  - {host: 127.0.0.1, port: $((12000 + n + i))}"; done
  } > "$work/topology-$n.yaml"
  printf 'name: status%s\nversion: "7.0.14"\nbin_path: %s\n' "$n" "$PWD/fixtures/bin" > "$work/meta-$n.yaml"
  "$mup" gen "$work/topology-$n.yaml" --meta "$work/meta-$n.yaml" --out "$tree" > /dev/null
  "$mup" ctl --dir "$tree" up > /dev/null
  "$mup" ctl --dir "$tree" start > /dev/null
  port=$(sed -n 's/^supervisor_port: //p' "$tree/meta.yaml")
  user=$(sed -n 's/^supervisor_user: //p' "$tree/meta.yaml")
  pass=$(sed -n 's/^supervisor_password: //p' "$tree/meta.yaml")
  python3 - "$runs" "$n" \
    "$mup ctl --dir $tree status" \
    "$supervisorctl -c $tree/supervisor.ini status" \
    "curl -s -o /dev/null -u $user:$pass -H Content-Type:text/xml --data-binary @- http://127.0.0.1:$port/RPC2" <<'PY'
import statistics, subprocess, sys, time
runs, n, cmds = int(sys.argv[1]), sys.argv[2], sys.argv[3:]
body = b"<?xml version='1.0'?><methodCall><methodName>supervisor.getAllProcessInfo</methodName><params></params></methodCall>"
times = {c: [] for c in cmds}
for _ in range(runs):
    for c in cmds:
        t = time.perf_counter()
        subprocess.run(c.split(), input=body if c.startswith("curl") else None, stdout=subprocess.DEVNULL, check=False)
        times[c].append((time.perf_counter() - t) * 1000)
mup, ctl, curl = (statistics.median(times[c]) for c in cmds)
print(f"{n:>4} programs: mup ctl status {mup:6.1f} ms | supervisorctl status {ctl:6.1f} ms | curl floor {curl:5.1f} ms"
      f" | mup/floor {mup / curl:4.2f}x | supervisorctl/mup {ctl / mup:5.1f}x")
PY
  "$mup" ctl --dir "$tree" down > /dev/null
done
