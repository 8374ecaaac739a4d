#!/usr/bin/env bash
# The prepared GPU check (issue 20): one call on a GPU machine that has CUDA, a pip torch and Python but no .NET.
#
#   tools/gpu-pack.sh                        here: publish FineTune self-contained into .gpu/ (the carried folder)
#   tools/gpu-check.sh OUT_DIR               there: build the shim against pip torch, then run every check below
#   tools/gpu-check.sh --dry-run OUT_DIR     here, on CPU: check the carried folder, every command and flag, the budget
#
# With the lead's device tool:  run(command="tools/gpu-check.sh $OUT", carry=[".gpu"], timeout_s=570).
# Steps, each bounded by `timeout` (seconds; the sum is checked against FT_GPU_BUDGET_S, default 480 = 8 minutes):
#   build       cmake the shim against `torch.utils.cmake_prefix_path` (C++17, retried as C++20 when that fails)
#   unpack      the carried .gpu/finetune-linux-x64.tar.xz (checksum from .gpu/MANIFEST)
#   smoke       finetune smoke: CUDA found, hand-checked autograd, GEMM rates on CPU and CUDA
#   gpu-tests   the FineTune.Gpu.Tests executable (xunit v3, self-contained): every [CudaFact]
#   bench-io    finetune bench io on this machine's disk (io_uring O_DIRECT vs fio when fio is there)
#   bench-step  finetune bench step, ~1B Llama, states and activations on NVMe (on CUDA in bf16 when bench step
#               takes --device/--precision; otherwise the CPU shape of issue 15, and the CUDA row stays owed)
#   quickstart  recipes/quickstart.yaml on CUDA, exported, and its logits written by finetune eval --logits-out
#   hf-clients  TensorBoard's EventAccumulator reads the run's event files; transformers loads the export and its
#               logits are compared with FineTune's on the same tokens (tools/gpu/hf_clients.py)
# Outputs: at most 8 files in OUT_DIR (summary.txt first; one file per step or pair of steps).
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
SELF="$ROOT/tools/gpu-check.sh"
CARRIED=${FT_GPU_CARRIED:-$ROOT/.gpu}
SCRATCH=${FT_GPU_SCRATCH:-/tmp/ft-gpu-check}
BUDGET_S=${FT_GPU_BUDGET_S:-480}
TARBALL=finetune-linux-x64.tar.xz
# A ~1B Llama (Llama-3.2-1B's body with a 32k vocabulary: 1.2e9 parameters) and issue 15's CPU shape.
BENCH_1B="--layers 16 --hidden 2048 --intermediate 8192 --heads 32 --vocab 32000 --batch 1 --seq 512 --steps 2 --sub-group 50000000"
BENCH_CPU="--layers 16 --hidden 512 --intermediate 1376 --vocab 8192 --batch 4 --seq 256 --steps 2"
QUICK_TOKENS="114 101 118 101 114 115 101 58 32 97 98 99 100 10 100 99 98 97"   # "reverse: abcd\ndcba" in the byte tokenizer

# name  timeout_s  output file  (the order they run in)
STEPS=(
  "build 120 build.txt"
  "unpack 20 summary.txt"
  "smoke 25 smoke-and-tests.txt"
  "gpu-tests 60 smoke-and-tests.txt"
  "bench-io 45 bench-io.txt"
  "bench-step 95 bench-step.txt"
  "quickstart 60 quickstart.txt"
  "hf-clients 35 hf-clients.txt"
)

die() { echo "gpu-check: $*" >&2; exit 2; }

# ---- the steps (run as `gpu-check.sh __step NAME` under timeout, output appended to their file) -------------------
app() { "$SCRATCH/app/finetune" "$@"; }

