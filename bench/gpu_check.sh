#!/usr/bin/env bash
# Everything a GPU machine can tell us about zfaccel, in one command and under 10 minutes, with no
# network: install, the GPU tests, the whole suite, compute-sanitizer on every CUDA and Triton
# kernel, the benchmarks and their bars. Every step's output goes to its own log, with its exit
# code and time; a failed or timed-out step is recorded and the next one runs. See docs/gpu.md.
#
# Usage: bench/gpu_check.sh [--dry-run] [--quick] [--out DIR] [--budget S] [--steps a,b,...] [--limit STEP=S]
#   --dry-run       print the steps, their time limits and commands; run and write nothing
#   --quick         zfaccel bench --quick (one case per suite) instead of the full benchmark
#   --out DIR       where the logs, summary.txt and the bench JSON go (default bench/results/gpu-<date>)
#   --budget S      the whole run's wall-time limit in seconds (default 570)
#   --steps a,b     only these steps, in this order; the steps: preflight install gpu-tests full-suite
#                   sanitize memcheck racecheck bench bars
#   --limit STEP=S  another time limit for one step (repeatable)
# Environment: PYTHON (default python3), the interpreter whose torch (CUDA) and Triton to use.
set -uo pipefail

cd "$(dirname "$0")/.." || exit 2

py=${PYTHON:-python3}
out="bench/results/gpu-$(date +%Y-%m-%d)"
dry_run=0
quick=0
total_budget=570
all_steps="preflight install gpu-tests full-suite sanitize memcheck racecheck bench bars"
steps=$all_steps

usage() { sed -n '7,16s/^# \{0,1\}//p' "$0"; }

# Each step's time limit in seconds. They sum to 540, under the default 570 s budget (with timeout's
# 5 s grace per step, 585 s: under 10 minutes). A step is also cut at the budget's end, and the bench,
# the last long step, takes whatever time the others left.
declare -A limit=(
  [preflight]=15 [install]=150 [gpu-tests]=75 [full-suite]=95
  [sanitize]=25 [memcheck]=45 [racecheck]=45 [bench]=85 [bars]=5
)

while (($#)); do
  case $1 in
    --dry-run) dry_run=1 ;;
    --quick) quick=1 ;;
    --out) out=${2:?--out needs a folder}; shift ;;
    --budget) total_budget=${2:?--budget needs seconds}; shift ;;
    --steps) steps=${2:?--steps needs a list}; steps=${steps//,/ }; shift ;;
    --limit)
      spec=${2:?--limit needs STEP=SECONDS}
      if [[ ! $spec =~ ^([a-z-]+)=([0-9]+)$ || -z ${limit[${BASH_REMATCH[1]}]:-} ]]; then
        echo "--limit takes STEP=SECONDS for a step of: $all_steps; got $spec" >&2
        exit 2
      fi
      limit[${BASH_REMATCH[1]}]=${BASH_REMATCH[2]}
      shift
      ;;
    -h | --help) usage; exit 0 ;;
    *) echo "unknown argument: $1" >&2; usage >&2; exit 2 ;;
  esac
  shift
done
if [[ ! $total_budget =~ ^[0-9]+$ ]]; then
  echo "--budget must be a number of seconds, got $total_budget" >&2
  exit 2
fi
for s in $steps; do
  if [[ " $all_steps " != *" $s "* ]]; then
    echo "unknown step $s; the steps are: $all_steps" >&2
    exit 2
  fi
done

q() { printf '%q' "$1"; }
sanitizer=$(command -v compute-sanitizer || true)
for candidate in "${CUDA_HOME:-/usr/local/cuda}/bin/compute-sanitizer" /usr/local/cuda/bin/compute-sanitizer; do
  [[ -z $sanitizer && -x $candidate ]] && sanitizer=$candidate
done
sanitizer=${sanitizer:-compute-sanitizer}
driver="$(q "$py") bench/gpu_sanitize.py --device cuda --require native triton --one-config"
sanitize_with() {  # the driver under one compute-sanitizer tool; its errors make the exit code 3
  echo "PYTORCH_NO_CUDA_MEMORY_CACHING=1 $(q "$sanitizer") --tool $1 --error-exitcode 3 --report-api-errors no" \
    "--launch-timeout 0 --print-limit 100 $driver"
}
bench_ops="max_pool2d_switches max_unpool2d_switches occlusion occlusion_batch deconvnet top_activations sweep"
bench_quick=""
((quick)) && bench_quick=" --quick"

