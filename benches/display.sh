#!/usr/bin/env bash
# Benchmark of `mup cluster display` on deployed clusters of 10, 100 and 500 nodes (replica
# sets of 3, initiated), as a ratio to its floor measured in the same run: `mup ctl status`
# of the same cluster (the daemon's view alone; display adds the servers' view, one
# replSetGetStatus per set). The two commands run alternately, RUNS times each (default 15);
# medians. Then the most threads one display ran at once (sampled from /proc/PID/task over
# 5 more runs).
#   usage: benches/display.sh [RUNS]     (needs python3 and a supervisord: `mup setup`)
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-15}
cargo build --release --locked --quiet
mup=$PWD/target/release/mup
work=$(mktemp -d)
export MUP_HOME=$work/home
export MUP_SUPERVISORD=${MUP_SUPERVISORD:-$("$mup" setup | sed 's/.* is at //')}
cleanup() { for n in 10 100 500; do "$mup" cluster destroy "display$n" --yes > /dev/null 2>&1 || true; done; rm -rf "$work"; }
trap cleanup EXIT

for n in 10 100 500; do
  {
    echo "mongod_servers:"
    for ((i = 0; i < n; i++)); do
      echo "  - {host: localhost, port: $((14000 + n + i)), replica_set: rs$((i / 3))}"
    done
  } > "$work/topology-$n.yaml"
  "$mup" cluster deploy "display$n" "$work/topology-$n.yaml" --bin-path "$PWD/fixtures/bin" --yes > /dev/null
  python3 - "$runs" "$n" "$mup" <<'PY'
import os, statistics, subprocess, sys, time
runs, n, mup = int(sys.argv[1]), sys.argv[2], sys.argv[3]
name = f"display{n}"
display = [mup, "cluster", "display", name]
status = [mup, "ctl", "--cluster", name, "status"]
times = {"display": [], "status": []}
for _ in range(runs):
    for key, cmd in (("display", display), ("status", status)):
        t = time.perf_counter()
        subprocess.run(cmd, stdout=subprocess.DEVNULL, check=True)
        times[key].append((time.perf_counter() - t) * 1000)
most = 0
for _ in range(5):
    p = subprocess.Popen(display, stdout=subprocess.DEVNULL)
    while p.poll() is None:
        try:
            most = max(most, len(os.listdir(f"/proc/{p.pid}/task")))
        except OSError:
            break
    p.wait()
d, s = statistics.median(times["display"]), statistics.median(times["status"])
print(f"{n:>4} nodes: mup cluster display {d:7.1f} ms | floor mup ctl status {s:6.1f} ms"
      f" | display/floor {d / s:4.2f}x | at most {most} threads")
PY
  "$mup" cluster destroy "display$n" --yes > /dev/null
done
