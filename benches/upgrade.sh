#!/usr/bin/env bash
# Benchmark of `mup cluster upgrade` 7.0.14 -> 8.0.4 on the sharded shape (3 config servers,
# 2 shards of 3, 2 mongos = 11 processes), the stand-in told to take 1 s to boot and 0.5 s to
# elect. Packages of both versions are made in $MUP_HOME/storage/packages (the stand-ins with
# MUP_STANDIN_VERSION set), so nothing is downloaded.
#  - floor: what no rolling upgrade can avoid, one node at a time: 11 boots of 1 s, and for
#    each of the 9 replica-set members the 0.5 s after its restart before it knows the primary
#    again (the stand-in's election delay, its model of heartbeats) = 15.5 s. The three
#    step-downs hand over to a caught-up secondary at once (the election handoff), so they add
#    no modelled time. The interpreter's start of each stand-in (~0.3 s) is not in this floor.
#  - goal: at most 1.2x the floor.
# Median of RUNS runs (default 3), each on a fresh deploy.
#   usage: benches/upgrade.sh [RUNS]     (needs python3 and a supervisord: `mup setup`)
#   MUP=path/to/mup benches/upgrade.sh   measures that binary instead of a release build
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-3}
if [ -z "${MUP:-}" ]; then
    cargo build --release --locked --quiet
    MUP=$PWD/target/release/mup
fi
mup=$MUP
work=$(mktemp -d)
export MUP_HOME=$work/home
export MUP_SUPERVISORD=${MUP_SUPERVISORD:-$("$mup" setup | sed 's/.* is at //')}
trap '"$mup" cluster destroy bench-upgrade --yes > /dev/null 2>&1 || true; rm -rf "$work"' EXIT

for v in 7.0.14 8.0.4; do
    mkdir -p "$MUP_HOME/storage/packages/$v/bin"
    for tool in mongod mongos; do
        printf '#!/bin/sh\nMUP_STANDIN_VERSION=%s exec %s "$@"\n' "$v" "$PWD/fixtures/bin/$tool" \
            > "$MUP_HOME/storage/packages/$v/bin/$tool"
        chmod 755 "$MUP_HOME/storage/packages/$v/bin/$tool"
    done
done

cat > "$work/topology.yaml" <<YAML
global:
  runtime_config:
    standin: {bootDelaySecs: 1, electionDelaySecs: 0.5}
config_servers:
  - {host: localhost, port: 23300, replica_set: cfg}
  - {host: localhost, port: 23301, replica_set: cfg}
  - {host: localhost, port: 23302, replica_set: cfg}
mongod_servers:
  - {host: localhost, port: 23310, replica_set: shard1}
  - {host: localhost, port: 23311, replica_set: shard1}
  - {host: localhost, port: 23312, replica_set: shard1}
  - {host: localhost, port: 23320, replica_set: shard2}
  - {host: localhost, port: 23321, replica_set: shard2}
  - {host: localhost, port: 23322, replica_set: shard2}
mongos_servers:
  - {host: localhost, port: 23330}
  - {host: localhost, port: 23331}
YAML

python3 - "$runs" "$mup" "$work/topology.yaml" <<'PY'
import statistics, subprocess, sys, time
runs, mup, topology = int(sys.argv[1]), sys.argv[2], sys.argv[3]
def run(*args):
    t = time.perf_counter()
    subprocess.run([mup, *args], check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - t
floor = 11 * 1.0 + 9 * 0.5
took = []
for _ in range(runs):
    run("cluster", "deploy", "bench-upgrade", topology, "--version", "7.0.14", "--yes")
    took.append(run("cluster", "upgrade", "bench-upgrade", "--version", "8.0.4", "--yes"))
    run("cluster", "destroy", "bench-upgrade", "--yes")
m = statistics.median(took)
print(f"upgrade: mup cluster upgrade {m:.2f} s | floor {floor:.2f} s | {m / floor:.2f}x"
      f"  (runs: {', '.join(f'{x:.2f}' for x in took)})")
PY