step_build() {
  local prefix std
  prefix=$(python3 -c 'import torch; print(torch.utils.cmake_prefix_path)') || { echo "python3 has no torch"; return 1; }
  python3 -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda, "devices", torch.cuda.device_count())'
  # Hints for torch's own CMake config: the H200's architecture (nothing here compiles CUDA code, but torch's
  # config may enable the CUDA language and probe it) and the cuDNN the pip wheel carries under nvidia/cudnn.
  local hints=(-DCMAKE_CUDA_ARCHITECTURES=90) cudnn
  export TORCH_CUDA_ARCH_LIST=${TORCH_CUDA_ARCH_LIST:-9.0}
  cudnn=$(python3 -c 'import nvidia.cudnn as m; print(list(m.__path__)[0])' 2>/dev/null) \
    && [ -d "$cudnn/include" ] && hints+=("-DCUDNN_INCLUDE_PATH=$cudnn/include" "-DCUDNN_LIBRARY_PATH=$(ls "$cudnn"/lib/libcudnn.so* 2>/dev/null | head -1)")
  for std in "" 20 17; do
    [ -z "$std" ] || rm -rf "$SCRATCH/shim"   # a retry with another standard starts clean
    echo "== cmake (FT_CXX_STANDARD=${std:-default}) ${hints[*]}"
    if cmake -S "$ROOT/torch/native" -B "$SCRATCH/shim" -DCMAKE_BUILD_TYPE=Release "-DCMAKE_PREFIX_PATH=$prefix" "${hints[@]}" ${std:+-DFT_CXX_STANDARD=$std} \
       && cmake --build "$SCRATCH/shim" -j"$(nproc)"; then
      grep -q FT_WITH_CUDA "$SCRATCH/shim/CMakeFiles/finetune_torch.dir/flags.make" && echo "shim built with CUDA" || echo "shim built WITHOUT CUDA"
      return 0
    fi
  done
  return 1
}

step_unpack() {
  (cd "$CARRIED" && sha256sum -c --quiet <(grep "  $TARBALL\$" MANIFEST)) || { echo "$TARBALL does not match .gpu/MANIFEST"; return 1; }
  rm -rf "$SCRATCH/app" && xz -dc "$CARRIED/$TARBALL" | tar -x -C "$SCRATCH" && echo "unpacked $(du -sh "$SCRATCH/app" | cut -f1) into $SCRATCH/app"
  sed 's/^/carried: /' "$CARRIED/MANIFEST"
}

step_smoke() { app smoke; }

step_gpu-tests() { "$SCRATCH/app/FineTune.Gpu.Tests" -noColor -parallelMode none; }

step_bench-io() {
  mkdir -p "$SCRATCH/io" && df -h "$SCRATCH" && app bench io --dir "$SCRATCH/io" --size 2GiB --rounds 2 $(command -v fio >/dev/null || echo --no-fio)
}

step_bench-step() {
  mkdir -p "$SCRATCH/step"
  local help args
  help=$(app bench step --help)
  if [ -n "${FT_GPU_BENCH_STEP_ARGS:-}" ]; then args=$FT_GPU_BENCH_STEP_ARGS
  elif grep -q -- '--device' <<<"$help"; then
    args="$BENCH_1B --device cuda"; grep -q -- '--precision' <<<"$help" && args+=" --precision bf16"
  else
    echo "note: this build's bench step has no --device flag, so it runs on the CPU; the ~1B CUDA row stays owed"
    args=$BENCH_CPU
  fi
  echo "finetune bench step --nvme $SCRATCH/step $args"
  app bench step --nvme "$SCRATCH/step" $args
}

step_quickstart() {
  local run="$SCRATCH/quickstart"
  rm -rf "$run" "$SCRATCH/hf"
  # 300 of the recipe's 600 steps: the accuracy before and after is measured by greedy decoding, one token a
  # forward pass, which on a GPU costs more than the steps of a model this small.
  (cd "$ROOT" && app run recipes/quickstart.yaml training.device=cuda training.max_steps=300 "output_dir=$run" "offload.nvme_dir=$run/swap") \
    && app export "$run" "$SCRATCH/hf" \
    && app eval --model "$SCRATCH/hf" --tokens "$QUICK_TOKENS" --device cuda --logits-out "$SCRATCH/logits.f32" \
    && app eval --model "$SCRATCH/hf" --tokens "$QUICK_TOKENS" --device cpu
}

