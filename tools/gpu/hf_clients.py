#!/usr/bin/env python3
"""The real clients read what FineTune wrote (run on the GPU machine by tools/gpu-check.sh, step hf-clients).

1. TensorBoard's own EventAccumulator loads the run's event files; every train/loss it finds must equal the loss
   of the same step in metrics.jsonl (float32 rounding), and the recipe text and hparams must be there.
2. transformers.AutoModelForCausalLM loads the exported Hugging Face folder; its logits (float64 on the CPU, the
   reference) on the given token ids are compared with the logits `finetune eval --logits-out` wrote for the same
   ids: max |a - b| / max |b| must stay under 1e-4 (fp32 on CUDA without TF32 is ~1e-6), and the argmax of every
   position must agree.
Prints one line per check and exits 1 if any fails. Only tensorboard, transformers, torch and numpy are used:
they are on the GPU machine and not on the CPU machines (tools/gpu/dry-run.sh only compiles this file).
"""
import argparse
import json
import os
import sys


def check_events(run_dir):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.util import tensor_util

    accumulator = EventAccumulator(os.path.join(run_dir, "tensorboard"), size_guidance={"tensors": 0, "scalars": 0})
    accumulator.Reload()
    tags = accumulator.Tags()
    print(f"events: tags {json.dumps({k: v for k, v in tags.items() if v and isinstance(v, list)})}")
    tensor_tags = tags.get("tensors", [])
    if "train/loss" in tensor_tags:
        logged = {e.step: float(tensor_util.make_ndarray(e.tensor_proto)) for e in accumulator.Tensors("train/loss")}
    elif "train/loss" in tags.get("scalars", []):
        logged = {e.step: e.value for e in accumulator.Scalars("train/loss")}
    else:
        print("events: FAILED, no train/loss in the event files")
        return False
    expected = {}
    with open(os.path.join(run_dir, "metrics.jsonl")) as f:
        for line in f:
            record = json.loads(line)
            if "loss" in record and "step" in record:
                expected[record["step"]] = record["loss"]
    worst = max(abs(v - expected[s]) / max(abs(expected[s]), 1e-30) for s, v in logged.items() if s in expected)
    matched = sum(1 for s in logged if s in expected)
    has_text = any("recipe" in t for t in tensor_tags)
    ok = matched > 0 and worst < 1e-6 and has_text
    print(f"events: {'ok' if ok else 'FAILED'}, {len(logged)} train/loss points, {matched} matched metrics.jsonl, "
          f"max rel difference {worst:.1e}; recipe text {'present' if has_text else 'MISSING'}")
    return ok


def check_logits(model_dir, tokens, logits_file):
    import numpy as np
    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(model_dir, torch_dtype=torch.float32).double().eval()
    with torch.no_grad():
        reference = model(torch.tensor([tokens])).logits[0].numpy()  # (T, V) float64
    ours = np.fromfile(logits_file, dtype="<f4")
    if ours.size != reference.size:
        print(f"logits: FAILED, {logits_file} holds {ours.size} values, transformers gives {reference.shape}")
        return False
    ours = ours.reshape(reference.shape).astype(np.float64)
    error = float(np.abs(ours - reference).max() / np.abs(reference).max())
    same_argmax = int((ours.argmax(-1) == reference.argmax(-1)).sum())
    ok = error < 1e-4 and same_argmax == len(tokens)
    print(f"logits: {'ok' if ok else 'FAILED'}, transformers {type(model).__name__} vs finetune on {len(tokens)} tokens: "
          f"max |a-b|/max|b| {error:.2e}, argmax agrees at {same_argmax}/{len(tokens)} positions")
    return ok


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", required=True, help="a finetune run folder (tensorboard/ and metrics.jsonl)")
    parser.add_argument("--model", required=True, help="the run exported with finetune export")
    parser.add_argument("--tokens", required=True, help="token ids separated by spaces, as given to finetune eval")
    parser.add_argument("--logits", required=True, help="the file finetune eval --logits-out wrote: (T, V) float32")
    args = parser.parse_args()
    results = []
    for name, check in (("events", lambda: check_events(args.run)),
                        ("logits", lambda: check_logits(args.model, [int(t) for t in args.tokens.split()], args.logits))):
        try:
            results.append(check())
        except Exception as error:  # a missing client or a bad file: report it and go on to the other check
            print(f"{name}: FAILED, {type(error).__name__}: {error}")
            results.append(False)
    sys.exit(0 if all(results) else 1)


if __name__ == "__main__":
    main()
