#!/usr/bin/env bash
# Benchmark of `mup gen` on 1,000- and 10,000-node topologies, beside `cp -r` of the tree it
# produced (the cost of just writing that many files). Median of RUNS runs each.
#   usage: [BENCH_DIR=/dev/shm] benches/gen.sh [RUNS]   (builds the release binary first;
#   BENCH_DIR picks the file system, e.g. tmpfs to take the disk out of the figures)
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-5}
cargo build --release --locked --quiet
mup=$PWD/target/release/mup
work=$(mktemp -d "${BENCH_DIR:-${TMPDIR:-/tmp}}/mup-bench.XXXXXX")
trap 'rm -rf "$work"' EXIT

now() { date +%s.%N; }
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

printf '%-7s %12s %12s %8s\n' nodes "gen (s)" "cp -r (s)" ratio
for n in 1000 10000; do
  topo=$work/topology-$n.yaml
  {
    echo "mongod_servers:"
    for ((i = 0; i < n; i++)); do
      echo "  - {host: localhost, port: $((20000 + i)), replica_set: rs$((i / 3))}"
    done
  } > "$topo"
  printf 'name: bench%s\nversion: "7.0.14"\nbin_path: /opt/mongodb/bin\nsupervisor_port: 9999\nsupervisor_password: bench\nhome: /home/bench\nuser: bench\n' "$n" > "$work/meta-$n.yaml"
  gen_times=() cp_times=()
  for ((r = 0; r < runs; r++)); do
    rm -rf "$work/tree" "$work/copy"
    t0=$(now); MUP_HOME=$work/home "$mup" gen "$topo" --meta "$work/meta-$n.yaml" --out "$work/tree" > /dev/null; t1=$(now)
    cp -r "$work/tree" "$work/copy"; t2=$(now)
    gen_times+=("$(echo "$t1 - $t0" | bc -l)") cp_times+=("$(echo "$t2 - $t1" | bc -l)")
  done
  g=$(printf '%s\n' "${gen_times[@]}" | median); c=$(printf '%s\n' "${cp_times[@]}" | median)
  printf '%-7s %12.3f %12.3f %7.2fx\n' "$n" "$g" "$c" "$(echo "$g / $c" | bc -l)"
done
