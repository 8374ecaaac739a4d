#!/usr/bin/python3
"""Reference fixtures for FineTune's LoRA adapters (tests/FineTune.Trainer.Tests/Models/Lora).

Run:  /usr/bin/python3 tests/reference/make_lora_fixtures.py
      (Debian python3-torch 1.13; needs neither peft, transformers nor the safetensors package. Run it after
      make_llama_fixtures.py: it adapts that script's base models and reuses their inputs.)

Writes tests/FineTune.Trainer.Tests/Fixtures/lora/<name>/ for two adapters over the tiny Llamas of
make_llama_fixtures.py:
  lora_gqa_tied        base llama_gqa_tied (GQA, tied embeddings); r 4, lora_alpha 8 (scale 2), no dropout, the
                       default targets q/k/v/o_proj.
  lora_bias_all_linear base llama_bias_llama3 (q/k/v/o biases, untied, head_dim 16, llama3 RoPE); r 2,
                       lora_alpha 3 (scale 1.5), lora_dropout 0.25, target_modules all-linear, and
                       modules_to_save input_layernorm + model.norm trained in full beside the adapters.
Each holds
  adapter/             a PEFT adapter folder as peft's save_pretrained writes it: adapter_config.json and
                       adapter_model.safetensors with base_model.model.model.layers.N.<proj>.lora_A.weight (r, in),
                       ...lora_B.weight (out, r) in f32 (and base_model.model.<name> for modules_to_save). A is
                       kaiming_uniform_(a=sqrt(5)) as PEFT initialises it; B is random, not PEFT's zeros, so that the
                       gradients of A are not trivially zero (it stands for an adapter part-way through training).
  expected/inputs.json base, the input_ids/labels of the base fixture, dropout seed, loss (training mode, the masks
                       of step 0), eval_loss (no dropout) and adamw_losses: the loss of 5 AdamW steps (lr 1e-2,
                       betas (0.9, 0.999), eps 1e-8, weight_decay 0.01) over the adapters (and modules_to_save) only,
                       the base frozen; adamw_losses[k] is the training loss before update k with the masks of step k,
                       adamw_losses[5] the eval loss (no dropout) after the fifth update.
  expected/logits.safetensors  "logits" (B, T, V) f32 without dropout (evaluation)
  expected/grads.safetensors   d loss / d tensor for every A and B (FineTune's names: model.layers.N.<proj>.lora_A.weight)
                               and every modules_to_save weight (HF names), at step 0 in training mode, f32

The math is PEFT's LoRA Linear written out: y = W x + b + scale * B(A(dropout(x))), scale = lora_alpha / r,
reference peft tuners/lora/layer.py Linear.forward. The dropout mask is FineTune's documented scheme, redone here
independently: seed = SplitMix64 chained over (seed, step, micro-batch, layer, projection index), u = torch.rand of
the input's shape from torch.Generator().manual_seed(seed) (CPU), keep where float32(u + (1 - p)) truncates to 1,
noise = keep / (1 - p), x * noise (as aten's _dropout_impl). Expected values are computed in float64 from the f32
weights (the exact answer); the script also reruns the forward in float32 and prints the distance, the noise floor.
"""
import json
import math
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import make_llama_fixtures as llama  # noqa: E402  (the plain-torch Llama this adapts)

OUT = os.path.join(llama.ROOT, "FineTune.Trainer.Tests", "Fixtures", "lora")
PREFIX = "base_model.model."
MODULES = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
MASK64 = (1 << 64) - 1


# ----------------------------------------------------------------------------------------------------------------
# Dropout masks. reference: SplitMix64 (Steele, Lea, Flood 2014; Vigna's splitmix64.c).
def splitmix64_next(state):
    z = (state + 0x9E3779B97F4A7C15) & MASK64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK64
    return z ^ (z >> 31)


def mask_seed(seed, step, micro_batch, layer, projection):
    state = seed & MASK64
    for value in (step, micro_batch, layer, projection):
        state = splitmix64_next(state ^ ((value * 0xD1B54A32D192ED03) & MASK64))
    return state >> 1


def dropout_noise(shape, p, seed):
    """mask / (1 - p) in float32, the mask drawn from seed on the CPU."""
    u = torch.rand(shape, generator=torch.Generator().manual_seed(seed))
    keep = 1.0 - p
    mask = (u + keep).to(torch.int64).to(torch.float32)
    return mask / keep


