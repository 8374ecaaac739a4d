#!/usr/bin/env bash
# tools/gpu-check.sh --dry-run OUT_DIR lands here (argv: OUT_DIR TOTAL_S BUDGET_S "FILES"): checks on this CPU
# machine what can be checked without a GPU, so the one short GPU call does not fail on something found here:
#   1. the carried folder: .gpu/MANIFEST's checksum, and the unpacked self-contained `finetune` and GPU test runner
#      run with no .NET on PATH (or, with FT_GPU_APP set and nothing packed, that build stands in for them);
#   2. the commands: every subcommand and flag gpu-check.sh passes is accepted by this build (--help listings),
#      the GPU test executable lists its tests, and the quickstart chain (run, export, eval --logits-out) runs
#      end to end on the CPU for 2 steps;
#   3. the budget: the steps' timeouts within the budget and the device tool's 600 s per command, at most 8
#      output files with names the tool brings back;
#   4. tools/gpu/hf_clients.py compiles (its clients, tensorboard and transformers, exist only on the GPU machine).
# Exit 0 when everything passes; otherwise 2 and one line per problem.
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
OUT=$1 TOTAL=$2 BUDGET=$3 FILES=$4
CARRIED=${FT_GPU_CARRIED:-$ROOT/.gpu}
TARBALL=finetune-linux-x64.tar.xz
WORK=$(mktemp -d /tmp/ft-gpu-dry-XXXXXX)
trap 'rm -rf "$WORK"' EXIT
problems=()
# The carried app has no shim (the GPU machine builds its own); here the one ./build.sh built stands in.
export FINETUNE_NATIVE_DIR=${FINETUNE_NATIVE_DIR:-$ROOT/torch/native/build}
problem() { problems+=("$*"); echo "  PROBLEM: $*"; }
ok() { echo "  ok: $*"; }
# shellcheck source=/dev/null
eval "$(sed -n '/^BENCH_1B=/p; /^BENCH_CPU=/p; /^QUICK_TOKENS=/p' "$ROOT/tools/gpu-check.sh")"

echo "1. carried folder ($CARRIED)"
FINETUNE=() TESTS=()
if [ -f "$CARRIED/$TARBALL" ]; then
  if [ ! -f "$CARRIED/MANIFEST" ]; then problem "$CARRIED/MANIFEST is missing; rerun tools/gpu-pack.sh."
  elif (cd "$CARRIED" && sha256sum -c --quiet <(grep "  $TARBALL\$" MANIFEST) 2>/dev/null); then ok "$TARBALL matches MANIFEST"
  else problem "$TARBALL does not match $CARRIED/MANIFEST; rerun tools/gpu-pack.sh."; fi
  carried_mib=$(( $(du -sk "$CARRIED" | cut -f1) / 1024 ))
  tree_mib=$(( $(cd "$ROOT" && git ls-files -co --exclude-standard -z 2>/dev/null | du -ck --files0-from=- 2>/dev/null | tail -1 | cut -f1) / 1024 ))
  if [ $((carried_mib + tree_mib)) -le 64 ]; then ok "carried $carried_mib MiB + working tree $tree_mib MiB within the tool's 64 MiB"
  else problem "carried $carried_mib MiB + working tree $tree_mib MiB exceed the device tool's 64 MiB."; fi
  if xz -dc "$CARRIED/$TARBALL" | tar -x -C "$WORK"; then
    for f in finetune FineTune.Gpu.Tests libcoreclr.so libhostfxr.so finetune.dll YamlDotNet.dll; do
      [ -e "$WORK/app/$f" ] || problem "the carried app has no $f; rerun tools/gpu-pack.sh."
    done
    [ ! -e "$WORK/app/libfinetune_torch.so" ] || problem "the carried app holds libfinetune_torch.so, built here against Debian's libtorch, which cannot load there; rerun tools/gpu-pack.sh."
    FINETUNE=(env -u DOTNET_ROOT PATH=/usr/bin:/bin "$WORK/app/finetune")
    TESTS=(env -u DOTNET_ROOT PATH=/usr/bin:/bin "$WORK/app/FineTune.Gpu.Tests")
  else problem "$TARBALL does not unpack."; fi
elif [ -n "${FT_GPU_APP:-}" ]; then
  echo "  note: nothing packed in $CARRIED; checking the commands with FT_GPU_APP=$FT_GPU_APP instead"
  FINETUNE=("$FT_GPU_APP")
  TESTS=("${FT_GPU_TESTS:-$ROOT/tests/FineTune.Gpu.Tests/bin/Release/net10.0/FineTune.Gpu.Tests}")
else
  problem "$CARRIED/$TARBALL is missing: run tools/gpu-pack.sh (or set FT_GPU_APP to a built finetune)."
fi

