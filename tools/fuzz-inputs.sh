#!/usr/bin/env bash
# The hostile-input fuzz of issue 21 at scale: CI runs about 1,200 cases per property (config.json, safetensors
# headers, recipes); this runs CASES per property (default 100000). Every case must end in success or one sentence,
# (and overrides of a valid recipe), never another exception, a hang or peak RSS over 2 GiB (tests/FineTune.Trainer.Tests/Fuzz).
#   tools/fuzz-inputs.sh [CASES]
set -euo pipefail
cd "$(dirname "$0")/.."
FINETUNE_FUZZ_CASES=${1:-100000} dotnet test tests/FineTune.Trainer.Tests/FineTune.Trainer.Tests.csproj -c Release \
  --filter "FullyQualifiedName~InputFuzzTests" --logger "console;verbosity=normal"
