#!/usr/bin/env bash
# The one script to run on a lent GPU machine: builds the official S4 CUDA extension, runs the
# GPU tests, then every benchmark at full GPU shapes, each step under its own timeout (capped by
# what is left of BUDGET_S, so the whole run ends in time), and writes under "$OUT":
#   summary.json            per step: exit status (124: timed out), seconds, limit; the device
#   layer_scaling.{jsonl,md}  table3.{jsonl,md}  table2.{jsonl,md}
#   gpu_session.tar.gz      everything: the files above, each step's log, table3's report runs
# (the runner returns at most 8 files, hence the archive).
#
# Here, once (needs pip's network access; puts the carried folders in .git/info/exclude):
#   bash benchmarks/gpu_session.sh prepare
#     .whl/          wheels of hydra-core, omegaconf, antlr4, the versions of this .venv (the
#                    image lacks them; table3 composes configs; the GPU tests run without
#                    conftest.py where its imports, wandb among them, are missing)
#     .official-s4/  a copy of ../shared/anchor/official-s4 (../shared does not travel)
# Then through the runner: command `bash benchmarks/gpu_session.sh`, carry [".whl", ".official-s4"],
# timeout_s 600. Check the script here first, on CPU at tiny shapes (no device time):
#   SMOKE=1 OUT=/tmp/gpu_session bash benchmarks/gpu_session.sh
set -u
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT" || exit 1
# The image's python3 there (.venv never travels); this checkout's .venv here (prepare, smoke).
PY=${PYTHON:-$( [ -x .venv/bin/python ] && echo .venv/bin/python || echo python3 )}

if [ "${1:-}" = prepare ]; then
    set -e
    versions=$($PY -m pip list --format=freeze | grep -iE '^(hydra-core|omegaconf|antlr4-python3-runtime)==')
    rm -rf .whl && $PY -m pip wheel -q --no-deps -w .whl $versions  # pure Python: any platform
    rm -rf .official-s4 && cp -r ../shared/anchor/official-s4 .official-s4
    for path in /.whl/ /.official-s4/; do
        grep -qxF "$path" .git/info/exclude || echo "$path" >> .git/info/exclude
    done
    ls .whl && echo "prepared .whl and .official-s4: carry both"
    exit 0
fi

OUT=${OUT:?OUT must name the folder for the results (the runner sets it)}
WORK="$OUT/work"
mkdir -p "$WORK"
BUDGET_S=${BUDGET_S:-480}  # the whole run, well inside the runner's 600 s command limit
START=$(date +%s)
STEPS="$WORK/steps.tsv"
: > "$STEPS"

step() {  # step NAME LIMIT_S COMMAND...: run it with a timeout, log to $WORK/NAME.log, record;
    # COMMAND is a program (a function of this script: bash -c FUNCTION, after export -f)
    local name=$1 limit=$2 left t0 rc
    shift 2
    left=$(( BUDGET_S - ($(date +%s) - START) ))
    (( left < limit )) && limit=$left
    if (( limit < 10 )); then
        printf '%s\tskipped\t0\t0\n' "$name" >> "$STEPS"
        return
    fi
    t0=$(date +%s)
    echo "== $name (limit ${limit}s)"
    timeout --kill-after=10 "$limit" "$@" > "$WORK/$name.log" 2>&1
    rc=$?
    printf '%s\t%s\t%s\t%s\n' "$name" "$rc" "$(( $(date +%s) - t0 ))" "$limit" >> "$STEPS"
    tail -n 3 "$WORK/$name.log"
}

