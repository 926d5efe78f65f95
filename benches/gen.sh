#!/usr/bin/env bash
# Benchmark of `mup gen` on 1,000- and 10,000-node topologies (replica sets of 3), each figure
# printed as a ratio to its floor measured in the same run: `cp -r` of the tree gen produces
# (the cost of just writing that many files on the same file system). gen runs under
# `ulimit -n 256`. Per size, interleaved, RUNS times (default 5), medians:
#   - gen of a new tree                      vs cp -r of that tree
#   - gen --check of the unchanged tree      vs cp -r of that tree
# and the growth from 1,000 to 10,000 nodes (gen 10k / gen 1k; linear would be 10x).
# Every run writes into new directories and nothing is deleted until the end, and gen and cp
# take turns at going first (cp copies the previous run's identical tree): on ext4 without a
# journal, files made soon after many were deleted are slow to make (the inode allocator passes
# over the inodes freed in the last minutes, one by one), and whichever came first after a
# deletion paid for it alone (README, Benchmarks).
#   usage: [BENCH_DIR=/dev/shm] benches/gen.sh [RUNS]   (builds the release binary first;
#   BENCH_DIR picks the file system, default $TMPDIR or /tmp; tmpfs takes the disk out)
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-5}
cargo build --release --locked --quiet
mup=$PWD/target/release/mup
work=$(mktemp -d "${BENCH_DIR:-${TMPDIR:-/tmp}}/mup-bench.XXXXXX")
trap 'rm -rf "$work"' EXIT

now() { date +%s.%N; }
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
gen() { (ulimit -n 256 && MUP_HOME=$work/home exec "$mup" gen "$@" > /dev/null); }

echo "file system: $(df -T "$work" | awk 'NR==2 {print $2}') ($work); gen under ulimit -n 256; median of $runs"
printf '%-7s %10s %10s %8s %12s %8s\n' nodes "gen (s)" "cp -r (s)" "gen/cp" "--check (s)" "chk/cp"
declare -A gen_median
for n in 1000 10000; do
  topo=$work/topology-$n.yaml
  {
    echo "mongod_servers:"
    for ((i = 0; i < n; i++)); do
      echo "  - {host: localhost, port: $((20000 + i)), replica_set: rs$((i / 3))}"
    done
  } > "$topo"
  printf 'name: bench%s\nversion: "7.0.14"\nbin_path: /opt/mongodb/bin\nsupervisor_port: 9999\nsupervisor_password: bench\nhome: /home/bench\nuser: bench\n' "$n" > "$work/meta-$n.yaml"
  gen_times=() cp_times=() check_times=()
  for ((r = 0; r < runs; r++)); do
    tree=$work/tree-$n-$r copy=$work/copy-$n-$r
    sync
    if ((r % 2 == 0)); then
      t0=$(now); gen "$topo" --meta "$work/meta-$n.yaml" --out "$tree"; t1=$(now)
      cp -r "$tree" "$copy"; t2=$(now)
      gen_times+=("$(echo "$t1 - $t0" | bc -l)") cp_times+=("$(echo "$t2 - $t1" | bc -l)")
    else
      t0=$(now); cp -r "$work/tree-$n-$((r - 1))" "$copy"; t1=$(now)
      gen "$topo" --meta "$work/meta-$n.yaml" --out "$tree"; t2=$(now)
      cp_times+=("$(echo "$t1 - $t0" | bc -l)") gen_times+=("$(echo "$t2 - $t1" | bc -l)")
    fi
    t0=$(now); gen "$topo" --meta "$work/meta-$n.yaml" --out "$tree" --check; t1=$(now)
    check_times+=("$(echo "$t1 - $t0" | bc -l)")
  done
  g=$(printf '%s\n' "${gen_times[@]}" | median); c=$(printf '%s\n' "${cp_times[@]}" | median)
  k=$(printf '%s\n' "${check_times[@]}" | median)
  gen_median[$n]=$g
  printf '%-7s %10.3f %10.3f %7.2fx %12.3f %7.2fx\n' "$n" "$g" "$c" "$(echo "$g / $c" | bc -l)" \
    "$k" "$(echo "$k / $c" | bc -l)"
done
printf 'growth: gen 10000 / gen 1000 = %.1fx (linear: 10x)\n' "$(echo "${gen_median[10000]} / ${gen_median[1000]}" | bc -l)"
