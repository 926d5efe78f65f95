#!/usr/bin/env bash
# Benchmark of `mup cluster deploy` to a *ready* sharded cluster (3 config servers, 2 shards of 3,
# 2 mongos: every set initiated with a primary, both shards added), the stand-in told to take
# 1 s to boot and 1 s to elect a primary.
#  - floor: per tier, what mup must wait for: config servers boot 1 + election 1, shards boot 1
#    + election 1, then the routers' startsecs (5 s, supervisord's RUNNING) = 9 s;
#  - the Go mup's fixed waits, computed for the same timings: 2 s polls for the ports (boot 1 s
#    is seen at 2 s), 2 s polls for a primary (an election of 1 s is seen at 2 s), a fixed 5 s
#    sleep before starting mongos, 2 s polls for the mongos port = 2 + 2 + 5 + 2 = 11 s (it has
#    no supervisord startsecs to wait for).
# Median of RUNS deploys (default 3), each followed by a destroy.
#   usage: benches/init.sh [RUNS]     (needs python3 and a supervisord: `mup setup`)
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-3}
cargo build --release --locked --quiet
mup=$PWD/target/release/mup
work=$(mktemp -d)
export MUP_HOME=$work/home
export MUP_SUPERVISORD=${MUP_SUPERVISORD:-$("$mup" setup | sed 's/.* is at //')}
trap '"$mup" cluster destroy initbench --yes > /dev/null 2>&1 || true; rm -rf "$work"' EXIT

cat > "$work/topology.yaml" <<YAML
global:
  runtime_config:
    standin: {bootDelaySecs: 1, electionDelaySecs: 1}
config_servers:
  - {host: localhost, port: 23100, replica_set: cfg}
  - {host: localhost, port: 23101, replica_set: cfg}
  - {host: localhost, port: 23102, replica_set: cfg}
mongod_servers:
  - {host: localhost, port: 23000, replica_set: shard1}
  - {host: localhost, port: 23001, replica_set: shard1}
  - {host: localhost, port: 23002, replica_set: shard1}
  - {host: localhost, port: 23010, replica_set: shard2}
  - {host: localhost, port: 23011, replica_set: shard2}
  - {host: localhost, port: 23012, replica_set: shard2}
mongos_servers:
  - {host: localhost, port: 23200}
  - {host: localhost, port: 23201}
YAML

python3 - "$runs" "$mup" "$work/topology.yaml" "$PWD/fixtures/bin" <<'PY'
import statistics, subprocess, sys, time
runs, mup, topo, bins = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
times = []
for _ in range(runs):
    t = time.perf_counter()
    subprocess.run([mup, "cluster", "deploy", "initbench", topo, "--bin-path", bins, "--yes"],
                   check=True, stdout=subprocess.DEVNULL)
    times.append(time.perf_counter() - t)
    subprocess.run([mup, "cluster", "destroy", "initbench", "--yes"], check=True,
                   stdout=subprocess.DEVNULL)
m = statistics.median(times)
print(f"deploy to ready: mup {m:.2f} s | floor 9.00 s | {m / 9:.2f}x | Go mup's fixed waits 11.00 s"
      f"  (runs: {', '.join(f'{x:.2f}' for x in times)})")
PY
