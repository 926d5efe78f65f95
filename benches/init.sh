#!/usr/bin/env bash
# Benchmark of `mup cluster deploy` to a *ready* sharded cluster (3 config servers, 2 shards of 3,
# 2 mongos: every set initiated with a primary, both shards added), the stand-in told to take
# 1 s to boot and 1 s to elect a primary, against the wire floor measured in the same run.
#  - wire floor: the same 11 stand-ins (config files from `mup gen` of the same topology)
#    started directly, without supervisord, by a script that does only what the wire requires,
#    polling every 10 ms: config servers started, each answers hello, replSetInitiate, a
#    primary; then the shard members the same way (both sets at once); then the routers (a
#    mongos listens only once its config set has a primary), each answers hello, addShard ×2.
#    The tiers cannot overlap, so this is what any tool must wait for (≈ 2 × (boot + election)
#    + a router's boot, plus the interpreter's start of each tier).
#  - mup: `mup cluster deploy` of that topology (gen, supervisord up, the ordered start with
#    initiation), timed until the command returns; then `mup cluster destroy`.
# The two alternate, RUNS times each (default 3); medians, and mup / floor.
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

# Ports below the test range (20000–29999) and the kernel's ephemeral range.
cat > "$work/topology.yaml" <<YAML
global:
  runtime_config:
    standin: {bootDelaySecs: 1, electionDelaySecs: 1}
config_servers:
  - {host: localhost, port: 18100, replica_set: cfg}
  - {host: localhost, port: 18101, replica_set: cfg}
  - {host: localhost, port: 18102, replica_set: cfg}
mongod_servers:
  - {host: localhost, port: 18000, replica_set: shard1}
  - {host: localhost, port: 18001, replica_set: shard1}
  - {host: localhost, port: 18002, replica_set: shard1}
  - {host: localhost, port: 18010, replica_set: shard2}
  - {host: localhost, port: 18011, replica_set: shard2}
  - {host: localhost, port: 18012, replica_set: shard2}
mongos_servers:
  - {host: localhost, port: 18200}
  - {host: localhost, port: 18201}
YAML
# The floor's config files: the same topology compiled by `mup gen` (never run by a daemon).
printf 'name: floor\nversion: "7.0.14"\nbin_path: %s\n' "$PWD/fixtures/bin" > "$work/meta.yaml"
"$mup" gen "$work/topology.yaml" --meta "$work/meta.yaml" --out "$work/floor" > /dev/null

python3 - "$runs" "$mup" "$work" "$PWD/fixtures" <<'PY'
import os, shutil, signal, statistics, subprocess, sys, time
runs, mup, work, fixtures = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
sys.path.insert(0, os.path.join(fixtures, "standin"))
import wire  # the stand-in's own wire-protocol client: OP_MSG over a plain socket

CFG, SHARDS, ROUTERS = [18100, 18101, 18102], {"shard1": [18000, 18001, 18002], "shard2": [18010, 18011, 18012]}, [18200, 18201]
floor_dir = os.path.join(work, "floor")

def ask(port, cmd):
    return wire.command(f"localhost:{port}", cmd, timeout=0.5)

def wait(check, limit=60):
    start = time.perf_counter()
    while not check():
        if time.perf_counter() - start > limit:
            raise RuntimeError(f"floor: not there after {limit} s (see the stand-ins' exit codes)")
        time.sleep(0.01)

def answers(port):
    try:
        ask(port, {"hello": 1})
        return True
    except (OSError, ValueError):
        return False

def primary(ports, name):
    for p in ports:
        try:
            r = ask(p, {"hello": 1})
        except (OSError, ValueError):
            continue
        if r.get("setName") == name and r.get("isWritablePrimary"):
            return True
    return False

def spawn(ports, binary, conf_name, procs):
    for p in ports:
        conf = os.path.join(floor_dir, "conf", f"localhost-{p}", conf_name)
        procs.append(subprocess.Popen([os.path.join(fixtures, "bin", binary), "--config", conf],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
                                      start_new_session=True))

def initiate(name, ports, configsvr=False):
    config = {"_id": name, "members": [{"_id": i, "host": f"localhost:{p}"} for i, p in enumerate(ports)]}
    if configsvr:
        config["configsvr"] = True
    ask(ports[0], {"replSetInitiate": config})

def floor_once():
    for d in os.listdir(os.path.join(floor_dir, "data")):  # fresh, uninitiated data
        path = os.path.join(floor_dir, "data", d)
        shutil.rmtree(path)
        os.mkdir(path, 0o700)
    procs = []
    t = time.perf_counter()
    try:
        spawn(CFG, "mongod", "config-server.conf", procs)
        wait(lambda: all(answers(p) for p in CFG))
        initiate("cfg", CFG, configsvr=True)
        wait(lambda: primary(CFG, "cfg"))
        spawn([p for ps in SHARDS.values() for p in ps], "mongod", "mongod.conf", procs)
        wait(lambda: all(answers(p) for ps in SHARDS.values() for p in ps))
        for name, ports in SHARDS.items():
            initiate(name, ports)
        wait(lambda: all(primary(ports, name) for name, ports in SHARDS.items()))
        spawn(ROUTERS, "mongos", "mongos.conf", procs)
        wait(lambda: all(answers(p) for p in ROUTERS))
        for name, ports in SHARDS.items():
            ask(ROUTERS[0], {"addShard": f"{name}/" + ",".join(f"localhost:{p}" for p in ports), "name": name})
        return time.perf_counter() - t
    finally:
        for p in procs:
            p.send_signal(signal.SIGINT)
        for p in procs:
            p.wait(timeout=30)

def mup_once():
    t = time.perf_counter()
    subprocess.run([mup, "cluster", "deploy", "initbench", os.path.join(work, "topology.yaml"),
                    "--bin-path", os.path.join(fixtures, "bin"), "--yes"], check=True, stdout=subprocess.DEVNULL)
    took = time.perf_counter() - t
    subprocess.run([mup, "cluster", "destroy", "initbench", "--yes"], check=True, stdout=subprocess.DEVNULL)
    return took

floors, mups = [], []
for _ in range(runs):
    floors.append(floor_once())
    mups.append(mup_once())
f, m = statistics.median(floors), statistics.median(mups)
fmt = lambda xs: ", ".join(f"{x:.2f}" for x in xs)
print(f"deploy to ready: mup {m:.2f} s | wire floor {f:.2f} s | mup / floor {m / f:.2f}x"
      f"  (mup runs: {fmt(mups)}; floor runs: {fmt(floors)})")
PY