# Python path: s4lab from src/, carried wheels, the official extension built below.
export PYTHONUNBUFFERED=1 PYTHONPATH="$ROOT/src:/tmp/official-s4/extensions/kernels"
if ls .whl/*.whl > /dev/null 2>&1; then
    $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target /tmp/site .whl/*.whl && PYTHONPATH="$PYTHONPATH:/tmp/site"
fi
OFFICIAL=${OFFICIAL:-}
for candidate in .official-s4 shared/anchor/official-s4 ../shared/anchor/official-s4; do
    [ -z "$OFFICIAL" ] && [ -f "$candidate/models/s4/s4.py" ] && OFFICIAL=$(cd "$candidate" && pwd)
done

build_official() {  # in a copy under /tmp: the shared checkout stays untouched
    [ -n "$OFFICIAL" ] || { echo "no official checkout (.official-s4, ../shared/anchor)"; return 2; }
    rm -rf /tmp/official-s4 && cp -r "$OFFICIAL" /tmp/official-s4 || return 1
    cd /tmp/official-s4/extensions/kernels || return 1
    TORCH_CUDA_ARCH_LIST=$($PY -c 'import torch; print("%d.%d" % torch.cuda.get_device_capability())') \
        MAX_JOBS=16 $PY setup.py build_ext --inplace || return 1
    $PY -c 'import structured_kernels; print("structured_kernels:", structured_kernels.__file__)'
}

gpu_tests() {  # the files with @pytest.mark.gpu; without conftest's imports (wandb), no conftest
    local files
    files=$(grep -l "mark.gpu" tests/*.py)
    if $PY -c "import sys; sys.path.insert(0, 'tests'); import conftest" 2> /dev/null; then
        $PY -m pytest -m gpu -q --continue-on-collection-errors $files
        $PY -m pytest -m "gpu or not gpu" -q tests/test_triton_kernels.py  # all, in-process
    else
        echo "conftest does not import here (wandb? hydra?): running without it"
        $PY -m pytest -m gpu -q --continue-on-collection-errors --noconftest \
            -p no:cacheprovider $files
        $PY -m pytest -m "gpu or not gpu" -q --noconftest -p no:cacheprovider \
            tests/test_triton_kernels.py
    fi
}

export PY OFFICIAL
export -f build_official gpu_tests

if [ "${SMOKE:-0}" = 1 ]; then  # every step on CPU at tiny shapes, to check this script
    DEVICE=(--device cpu --threads 1 --warmup 0 --repeats 1)
    SCALING=(--H 16 --N 8 --tokens 128 --lengths 64 --precisions fp32)
    TABLE3=(--batch 1 --lengths 64 --rows transformer --precisions fp32)
    TABLE2=(--dims 16 --L 32)
else
    DEVICE=(--device cuda)
    SCALING=()  # H 256, N 64, B·L 131,072, L 1K..64K
    TABLE3=()  # batch 32, L 1,024 and 4,096, fp32 and bf16, every row
    TABLE2=()  # H 128, 256, 512, L 1,024, B 1
fi
OFFICIAL_ARGS=()
[ -n "$OFFICIAL" ] && OFFICIAL_ARGS=(--official /tmp/official-s4)

# ---- The steps, most important first (the budget cuts the last ones short, never the first).
# To add a GPU job, append one line: step NAME LIMIT_S COMMAND..., writing its results under
# "$WORK" (its log is $WORK/NAME.log; both end up in gpu_session.tar.gz, the step in
# summary.json), as the generation step at the end does. Only the first three benchmarks' files
# are copied to the top of $OUT (the runner returns 8 files); the archive holds every step's.
if [ "${SMOKE:-0}" = 1 ]; then
    step build_official 60 bash -c "echo 'smoke: no CUDA, nothing to build'; exit 0" &
else
    step build_official 200 bash -c build_official &  # on the CPUs while the tests use the GPU
fi
BUILD=$!
step tests 120 bash -c gpu_tests
wait $BUILD
[ -n "$OFFICIAL" ] && [ ! -d /tmp/official-s4 ] && cp -r "$OFFICIAL" /tmp/official-s4
step layer_scaling 180 $PY benchmarks/layer_scaling.py "${DEVICE[@]}" "${SCALING[@]}" \
    "${OFFICIAL_ARGS[@]}" --out "$WORK/layer_scaling.jsonl" --markdown "$WORK/layer_scaling.md"
step table3 120 $PY benchmarks/table3_efficiency.py "${DEVICE[@]}" "${TABLE3[@]}" \
    --out "$WORK/table3.jsonl" --markdown "$WORK/table3.md" --report-dir "$WORK/table3_runs"
step table2 60 $PY benchmarks/table2_lssl.py "${DEVICE[@]}" "${TABLE2[@]}" \
    --out "$WORK/table2.jsonl" --markdown "$WORK/table2.md"
# generation (issue 11): batch 16, 4 layers, H = 256, N = 64, 2,048 tokens (no-cache: 256); our
# S4/S4D steps eager and as CUDA graphs, the Transformer with and without its KV cache, official S4
GENERATION=(--batch 16 --steps 2048 --cuda-graph)
[ "${SMOKE:-0}" = 1 ] && GENERATION=(--batch 2 --steps 8 --nocache-steps 4 --H 16 --N 4 --vocab 32)
step generation 90 $PY benchmarks/generation.py "${DEVICE[@]}" "${GENERATION[@]}" \
    "${OFFICIAL_ARGS[@]}" --out "$WORK/generation.jsonl" --markdown "$WORK/generation.md"
# ---- end of the steps

$PY - "$STEPS" "$OUT/summary.json" "$BUDGET_S" "$(( $(date +%s) - START ))" "$OFFICIAL" <<'EOF'
import json, sys
import torch
steps_file, out, budget, total, official = sys.argv[1:]
steps = []
for line in open(steps_file):
    name, rc, seconds, limit = line.rstrip("\n").split("\t")
    status = "skipped (budget spent)" if rc == "skipped" else "ok" if rc == "0" else (
        "timed out" if rc in ("124", "137") else f"failed (exit {rc})")
    steps.append({"step": name, "status": status, "exit": rc, "seconds": int(seconds),
                  "limit_s": int(limit)})
cuda = torch.cuda.is_available()
summary = {"device": torch.cuda.get_device_name() if cuda else "cpu (smoke run)",
           "torch": torch.__version__, "budget_s": int(budget), "total_s": int(total),
           "official": official or None, "steps": steps}
json.dump(summary, open(out, "w"), indent=1)
print(json.dumps(summary, indent=1))
EOF
for name in layer_scaling table3 table2; do
    for ext in jsonl md; do
        [ -f "$WORK/$name.$ext" ] && cp "$WORK/$name.$ext" "$OUT/"
    done
done
tar -czf "$OUT/gpu_session.tar.gz" -C "$OUT" work && rm -rf "$WORK"
ls -la "$OUT"