# ----------------------------------------------------------------------------------------------------------------
# LoRA on the plain-torch Llama: make_llama_fixtures.decoder_layer computes every projection through the module
# function `linear(x, p, module_name)`; while STATE holds adapters, that function adds their update.
STATE = {"adapters": None, "position": None}
_base_linear = llama.linear


def lora_linear(x, p, name):
    y = _base_linear(x, p, name)
    adapters = STATE["adapters"]
    if adapters is None or name not in adapters:
        return y
    a, b, scale, p_drop, seed = adapters[name]
    h = x
    if p_drop > 0 and STATE["position"] is not None:
        step, micro = STATE["position"]
        layer = int(name.split(".")[2])
        projection = MODULES.index(name.split(".")[-1])
        h = h * dropout_noise(tuple(h.shape), p_drop, mask_seed(seed, step, micro, layer, projection)).to(h.dtype)
    return y + (h @ a.t()) @ b.t() * scale


llama.linear = lora_linear


def module_name(layer, module):
    parent = "self_attn" if MODULES.index(module) < 4 else "mlp"
    return "model.layers.%d.%s.%s" % (layer, parent, module)


def features(rc, module):
    c, hd, f = rc["hidden_size"], rc["head_dim"], rc["intermediate_size"]
    q, kv = rc["num_attention_heads"] * hd, rc["num_key_value_heads"] * hd
    return {"q_proj": (c, q), "k_proj": (c, kv), "v_proj": (c, kv), "o_proj": (q, c),
            "gate_proj": (c, f), "up_proj": (c, f), "down_proj": (f, c)}[module]


def adapter_config(base, r, alpha, dropout, targets, modules_to_save):
    # The fields PEFT 0.1x's LoraConfig saves, sorted as save_pretrained writes them.
    return {
        "alpha_pattern": {}, "auto_mapping": None, "base_model_name_or_path": base, "bias": "none",
        "fan_in_fan_out": False, "inference_mode": True, "init_lora_weights": True, "layer_replication": None,
        "layers_pattern": None, "layers_to_transform": None, "loftq_config": {}, "lora_alpha": alpha,
        "lora_dropout": dropout, "megatron_config": None, "megatron_core": "megatron.core",
        "modules_to_save": modules_to_save or None, "peft_type": "LORA", "r": r, "rank_pattern": {},
        "revision": None, "target_modules": targets, "task_type": "CAUSAL_LM", "use_dora": False, "use_rslora": False,
    }