step_hf-clients() {
  python3 "$ROOT/tools/gpu/hf_clients.py" --run "$SCRATCH/quickstart" --model "$SCRATCH/hf" \
    --tokens "$QUICK_TOKENS" --logits "$SCRATCH/logits.f32"
}

if [ "${1:-}" = "__step" ]; then
  export FINETUNE_NATIVE_DIR="$SCRATCH/shim" DOTNET_CLI_TELEMETRY_OPTOUT=1
  "step_$2"; exit $?
fi

# ---- the plan, shared by the real run and the dry run ------------------------------------------------------------
DRY=0
[ "${1:-}" = "--dry-run" ] && { DRY=1; shift; }
[ $# -eq 1 ] || die "usage: tools/gpu-check.sh [--dry-run] OUT_DIR"
OUT=$1
mkdir -p "$OUT" || die "cannot create $OUT"
total=0; files=()
for s in "${STEPS[@]}"; do
  read -r name seconds file <<<"$s"
  declare -F "step_$name" >/dev/null || die "step $name has no function step_$name"
  total=$((total + seconds))
  [[ " ${files[*]} " == *" $file "* ]] || files+=("$file")
done
[[ " ${files[*]} " == *" summary.txt "* ]] || files+=(summary.txt)
[ "$total" -le "$BUDGET_S" ] || die "the steps' timeouts add up to $total s, over the budget of $BUDGET_S s; shorten a step."
[ ${#files[@]} -le 8 ] || die "the steps write ${#files[@]} files; the device tool brings back at most 8."

if [ $DRY -eq 1 ]; then
  exec "$ROOT/tools/gpu/dry-run.sh" "$OUT" "$total" "$BUDGET_S" "${files[*]}"
fi

# ---- the real run --------------------------------------------------------------------------------------------------
command -v nvidia-smi >/dev/null || echo "warning: no nvidia-smi on this machine" >&2
[ -f "$CARRIED/$TARBALL" ] || die "$CARRIED/$TARBALL is missing: run tools/gpu-pack.sh here and carry .gpu."
mkdir -p "$SCRATCH"
summary="$OUT/summary.txt"
{
  echo "gpu-check $(date -u +%FT%TZ) on $(hostname), budget $BUDGET_S s, steps' timeouts $total s"
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>&1 | sed 's/^/gpu: /'
  echo "cpu: $(nproc) cores; $(free -g | awk '/Mem:/ {print $2}') GiB; disk $(df -h "$SCRATCH" | awk 'NR==2 {print $4}') free at $SCRATCH"
} >"$summary"
results=()
for s in "${STEPS[@]}"; do
  read -r name seconds file <<<"$s"
  start=$(date +%s.%N)
  echo "==== $name (timeout ${seconds} s)" >>"$OUT/$file"
  timeout -k 5 "$seconds" bash "$SELF" __step "$name" >>"$OUT/$file" 2>&1
  rc=$?
  elapsed=$(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN {printf "%.1f", b - a}')
  case $rc in 0) status=ok;; 124|137) status="TIMED OUT";; *) status="FAILED (exit $rc)";; esac
  results+=("$(printf '%-11s %-18s %6s s of %4s s  -> %s' "$name" "$status" "$elapsed" "$seconds" "$file")")
  echo "${results[-1]}"
  # Nothing after a failed build or unpack can run.
  if [ $rc -ne 0 ] && { [ "$name" = build ] || [ "$name" = unpack ]; }; then break; fi
done
{ echo; printf '%s\n' "${results[@]}"; } >>"$summary"
cat "$summary"
