#!/usr/bin/env bash
# Benchmark of `mup cluster start` and stop on the sharded shape (3 config servers, 2 shards of
# 3, 2 mongos = 11 processes), the stand-in told to take 1 s to boot and 0.5 s to elect.
#  - start floor (the cluster is already initiated; each set elects again after a restart):
#    config servers boot 1 + election 0.5, shards boot 1 + election 0.5, routers boot 1 = 4 s
#    (a start returns once the routers answer, without waiting out supervisord's startsecs;
#    the interpreter's start of each tier, ~0.2 s, is not in this computed floor: benches/init.sh
#    measures a wire floor instead);
#  - stop baseline: SIGINT sent to all 11 stand-ins directly, waiting until every pid is gone
#    (and, for reference, the same done tier by tier, the order mup must keep).
# Median of RUNS runs (default 5).
#   usage: benches/cluster.sh [RUNS]     (needs python3 and a supervisord: `mup setup`)
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-5}
cargo build --release --locked --quiet
mup=$PWD/target/release/mup
work=$(mktemp -d)
export MUP_HOME=$work/home
export MUP_SUPERVISORD=${MUP_SUPERVISORD:-$("$mup" setup | sed 's/.* is at //')}
trap '"$mup" cluster destroy bench --yes > /dev/null 2>&1 || true; rm -rf "$work"' EXIT

cat > "$work/topology.yaml" <<YAML
global:
  runtime_config:
    standin: {bootDelaySecs: 1, electionDelaySecs: 0.5}
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
"$mup" cluster deploy bench "$work/topology.yaml" --bin-path "$PWD/fixtures/bin" --yes > /dev/null
"$mup" cluster stop bench > /dev/null

python3 - "$runs" "$mup" <<'PY'
import json, os, signal, statistics, subprocess, sys, time
runs, mup = int(sys.argv[1]), sys.argv[2]
def run(*args):
    t = time.perf_counter()
    subprocess.run([mup, *args], check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - t
def pids(role=None):
    out = subprocess.run([mup, "cluster", "display", "bench", "--json"], capture_output=True, text=True).stdout
    return [n["pid"] for n in json.loads(out)["nodes"] if n["pid"] and role in (None, n["role"])]
def sigint_and_wait(ps):
    for p in ps:
        os.kill(p, signal.SIGINT)
    while any(alive(p) for p in ps):
        time.sleep(0.002)
def alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:  # gone (ENOENT, or ESRCH while it vanishes)
        return False
start, stop, cstop, base, tiered = [], [], [], [], []
for _ in range(runs):
    start.append(run("cluster", "start", "bench"))        # daemon up + ordered start
    stop.append(run("ctl", "--cluster", "bench", "stop"))  # ordered stop, daemon stays
    run("cluster", "start", "bench")
    ps = pids()
    t = time.perf_counter()                                # baseline: SIGINT all, wait
    sigint_and_wait(ps)
    base.append(time.perf_counter() - t)
    run("cluster", "start", "bench")
    tiers = [pids("mongos"), pids("mongod"), pids("config")]
    t = time.perf_counter()                                # the same, tier by tier
    for ps in tiers:
        sigint_and_wait(ps)
    tiered.append(time.perf_counter() - t)
    run("cluster", "start", "bench")
    cstop.append(run("cluster", "stop", "bench"))          # ordered stop + daemon shutdown
m = statistics.median
print(f"start: mup cluster start {m(start):.2f} s | floor 4.00 s | {m(start) / 4:.2f}x  (runs: {', '.join(f'{x:.2f}' for x in start)})")
print(f"stop:  mup ctl stop {m(stop) * 1000:.0f} ms | mup cluster stop (+ daemon exit) {m(cstop) * 1000:.0f} ms"
      f" | baseline SIGINT-all {m(base) * 1000:.0f} ms | ctl stop / baseline {m(stop) / m(base):.2f}x"
      f" | SIGINT tier by tier {m(tiered) * 1000:.0f} ms")
PY