def make(name, base, r, alpha, dropout, targets, modules_to_save, extra_params, seed, dropout_seed):
    base_folder = os.path.join(llama.OUT, base)
    with open(os.path.join(base_folder, "config.json")) as f:
        cfg = json.load(f)
    rc = llama.full_config(cfg)
    base32 = llama.load_safetensors(os.path.join(base_folder, "model.safetensors"))
    with open(os.path.join(base_folder, "expected", "inputs.json")) as f:
        base_inputs = json.load(f)
    ids = torch.tensor(base_inputs["input_ids"])
    labels = torch.tensor(base_inputs["labels"])

    gen = torch.Generator().manual_seed(seed)
    adapters32 = {}
    for layer in range(rc["num_hidden_layers"]):
        for module in targets:
            n_in, n_out = features(rc, module)
            a = torch.empty(r, n_in)
            # kaiming_uniform_(a=sqrt(5)): bound = sqrt(2 / (1 + 5)) * sqrt(3 / fan_in) = 1 / sqrt(in).
            bound = 1.0 / math.sqrt(n_in)
            a.uniform_(-bound, bound, generator=gen)
            b = 0.3 * torch.randn(n_out, r, generator=gen)
            adapters32[module_name(layer, module)] = (a, b)
    extras32 = {k: base32[k] + 0.05 * torch.randn(base32[k].shape, generator=gen) for k in extra_params}

    folder = os.path.join(OUT, name)
    os.makedirs(os.path.join(folder, "adapter"), exist_ok=True)
    os.makedirs(os.path.join(folder, "expected"), exist_ok=True)
    tensors = {}
    for module, (a, b) in adapters32.items():
        tensors[PREFIX + module + ".lora_A.weight"] = a
        tensors[PREFIX + module + ".lora_B.weight"] = b
    for k, v in extras32.items():
        tensors[PREFIX + k] = v
    llama.save_safetensors(os.path.join(folder, "adapter", "adapter_model.safetensors"), tensors)
    with open(os.path.join(folder, "adapter", "adapter_config.json"), "w") as f:
        json.dump(adapter_config(base, r, alpha, dropout, targets_written(targets), modules_to_save), f, indent=2, sort_keys=True)
        f.write("\n")

    scale = alpha / r

    def model(dtype, requires_grad):
        """(base params with trained extras, adapters) as leaves of dtype; only adapters/extras require grad."""
        p = {k: v.to(dtype) for k, v in base32.items()}
        for k, v in extras32.items():
            p[k] = v.to(dtype).clone().requires_grad_(requires_grad)
        ad = {m: (a.to(dtype).clone().requires_grad_(requires_grad), b.to(dtype).clone().requires_grad_(requires_grad))
              for m, (a, b) in adapters32.items()}
        return p, ad

    def run(p, ad, position):
        STATE["adapters"] = {m: (a, b, scale, dropout, dropout_seed) for m, (a, b) in ad.items()}
        STATE["position"] = position
        try:
            return llama.forward(p, rc, ids)[0]
        finally:
            STATE["adapters"] = None
            STATE["position"] = None

    # Evaluation logits (no dropout) and the training-mode loss and gradients at step 0, in float64.
    p, ad = model(torch.float64, True)
    with torch.no_grad():
        eval_logits = run(p, ad, None)
        eval_loss = llama.causal_lm_loss(eval_logits, labels).item()
    loss = llama.causal_lm_loss(run(p, ad, (0, 0)), labels)
    loss.backward()
    grads = {}
    for m, (a, b) in ad.items():
        grads[m + ".lora_A.weight"] = a.grad.float()
        grads[m + ".lora_B.weight"] = b.grad.float()
    for k in extra_params:
        grads[k] = p[k].grad.float()
    llama.save_safetensors(os.path.join(folder, "expected", "logits.safetensors"), {"logits": eval_logits.float()})
    llama.save_safetensors(os.path.join(folder, "expected", "grads.safetensors"), grads)

    # The float32 noise floor of the same computation.
    p32, ad32 = model(torch.float32, True)
    loss32 = llama.causal_lm_loss(run(p32, ad32, (0, 0)), labels)
    loss32.backward()
    grad32 = {m + ".lora_A.weight": a.grad for m, (a, _) in ad32.items()}
    grad32.update({m + ".lora_B.weight": b.grad for m, (_, b) in ad32.items()})
    grad32.update({k: p32[k].grad for k in extra_params})
    print("%s: loss %.8f (eval %.8f); fp32 vs fp64: loss rel %.2e, grads max rel %.2e"
          % (name, loss.item(), eval_loss, abs(loss32.item() / loss.item() - 1),
             max(llama.max_rel(grad32[k], grads[k].double()) for k in grads)))

    # AdamW over the adapters (and extras) only; the base is never touched.
    pa, ada = model(torch.float64, True)
    trained = [t for pair in ada.values() for t in pair] + [pa[k] for k in extra_params]
    opt = torch.optim.AdamW(trained, lr=1e-2, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01)
    losses = []
    for step in range(5):
        opt.zero_grad()
        step_loss = llama.causal_lm_loss(run(pa, ada, (step, 0)), labels)
        losses.append(step_loss.item())
        step_loss.backward()
        opt.step()
    with torch.no_grad():
        losses.append(llama.causal_lm_loss(run(pa, ada, None), labels).item())
    print("%s: AdamW losses %s" % (name, " ".join("%.6f" % l for l in losses)))

    with open(os.path.join(folder, "expected", "inputs.json"), "w") as f:
        json.dump({"base": base, "input_ids": ids.tolist(), "labels": labels.tolist(), "dropout_seed": dropout_seed,
                   "loss": loss.item(), "eval_loss": eval_loss,
                   "adamw": {"lr": 1e-2, "beta1": 0.9, "beta2": 0.999, "eps": 1e-8, "weight_decay": 0.01},
                   "adamw_losses": losses}, f, indent=1)
        f.write("\n")


def targets_written(targets):
    return "all-linear" if targets == MODULES else list(targets)


def main():
    make("lora_gqa_tied", "llama_gqa_tied", r=4, alpha=8, dropout=0.0, targets=["q_proj", "k_proj", "v_proj", "o_proj"],
         modules_to_save=[], extra_params=[], seed=4321, dropout_seed=0)
    make("lora_bias_all_linear", "llama_bias_llama3", r=2, alpha=3, dropout=0.25, targets=MODULES,
         modules_to_save=["input_layernorm", "model.norm"],
         extra_params=["model.layers.0.input_layernorm.weight", "model.layers.1.input_layernorm.weight", "model.norm.weight"],
         seed=8765, dropout_seed=77)


if __name__ == "__main__":
    main()