echo "2. commands"
if [ ${#FINETUNE[@]} -gt 0 ]; then
  # flags_of "sub command" "flags..." : every --flag must appear in that command's --help.
  flags_of() {
    local command=$1; shift
    local help; help=$("${FINETUNE[@]}" $command --help 2>&1) || { problem "finetune $command --help failed: $(head -1 <<<"$help")"; return; }
    local flag missing=() used=()
    for flag in "$@"; do
      [[ $flag == --* ]] || continue
      [[ " ${used[*]} " == *" $flag "* ]] || used+=("$flag")
      grep -q -- "$flag\b" <<<"$help" || missing+=("$flag")
    done
    if [ ${#missing[@]} -eq 0 ]; then ok "finetune $command --help${used[*]:+ lists ${used[*]}}"
    else problem "finetune $command does not accept ${missing[*]}; update tools/gpu-check.sh to its current flags."; fi
  }
  flags_of smoke
  flags_of "bench io" --dir --size --rounds --no-fio
  # shellcheck disable=SC2086
  flags_of "bench step" --nvme ${FT_GPU_BENCH_STEP_ARGS:-$BENCH_1B $BENCH_CPU}
  flags_of export
  flags_of eval --model --tokens --device --logits-out
  flags_of run
  if listing=$("${TESTS[@]}" -list tests 2>&1); then
    ok "the GPU test runner lists $(grep -c 'FineTune.Gpu.Tests\.' <<<"$listing") tests"
  else problem "the GPU test runner does not start: $(head -2 <<<"$listing" | tr '\n' ' ')"; fi
  # The quickstart chain, shortened, on the CPU: the same commands and keys as step_quickstart (skipped once a
  # command above failed: the chain would fail on the same thing, slower).
  run="$WORK/quickstart"
  if [ ${#problems[@]} -gt 0 ]; then echo "  skipped: the quickstart chain (fix the problems above first)"
  elif (cd "$ROOT" && "${FINETUNE[@]}" run recipes/quickstart.yaml training.device=cpu training.max_steps=2 schedule.warmup_steps=0 eval.task_accuracy=false \
        "output_dir=$run" "offload.nvme_dir=$run/swap") >"$WORK/quickstart.log" 2>&1 \
     && "${FINETUNE[@]}" export "$run" "$WORK/hf" >>"$WORK/quickstart.log" 2>&1 \
     && "${FINETUNE[@]}" eval --model "$WORK/hf" --tokens "$QUICK_TOKENS" --device cpu --logits-out "$WORK/logits.f32" >>"$WORK/quickstart.log" 2>&1; then
    vocab=$(python3 -c "import json; print(json.load(open('$WORK/hf/config.json'))['vocab_size'])")
    expected=$(( $(wc -w <<<"$QUICK_TOKENS") * vocab * 4 ))
    if [ "$(stat -c %s "$WORK/logits.f32")" -eq "$expected" ] && ls "$run"/tensorboard/events.out.tfevents.* >/dev/null 2>&1; then
      ok "quickstart chain on the CPU: 2 steps, export, eval --logits-out ($expected bytes), event files written"
    else problem "the quickstart chain ran but its logits file or event files are not what hf_clients.py reads."; fi
  else problem "the quickstart chain failed on the CPU: $(grep -m1 -iE 'error|refus' "$WORK/quickstart.log" || tail -1 "$WORK/quickstart.log")"; fi
fi

echo "3. budget"
if [ "$TOTAL" -le "$BUDGET" ] && [ "$TOTAL" -le 570 ]; then ok "steps' timeouts $TOTAL s of the $BUDGET s budget (the device tool allows 600 s a command)"
else problem "steps' timeouts $TOTAL s exceed the budget ($BUDGET s) or the device tool's 600 s."; fi
count=0
for f in $FILES; do
  count=$((count + 1))
  [[ $f =~ ^[A-Za-z0-9._-]+$ ]] || problem "output file name $f has characters the device tool does not bring back."
done
[ $count -le 8 ] && ok "$count output files ($FILES)" || problem "$count output files; the device tool brings back 8."

echo "4. hf_clients.py"
if python3 -m py_compile "$ROOT/tools/gpu/hf_clients.py" 2>"$WORK/py.txt"; then ok "compiles"; else problem "tools/gpu/hf_clients.py: $(tail -1 "$WORK/py.txt")"; fi

{ echo "dry run $(date -u +%FT%TZ): ${#problems[@]} problem(s)"; printf '%s\n' "${problems[@]}"; } >"$OUT/summary.txt"
if [ ${#problems[@]} -eq 0 ]; then echo "dry run: OK (steps' timeouts $TOTAL s of $BUDGET s)"; exit 0; fi
echo "dry run: ${#problems[@]} problem(s)"; exit 2
