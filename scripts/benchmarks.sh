#!/usr/bin/env bash
# Runs every benchmark and writes BENCHMARKS.md from their JSON output (nothing in it is typed
# by hand). Takes about 40 minutes on 2 cores (55+ with SLUICE_BENCH_1M=1): the crash rounds,
# a 10-minute soak and the long property run included (CRASH_ROUNDS, SOAK_MINUTES, FUZZ_CASES
# shorten them). Raw results stay in target/bench-results/.
#   scripts/benchmarks.sh            # all
#   SKIP_CRITERION=1 scripts/benchmarks.sh
#   SLUICE_BENCH_1M=1 scripts/benchmarks.sh   # adds HNSW at 1M vectors to the criterion run
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/fetch-models.sh
cargo build --release --quiet
out=target/bench-results
mkdir -p "$out"
cut -d' ' -f1-3 /proc/loadavg >"$out/machine.txt" 2>/dev/null || true
bin=target/release/sluice

echo "== bench load" >&2
$bin bench load --json >"$out/load.json"

echo "== bench failover" >&2
$bin bench failover --json >"$out/failover.json"

echo "== bench dashboard" >&2
$bin bench dashboard --json >"$out/dashboard.json"

echo "== bench cache: paraphrase" >&2
$bin bench cache --workload benches/workloads/paraphrase.jsonl --sweep 0.70:0.95:0.05 --json >"$out/cache-paraphrase.json"

echo "== bench cache: summarization" >&2
python3 scripts/build-summarization-workload.py >&2
$bin bench cache --workload benches/workloads/summarization.jsonl --threshold 0.80 --json >"$out/cache-summarization.json"

$bin bench cache --workload benches/workloads/dev-cache.jsonl --threshold 0.80 --json >"$out/cache-dev-cache.json"

echo "== bench cache: held-out (report only: never tuned on)" >&2
$bin bench cache --workload benches/workloads/heldout.jsonl --threshold 0.80 --json >"$out/cache-heldout.json"
$bin bench cache --workload benches/workloads/heldout2.jsonl --threshold 0.80 --json >"$out/cache-heldout2.json"
$bin bench cache --workload benches/workloads/heldout3.jsonl --threshold 0.80 --json >"$out/cache-heldout3.json"
$bin bench cache --workload benches/workloads/dev-docs.jsonl --threshold 0.80 --json >"$out/cache-dev-docs.json"
$bin bench cache --workload benches/workloads/dev-instr.jsonl --threshold 0.80 --json >"$out/cache-dev-instr.json"
$bin bench cache --workload benches/workloads/dev-struct.jsonl --threshold 0.80 --json >"$out/cache-dev-struct.json"
$bin bench cache --workload benches/workloads/dev-instr2.jsonl --threshold 0.80 --json >"$out/cache-dev-instr2.json"
$bin bench cache --workload benches/workloads/dev-docs2.jsonl --threshold 0.80 --json >"$out/cache-dev-docs2.json"

echo "== bench cache: traffic" >&2
$bin bench cache --workload benches/workloads/paraphrase.jsonl --traffic 6000 --json >"$out/traffic-agreement.json"
for p in 0 0.02 0.05; do
  $bin bench cache --workload benches/workloads/paraphrase.jsonl --traffic 6000 --judge-error "$p" --json >"$out/traffic-judge-$p.json"
done
$bin bench cache --workload benches/workloads/heldout.jsonl --traffic 6000 --json >"$out/traffic-heldout.json"

echo "== bench route (held-out routing.jsonl)" >&2
$bin bench route --workload benches/workloads/routing.jsonl >"$out/route.txt"
$bin bench route --workload benches/workloads/routing.jsonl --json >"$out/route.json"
for s in 7 1 2; do
  $bin bench route --workload benches/workloads/routing.jsonl --simulate --seed "$s" --json >"$out/route-sim-$s.json"
done

echo "== bench crash" >&2
$bin bench crash --rounds "${CRASH_ROUNDS:-100}" --json >"$out/crash.json"

echo "== bench soak" >&2
$bin bench soak --minutes "${SOAK_MINUTES:-10}" --json >"$out/soak.json"

echo "== property tests" >&2
# The test profile `cargo test` builds (no second release build of the test binary).
cases="${FUZZ_CASES:-10000}"
cargo test --quiet --test it --no-run
start=$(date +%s)
if PROPTEST_CASES="$cases" cargo test --test it fuzz:: -- --test-threads 1 >"$out/fuzz.txt" 2>&1; then result=clean; else result=FAILED; fi
props=$(grep '^test fuzz::.* ok$' "$out/fuzz.txt" | grep -vc stemming_never || true)
printf '{"cases": %s, "properties": %s, "seconds": %s, "result": "%s", "command": "PROPTEST_CASES=%s cargo test --test it fuzz:: -- --test-threads 1"}\n' \
  "$cases" "$props" "$(( $(date +%s) - start ))" "$result" "$cases" >"$out/fuzz.json"

echo "== adversarial prompt" >&2
SLUICE_RELEASE_BIN="$bin" cargo test --quiet --test it hardening::a_one_mib -- --nocapture >"$out/adversarial.txt" 2>&1

if [ -z "${SKIP_CRITERION:-}" ]; then
  echo "== criterion" >&2
  cargo bench --quiet -- --warm-up-time 1 --measurement-time 3 >"$out/criterion.txt" 2>&1
fi

python3 scripts/render-benchmarks.py "$out" >BENCHMARKS.md
echo "wrote BENCHMARKS.md" >&2
