#!/usr/bin/env bash
# Makes the folder a GPU machine without .NET needs for tools/gpu-check.sh: .gpu/finetune-linux-x64.tar.xz (the
# `finetune` command and the FineTune.Gpu.Tests runner, published self-contained into one folder that shares one
# copy of the .NET runtime) and .gpu/MANIFEST (commit, sizes, sha256). Then checks it with gpu-check.sh --dry-run.
#
#   tools/gpu-pack.sh            then, with the device tool: run("tools/gpu-check.sh $OUT", carry=[".gpu"])
#
# Untrimmed: YamlDotNet binds recipes through reflection, which trimming breaks; xz brings the ~150 MB folder to
# ~40 MB, under the device tool's 64 MiB together with the working tree. The shim is not packed: it is built there
# against that machine's pip torch (CUDA). .gpu/ is ignored by git, so it travels only when `carry` names it.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
OUT=${FT_GPU_CARRIED:-$ROOT/.gpu}
STAGE=$(mktemp -d /tmp/ft-gpu-pack-XXXXXX)
trap 'rm -rf "$STAGE"' EXIT
cd "$ROOT"
command -v dotnet >/dev/null || { echo "gpu-pack: the .NET 10 SDK is required (dotnet not on PATH)." >&2; exit 2; }
for project in trainer/FineTune.Cli/FineTune.Cli.csproj tests/FineTune.Gpu.Tests/FineTune.Gpu.Tests.csproj; do
  echo "==> dotnet publish $project (self-contained, linux-x64)" >&2
  dotnet publish "$project" -c Release -r linux-x64 --self-contained -p:PublishTrimmed=false -o "$STAGE/app" -nologo -v quiet -clp:ErrorsOnly
done
# No shim in the pack: this one links Debian's libtorch 1.13, which the GPU machine does not have; gpu-check.sh
# builds one there and points FINETUNE_NATIVE_DIR at it.
rm -f "$STAGE"/app/*.pdb "$STAGE/app/libfinetune_torch.so"
mkdir -p "$OUT"
echo "==> xz" >&2
tar -C "$STAGE" -cf - app | xz -T0 -6 >"$OUT/finetune-linux-x64.tar.xz.tmp"
mv "$OUT/finetune-linux-x64.tar.xz.tmp" "$OUT/finetune-linux-x64.tar.xz"
{
  echo "# tools/gpu-pack.sh $(date -u +%FT%TZ); commit $(git rev-parse --short HEAD 2>/dev/null || echo none)$(git diff --quiet 2>/dev/null || echo ' (with uncommitted changes)')"
  echo "# app: $(du -sm "$STAGE/app" | cut -f1) MB unpacked, $(ls "$STAGE/app" | wc -l) files, .NET $(dotnet --list-runtimes | awk '/NETCore.App/ {v=$2} END {print v}')"
  (cd "$OUT" && sha256sum finetune-linux-x64.tar.xz)
} >"$OUT/MANIFEST"
cat "$OUT/MANIFEST"
echo "==> $OUT: $(du -sh "$OUT" | cut -f1); checking it with tools/gpu-check.sh --dry-run" >&2
exec "$ROOT/tools/gpu-check.sh" --dry-run "$STAGE/dry-run"
