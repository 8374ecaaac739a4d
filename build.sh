#!/usr/bin/env bash
# FineTune's one entry point: installs what is missing, builds everything (native shim + .NET), then
#   ./build.sh              set up and build only
#   ./build.sh quickstart   set up, build, and run recipes/quickstart.yaml
#   ./build.sh test         set up, build, and run every test; prints "N passed, N failed, N skipped"
# Environment: FINETUNE_LIBTORCH=/path/to/libtorch (or a Python torch install's directory) builds the shim
# against that libtorch instead of Debian's libtorch-dev (e.g. a CUDA-enabled pip torch).
set -euo pipefail
cd "$(dirname "$0")"
ROOT=$(pwd)
CONFIG=${FINETUNE_CONFIG:-Release}

log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

sudo_if_needed() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

install_system_packages() {
  local wanted=(cmake g++ fio fonts-dejavu-core libgloo-dev)  # the font: text in the loss plots (ScottPlot draws with system fonts)
  # libgloo-dev: the headers of Gloo, the CPU collective library of c10d process groups (libtorch ships the code).
  # Debian's CPU libtorch is only needed when no other libtorch was given. It pulls in the netlib reference BLAS,
  # ~20x slower than OpenBLAS; the OpenMP build shares libtorch's OpenMP runtime, so the two never oversubscribe
  # the cores (pthread OpenBLAS and BLIS were slower under libtorch: docs/benchmarks.md, "BLAS").
  [ -z "${FINETUNE_LIBTORCH:-}" ] && wanted+=(libtorch-dev libopenblas0-openmp)
  local missing=()
  for p in "${wanted[@]}"; do
    dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    log "installing ${missing[*]} (apt)"
    sudo_if_needed apt-get update -q
    sudo_if_needed env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
  fi
  [ -z "${FINETUNE_LIBTORCH:-}" ] && select_openblas_openmp
  command -v dotnet >/dev/null || { echo "error: the .NET 10 SDK is required (dotnet not on PATH)." >&2; exit 2; }
}

# Debian picks libblas.so.3 by alternatives priority, which ranks pthread OpenBLAS above the OpenMP one: switch
# to OpenMP when the reference or a pthread BLAS is selected (a BLAS chosen otherwise, e.g. MKL, is left alone).
select_openblas_openmp() {
  local dir=/usr/lib/x86_64-linux-gnu name current
  [ -e "$dir/openblas-openmp/libblas.so.3" ] || return 0
  for name in libblas.so.3 liblapack.so.3; do
    current=$(update-alternatives --query "$name-x86_64-linux-gnu" 2>/dev/null | awk '/^Value:/ {print $2}')
    case $current in
      "$dir/blas/"*|"$dir/lapack/"*|*pthread*)
        log "selecting OpenBLAS (OpenMP) for $name (was $current)"
        sudo_if_needed update-alternatives --set "$name-x86_64-linux-gnu" "$dir/openblas-openmp/$name" >/dev/null ;;
    esac
  done
}

libtorch_prefix() {
  # FINETUNE_LIBTORCH may be a libtorch folder (share/cmake/Torch inside) or a Python torch package folder.
  local given=${FINETUNE_LIBTORCH:-}
  [ -z "$given" ] && return 0
  if [ -d "$given/share/cmake/Torch" ]; then echo "$given/share/cmake"; return; fi
  if [ -d "$given/torch/share/cmake/Torch" ]; then echo "$given/torch/share/cmake"; return; fi
  echo "error: FINETUNE_LIBTORCH=$given holds no share/cmake/Torch; point it at a libtorch or a torch package folder." >&2
  exit 2
}

build_native() {
  local prefix; prefix=$(libtorch_prefix)
  local args=(-S torch/native -B torch/native/build -DCMAKE_BUILD_TYPE=Release)
  [ -n "$prefix" ] && args+=("-DCMAKE_PREFIX_PATH=$prefix")
  log "building the native libtorch shim"
  cmake "${args[@]}" >/dev/null
  cmake --build torch/native/build -j"$(nproc)"
}

build_dotnet() {
  log "building FineTune ($CONFIG)"
  dotnet build FineTune.sln -c "$CONFIG" -nologo -v quiet -clp:ErrorsOnly
}

run_tests() {
  log "running the tests"
  local out status=0
  out=$(mktemp)
  dotnet test FineTune.sln -c "$CONFIG" --no-build -nologo 2>&1 | tee "$out" || status=$?
  # VSTest prints one summary per test project: "Passed!  - Failed: 0, Passed: 12, Skipped: 1, Total: 13, ..."
  local passed failed skipped
  passed=$(grep -oE 'Passed: +[0-9]+' "$out" | awk '{s+=$2} END {print s+0}')
  failed=$(grep -oE 'Failed: +[0-9]+' "$out" | awk '{s+=$2} END {print s+0}')
  skipped=$(grep -oE 'Skipped: +[0-9]+' "$out" | awk '{s+=$2} END {print s+0}')
  rm -f "$out"
  echo "$passed passed, $failed failed, $skipped skipped"
  if [ "$status" -ne 0 ] || [ "$failed" -ne 0 ] || [ "$passed" -eq 0 ]; then return 1; fi
}

install_system_packages
build_native
build_dotnet
case "${1:-build}" in
  build) ;;
  # Each quickstart writes a new run folder, so running it twice never collides with (or deletes) an earlier run.
  quickstart) shift; out="runs/quickstart-$(date +%Y%m%d-%H%M%S)"
    exec "$ROOT/finetune" run recipes/quickstart.yaml "output_dir=$out" "offload.nvme_dir=$out/swap" "$@" ;;
  test) run_tests ;;
  *) echo "usage: ./build.sh [build|quickstart|test]" >&2; exit 2 ;;
esac