declare -A command=(
  [preflight]="nvidia-smi; $(q "$py") -c 'import importlib.util as u, sys, torch; print(sys.version.split()[0], \
\"torch\", torch.__version__, \"cuda\", torch.version.cuda, torch.cuda.is_available() and torch.cuda.get_device_name()); \
[print(m, \"importable\" if u.find_spec(m) else \"MISSING\") for m in (\"triton\", \"numpy\", \"tqdm\", \"PIL\", \"zarr\", \
\"matplotlib\", \"pytest\", \"hypothesis\", \"pytest_benchmark\", \"captum\", \"scikit_build_core\", \"pybind11\")]'; \
nvcc --version | tail -n 2; cmake --version | head -n 1; $(q "$sanitizer") --version | tail -n 1; \
git log -1 --oneline; git status --short | head -n 20"
  [install]="CMAKE_BUILD_PARALLEL_LEVEL=\$(nproc) $(q "$py") -m pip install --no-build-isolation --no-deps --no-index -e . \
&& $(q "$py") -c 'import zfaccel; from zfaccel import native; e = native.extension(); \
print(\"zfaccel._native:\", e and (\"CUDA kernels\" if e.has_cuda else \"NO CUDA kernels\") or native.import_error()); \
print(\"backends on cuda:\", zfaccel.available_backends(\"cuda\"))'"
  [gpu-tests]="$(q "$py") -m pytest -m gpu -q -p no:cacheprovider --junitxml=$(q "$out/gpu-tests.xml")"
  [full-suite]="$(q "$py") -m pytest -x -q -p no:cacheprovider --junitxml=$(q "$out/full-suite.xml")"
  [sanitize]="$driver"
  [memcheck]="$(sanitize_with memcheck)"
  [racecheck]="$(sanitize_with racecheck)"
  [bench]="$(q "$py") -m zfaccel bench --device cuda$bench_quick --markdown --out $(q "$out") --ops $bench_ops"
  [bars]="$(q "$py") bench/gpu_bars.py $(q "$out")"
)

step_number() { # a step's place in the full list: its log's number, the same in every run
  local i=0 name
  for name in $all_steps; do
    i=$((i + 1))
    [[ $name == "$1" ]] && echo "$i"
  done
}

if ((dry_run)); then
  echo "bench/gpu_check.sh would write to $out/ (logs, summary.txt, the bench JSON), within $total_budget s:"
  n=0
  for s in $steps; do
    n=$((n + 1))
    printf '%d. %s (limit %d s): %s\n' "$n" "$s" "${limit[$s]}" "${command[$s]}"
  done
  exit 0
fi

mkdir -p "$out" || exit 2
# The GPU runs Triton compiled, never interpreted; "auto" means auto.
unset TRITON_INTERPRET ZFACCEL_BACKEND
export PYTHONUNBUFFERED=1
summary=$out/summary.txt
start=$SECONDS
deadline=$((start + total_budget))
failed=0
earlier=0 # lines of earlier runs in the summary
if [[ -f $summary ]]; then
  echo >>"$summary"
  earlier=$(wc -l <"$summary")
fi
{
  echo "bench/gpu_check.sh $(date -Iseconds) on $(hostname), budget ${total_budget} s, commit $(git rev-parse --short HEAD 2>/dev/null)"
  echo "steps: $steps${bench_quick:+ (bench$bench_quick)}"
  printf '%-11s %-8s %-6s %-14s %s\n' step result exit "seconds/limit" log
} >>"$summary" # appended: a rerun of some steps into the same folder keeps the earlier runs' lines

for s in $steps; do
  n=$(step_number "$s")
  log=$(printf '%s/%02d-%s.log' "$out" "$n" "$s")
  left=$((deadline - SECONDS))
  t=${limit[$s]}
  [[ $s == bench ]] && ((left - 10 > t)) && t=$((left - 10)) # the bench takes the time left, less the bars'
  ((t > left)) && t=$left
  if ((left < 5)); then
    printf '%-11s %-8s %-6s %-14s %s\n' "$s" SKIPPED - "0/0" "(the ${total_budget} s budget is spent)" >>"$summary"
    failed=1
    continue
  fi
  echo "== $n. $s (limit $t s): ${command[$s]}"
  {
    echo "# step: $s"
    echo "# command: ${command[$s]}"
    echo "# started: $(date -Iseconds), limit ${t} s"
  } >"$log"
  step_start=$SECONDS
  timeout -k 5 "$t" bash -c "${command[$s]}" >>"$log" 2>&1
  rc=$?
  took=$((SECONDS - step_start))
  case $rc in
    0) result=PASS ;;
    124 | 137) result=TIMEOUT ;;
    *) result=FAIL ;;
  esac
  [[ $result == PASS ]] || failed=1
  echo "# exit code: $rc ($result) after ${took} s" >>"$log"
  printf '%-11s %-8s %-6s %-14s %s\n' "$s" "$result" "$rc" "$took/$t" "$(basename "$log")" >>"$summary"
  echo "   $result (exit $rc, $took s) -> $log"
done

{
  echo "total: $((SECONDS - start)) s of $total_budget; logs, JSON and summary in $out/"
  bars_log=$(compgen -G "$out/*-bars.log" | head -n 1)
  if [[ -n $bars_log ]]; then
    echo
    echo "bars (from $(basename "$bars_log")):"
    grep -v '^#' "$bars_log"
  fi
} >>"$summary"
echo
tail -n "+$((earlier + 1))" "$summary"
exit "$failed"
