#!/usr/bin/python3
"""Reference fixtures for FineTune's Llama-family model (tests/FineTune.Trainer.Tests/Models).

Run:  /usr/bin/python3 tests/reference/make_llama_fixtures.py
      (Debian python3-torch 1.13; needs neither transformers nor the safetensors package.)
      /usr/bin/python3 tests/reference/make_llama_fixtures.py --check-export DIR FIXTURE
      reads a folder `finetune export` wrote with an independent reader and compares its logits to FIXTURE's.

Writes tests/FineTune.Trainer.Tests/Fixtures/models/<name>/ for two tiny Llamas:
  llama_gqa_tied     4 heads / 2 KV heads (GQA), tied embeddings, default RoPE, rope_theta at top level;
                     also a bf16 and an f16 copy of the same weights (llama_gqa_tied_bf16/, llama_gqa_tied_f16/).
  llama_bias_llama3  untied lm_head, q/k/v/o biases (attention_bias), explicit head_dim != hidden/heads,
                     llama3 rope_scaling (as Llama-3.1/3.2 configs write it), a sharded copy
                     (llama_bias_llama3_sharded/: 3 shards + model.safetensors.index.json).
  qwen2_tiny         model_type qwen2: q/k/v biases but no o_proj bias, 4 query heads sharing 1 KV head, tied.
Each model folder holds config.json and model.safetensors (fp32, HF tensor names); the expected/ subfolder holds
  inputs.json      input_ids (B, T), labels (B, T) with some -100, the HF-style loss, `finetune eval`'s mean
                   cross-entropy of row 0 in windows of 6 inputs (eval.mean_cross_entropy), and the losses of AdamW
                   steps (lr 1e-2, betas (0.9, 0.999), eps 1e-8, weight_decay 0.01): adamw_losses[k] is the loss
                   before update k (k = 0..4) and adamw_losses[5] the loss after the fifth update.
  logits.safetensors   "logits" (B, T, V) f32
  hidden.safetensors   "embed", "layer.{i}" (output of decoder layer i), "norm": (B, T, C) f32
  grads.safetensors    d loss / d parameter for every parameter, HF names, f32

This is a plain-torch re-implementation of transformers' modeling_llama.py (LlamaRMSNorm, LlamaRotaryEmbedding with
rotate_half, _compute_default/linear/llama3 rope parameters from modeling_rope_utils.py, repeat_kv, eager attention
with a causal mask and fp32 softmax, LlamaMLP, ForCausalLMLoss). The expected values are computed in float64 from
the fp32 weights (so they are the exact answer, not one fp32 rounding of it); the script also reruns the forward in
float32 and prints how far that lands from float64, which is the noise floor a float32 implementation must meet.
"""
import json
import math
import os
import struct

import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "FineTune.Trainer.Tests", "Fixtures", "models")

ST_DTYPES = {torch.float32: ("F32", 4), torch.float16: ("F16", 2), torch.bfloat16: ("BF16", 2),
             torch.float64: ("F64", 8), torch.int64: ("I64", 8)}


# ----------------------------------------------------------------------------------------------------------------
# safetensors, by hand. reference: huggingface/safetensors safetensors/src/tensor.rs (u64 LE header length, compact
# JSON header with __metadata__ first, padded with spaces to a multiple of 8, tensors sorted by dtype alignment
# (descending) then name, contiguous offsets from 0).
def tensor_bytes(t):
    t = t.detach().contiguous().cpu()
    if t.dtype == torch.bfloat16:
        # numpy has no bf16: reinterpret the 16-bit patterns.
        return t.view(torch.int16).numpy().tobytes()
    return t.numpy().tobytes()


def save_safetensors(path, tensors):
    def order(item):
        name, t = item
        return (-ST_DTYPES[t.dtype][1], name)

    header = {"__metadata__": {"format": "pt"}}
    blobs = []
    offset = 0
    for name, t in sorted(tensors.items(), key=order):
        data = tensor_bytes(t)
        header[name] = {"dtype": ST_DTYPES[t.dtype][0], "shape": list(t.shape),
                        "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * ((8 - len(text) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for b in blobs:
            f.write(b)


def save_sharded(folder, tensors, groups):
    """groups: list of lists of tensor names, one list per shard (HF naming model-0000i-of-0000n)."""
    weight_map = {}
    total = 0
    n = len(groups)
    for i, names in enumerate(groups):
        file = "model-%05d-of-%05d.safetensors" % (i + 1, n)
        save_safetensors(os.path.join(folder, file), {k: tensors[k] for k in names})
        for k in names:
            weight_map[k] = file
            total += tensors[k].numel() * ST_DTYPES[tensors[k].dtype][1]
    assert sorted(weight_map) == sorted(tensors)
    index = {"metadata": {"total_size": total}, "weight_map": dict(sorted(weight_map.items()))}
    with open(os.path.join(folder, "model.safetensors.index.json"), "w") as f:
        json.dump(index, f, indent=2)
        f.write("\n")


# ----------------------------------------------------------------------------------------------------------------
# The model. reference: transformers src/transformers/models/llama/modeling_llama.py and modeling_rope_utils.py.
def upcast(t):
    # HF upcasts to float32 for the RMSNorm variance and the softmax; float64 inputs stay float64 here.
    return t.float() if t.dtype in (torch.float16, torch.bfloat16) else t


def rms_norm(x, weight, eps):
    # LlamaRMSNorm.forward: variance in fp32, normalise, cast back, then weight * normed.
    h = upcast(x)
    variance = h.pow(2).mean(-1, keepdim=True)
    h = h * torch.rsqrt(variance + eps)
    return weight * h.to(x.dtype)


def rope_inv_freq(cfg, head_dim):
    # _compute_default_rope_parameters: inv_freq = 1 / theta^(arange(0, d, 2) / d), computed in float32.
    rp = cfg.get("rope_parameters") or {}
    theta = cfg.get("rope_theta", rp.get("rope_theta", 10000.0))
    inv_freq = 1.0 / (theta ** (torch.arange(0, head_dim, 2, dtype=torch.int64).float() / head_dim))
    scaling = cfg.get("rope_scaling") or (rp if rp.get("rope_type", "default") != "default" else None)
    if scaling is None:
        return inv_freq
    kind = scaling.get("rope_type", scaling.get("type"))
    if kind == "linear":
        # _compute_linear_scaling_rope_parameters
        return inv_freq / scaling["factor"]
    if kind == "llama3":
        # _compute_llama3_parameters
        factor = scaling["factor"]
        low_freq_factor = scaling["low_freq_factor"]
        high_freq_factor = scaling["high_freq_factor"]
        old_context_len = scaling["original_max_position_embeddings"]
        low_freq_wavelen = old_context_len / low_freq_factor
        high_freq_wavelen = old_context_len / high_freq_factor
        wavelen = 2 * math.pi / inv_freq
        inv_freq_llama = torch.where(wavelen > low_freq_wavelen, inv_freq / factor, inv_freq)
        smooth_factor = (old_context_len / wavelen - low_freq_factor) / (high_freq_factor - low_freq_factor)
        smoothed_inv_freq = (1 - smooth_factor) * inv_freq_llama / factor + smooth_factor * inv_freq_llama
        is_medium_freq = ~(wavelen < high_freq_wavelen) * ~(wavelen > low_freq_wavelen)
        return torch.where(is_medium_freq, smoothed_inv_freq, inv_freq_llama)
    raise ValueError(kind)


def rope_cos_sin(inv_freq, seq_len, dtype):
    # LlamaRotaryEmbedding.forward: freqs = inv_freq (x) positions in float32, emb = cat(freqs, freqs),
    # attention_scaling is 1.0 for default/linear/llama3.
    positions = torch.arange(seq_len, dtype=torch.float32)
    freqs = torch.outer(positions, inv_freq.float())
    emb = torch.cat((freqs, freqs), dim=-1)
    return emb.cos().to(dtype), emb.sin().to(dtype)


def rotate_half(x):
    x1 = x[..., : x.shape[-1] // 2]
    x2 = x[..., x.shape[-1] // 2:]
    return torch.cat((-x2, x1), dim=-1)


def repeat_kv(x, n_rep):
    # (B, kv, T, d) -> (B, kv * n_rep, T, d), each KV head repeated n_rep times consecutively.
    b, kv, t, d = x.shape
    if n_rep == 1:
        return x
    return x[:, :, None, :, :].expand(b, kv, n_rep, t, d).reshape(b, kv * n_rep, t, d)


def linear(x, p, name):
    y = x @ p[name + ".weight"].t()
    if name + ".bias" in p:
        y = y + p[name + ".bias"]
    return y


def decoder_layer(x, p, i, cfg, cos, sin):
    pre = "model.layers.%d." % i
    n_heads = cfg["num_attention_heads"]
    n_kv = cfg["num_key_value_heads"]
    hd = cfg["head_dim"]
    b, t, _ = x.shape
    h = rms_norm(x, p[pre + "input_layernorm.weight"], cfg["rms_norm_eps"])
    q = linear(h, p, pre + "self_attn.q_proj").view(b, t, n_heads, hd).transpose(1, 2)
    k = linear(h, p, pre + "self_attn.k_proj").view(b, t, n_kv, hd).transpose(1, 2)
    v = linear(h, p, pre + "self_attn.v_proj").view(b, t, n_kv, hd).transpose(1, 2)
    q = q * cos + rotate_half(q) * sin
    k = k * cos + rotate_half(k) * sin
    k = repeat_kv(k, n_heads // n_kv)
    v = repeat_kv(v, n_heads // n_kv)
    scores = (q @ k.transpose(2, 3)) * hd ** -0.5
    causal = torch.triu(torch.ones(t, t, dtype=torch.bool), diagonal=1)
    scores = scores.masked_fill(causal, torch.finfo(scores.dtype).min)
    probs = torch.softmax(upcast(scores), dim=-1).to(q.dtype)
    attn = (probs @ v).transpose(1, 2).reshape(b, t, n_heads * hd)
    x = x + linear(attn, p, pre + "self_attn.o_proj")
    h = rms_norm(x, p[pre + "post_attention_layernorm.weight"], cfg["rms_norm_eps"])
    mlp = linear(torch.nn.functional.silu(linear(h, p, pre + "mlp.gate_proj")) * linear(h, p, pre + "mlp.up_proj"),
                 p, pre + "mlp.down_proj")
    return x + mlp


def forward(p, cfg, ids):
    """Returns (logits (B, T, V), hidden states dict)."""
    dtype = p["model.embed_tokens.weight"].dtype
    x = p["model.embed_tokens.weight"][ids]
    hidden = {"embed": x}
    cos, sin = rope_cos_sin(rope_inv_freq(cfg, cfg["head_dim"]), ids.shape[1], dtype)
    for i in range(cfg["num_hidden_layers"]):
        x = decoder_layer(x, p, i, cfg, cos, sin)
        hidden["layer.%d" % i] = x
    x = rms_norm(x, p["model.norm.weight"], cfg["rms_norm_eps"])
    hidden["norm"] = x
    head = p["model.embed_tokens.weight"] if cfg["tie_word_embeddings"] else p["lm_head.weight"]
    return x @ head.t(), hidden


def causal_lm_loss(logits, labels):
    # ForCausalLMLoss: logits in fp32, shift so position t predicts labels[t + 1], mean over labels != -100.
    logits = upcast(logits)
    shift_logits = logits[:, :-1, :].reshape(-1, logits.shape[-1])
    shift_labels = labels[:, 1:].reshape(-1)
    return torch.nn.functional.cross_entropy(shift_logits, shift_labels, ignore_index=-100, reduction="mean")


# ----------------------------------------------------------------------------------------------------------------
def parameter_shapes(cfg):
    c, hd, v, f = cfg["hidden_size"], cfg["head_dim"], cfg["vocab_size"], cfg["intermediate_size"]
    nq, nkv = cfg["num_attention_heads"] * hd, cfg["num_key_value_heads"] * hd
    shapes = {"model.embed_tokens.weight": (v, c)}
    for i in range(cfg["num_hidden_layers"]):
        pre = "model.layers.%d." % i
        shapes[pre + "input_layernorm.weight"] = (c,)
        shapes[pre + "self_attn.q_proj.weight"] = (nq, c)
        shapes[pre + "self_attn.k_proj.weight"] = (nkv, c)
        shapes[pre + "self_attn.v_proj.weight"] = (nkv, c)
        if cfg["qkv_bias"]:
            shapes[pre + "self_attn.q_proj.bias"] = (nq,)
            shapes[pre + "self_attn.k_proj.bias"] = (nkv,)
            shapes[pre + "self_attn.v_proj.bias"] = (nkv,)
        shapes[pre + "self_attn.o_proj.weight"] = (c, nq)
        if cfg["o_bias"]:
            # LlamaAttention: o_proj = nn.Linear(..., bias=config.attention_bias); Qwen2Attention: never.
            shapes[pre + "self_attn.o_proj.bias"] = (c,)
        shapes[pre + "post_attention_layernorm.weight"] = (c,)
        shapes[pre + "mlp.gate_proj.weight"] = (f, c)
        shapes[pre + "mlp.up_proj.weight"] = (f, c)
        shapes[pre + "mlp.down_proj.weight"] = (c, f)
    shapes["model.norm.weight"] = (c,)
    if not cfg["tie_word_embeddings"]:
        shapes["lm_head.weight"] = (v, c)
    return shapes


def init_params(cfg, gen):
    # Larger than HF's initializer_range so the logits and gradients are far from trivial; norms around 1 and
    # biases non-zero so that a missing weight or bias shows up in the comparison.
    params = {}
    for name, shape in parameter_shapes(cfg).items():
        if name.endswith("layernorm.weight") or name == "model.norm.weight":
            t = 1.0 + 0.2 * torch.randn(shape, generator=gen)
        elif name.endswith(".bias"):
            t = 0.1 * torch.randn(shape, generator=gen)
        elif name == "model.embed_tokens.weight":
            t = 0.5 * torch.randn(shape, generator=gen)
        else:
            t = torch.randn(shape, generator=gen) / math.sqrt(shape[1])
        params[name] = t.float()
    return params


def full_config(cfg):
    """The resolved config the re-implementation uses (head_dim and kv heads defaulted as LlamaConfig does)."""
    r = dict(cfg)
    r.setdefault("num_key_value_heads", r["num_attention_heads"])
    r.setdefault("head_dim", r["hidden_size"] // r["num_attention_heads"])
    r.setdefault("rms_norm_eps", 1e-6)
    r.setdefault("tie_word_embeddings", False)
    # Qwen2Attention hard-codes bias=True on q/k/v and none on o_proj; LlamaAttention uses attention_bias for all four.
    r["qkv_bias"] = r["model_type"] == "qwen2" or r.get("attention_bias", False)
    r["o_bias"] = r["model_type"] == "llama" and r.get("attention_bias", False)
    return r


def max_rel(a, b):
    return ((a.double() - b.double()).abs().max() / b.double().abs().max()).item()


def make(name, cfg, seed, batch, seq_len, shard_groups=None, low_precision_copies=False):
    folder = os.path.join(OUT, name)
    os.makedirs(os.path.join(folder, "expected"), exist_ok=True)
    with open(os.path.join(folder, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2)
        f.write("\n")
    rc = full_config(cfg)
    gen = torch.Generator().manual_seed(seed)
    params32 = init_params(rc, gen)
    save_safetensors(os.path.join(folder, "model.safetensors"), params32)

    ids = torch.randint(0, rc["vocab_size"], (batch, seq_len), generator=gen)
    labels = ids.clone()
    labels[0, :4] = -100                      # a masked prompt
    labels[1, 5] = -100                       # and scattered masked positions
    labels[1, 9] = -100
    labels[batch - 1, seq_len - 1] = -100     # the last label is never used after the shift anyway

    # float64 forward/backward from the fp32 weights: the expected values.
    p = {k: v.double().requires_grad_(True) for k, v in params32.items()}
    logits, hidden = forward(p, rc, ids)
    loss = causal_lm_loss(logits, labels)
    loss.backward()
    save_safetensors(os.path.join(folder, "expected", "logits.safetensors"), {"logits": logits.detach().float()})
    save_safetensors(os.path.join(folder, "expected", "hidden.safetensors"),
                     {k: v.detach().float() for k, v in hidden.items()})
    save_safetensors(os.path.join(folder, "expected", "grads.safetensors"),
                     {k: v.grad.float() for k, v in p.items()})

    # The fp32 noise floor: the same computation in float32.
    p32 = {k: v.clone().requires_grad_(True) for k, v in params32.items()}
    logits32, _ = forward(p32, rc, ids)
    loss32 = causal_lm_loss(logits32, labels)
    loss32.backward()
    grad_err = max(max_rel(p32[k].grad, p[k].grad) for k in p)
    print("%s: loss %.8f; fp32 vs fp64: logits max rel %.2e, loss rel %.2e, grads max rel %.2e"
          % (name, loss.item(), max_rel(logits32, logits), abs(loss32.item() / loss.item() - 1), grad_err))

    # AdamW steps in float64 with torch.optim.AdamW (the parameter order does not matter: AdamW is per element).
    pa = {k: v.double().clone().requires_grad_(True) for k, v in params32.items()}
    opt = torch.optim.AdamW(list(pa.values()), lr=1e-2, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01)
    losses = []
    for _ in range(5):
        opt.zero_grad()
        step_loss = causal_lm_loss(forward(pa, rc, ids)[0], labels)
        losses.append(step_loss.item())
        step_loss.backward()
        opt.step()
    with torch.no_grad():
        losses.append(causal_lm_loss(forward(pa, rc, ids)[0], labels).item())
    print("%s: AdamW losses %s" % (name, " ".join("%.6f" % l for l in losses)))

    # `finetune eval` semantics on the first row: windows of eval_seq inputs advancing by eval_seq, each window
    # predicting its next tokens from its own context only; the mean cross-entropy over all predictions.
    eval_seq = 6
    row = ids[0]
    ce_sum, ce_count = 0.0, 0
    with torch.no_grad():
        p64 = {k: v.double() for k, v in params32.items()}
        for start in range(0, row.numel() - 1, eval_seq):
            window = row[start:start + eval_seq + 1][None, :]
            window_logits = forward(p64, rc, window[:, :-1])[0]
            ce_sum += torch.nn.functional.cross_entropy(window_logits[0], window[0, 1:], reduction="sum").item()
            ce_count += window.shape[1] - 1
    eval_mean = ce_sum / ce_count
    print("%s: eval (row 0, seq %d): %d predictions, mean CE %.8f" % (name, eval_seq, ce_count, eval_mean))

    with open(os.path.join(folder, "expected", "inputs.json"), "w") as f:
        json.dump({"input_ids": ids.tolist(), "labels": labels.tolist(), "loss": loss.item(),
                   "eval": {"row": 0, "seq": eval_seq, "predictions": ce_count, "mean_cross_entropy": eval_mean},
                   "adamw": {"lr": 1e-2, "beta1": 0.9, "beta2": 0.999, "eps": 1e-8, "weight_decay": 0.01},
                   "adamw_losses": losses}, f, indent=1)
        f.write("\n")

    if shard_groups is not None:
        sharded = os.path.join(OUT, name + "_sharded")
        os.makedirs(sharded, exist_ok=True)
        with open(os.path.join(sharded, "config.json"), "w") as f:
            json.dump(cfg, f, indent=2)
            f.write("\n")
        save_sharded(sharded, params32, shard_groups(rc))

    if low_precision_copies:
        for suffix, dtype, label in (("_bf16", torch.bfloat16, "bfloat16"), ("_f16", torch.float16, "float16")):
            copy = os.path.join(OUT, name + suffix)
            os.makedirs(copy, exist_ok=True)
            with open(os.path.join(copy, "config.json"), "w") as f:
                json.dump(dict(cfg, torch_dtype=label), f, indent=2)
                f.write("\n")
            # torch's round-to-nearest-even conversion; FineTune's fp32 -> bf16/f16 cast must give the same bits.
            save_safetensors(os.path.join(copy, "model.safetensors"), {k: v.to(dtype) for k, v in params32.items()})


def main():
    # (A) GQA, tied embeddings, default RoPE.
    make("llama_gqa_tied", {
        "architectures": ["LlamaForCausalLM"],
        "model_type": "llama",
        "vocab_size": 128,
        "hidden_size": 32,
        "intermediate_size": 64,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "max_position_embeddings": 64,
        "rms_norm_eps": 1e-5,
        "rope_theta": 10000.0,
        "tie_word_embeddings": True,
        "bos_token_id": 1,
        "eos_token_id": 2,
        "torch_dtype": "float32",
    }, seed=1234, batch=2, seq_len=16, low_precision_copies=True)

    # (B) untied, q/k/v biases, head_dim 16 with hidden 32 / 4 heads, llama3 rope scaling. head_dim 16 gives 8
    # frequencies with wavelengths 6.3 .. 19869; original_max_position_embeddings 64 with low/high factors 1/4
    # puts them in all three llama3 regions (kept < 16, smoothed 16..64, divided by factor > 64).
    def shards(rc):
        names = list(parameter_shapes(rc))
        layer1 = [n for n in names if n.startswith("model.layers.1.")]
        first = [n for n in names if n == "model.embed_tokens.weight" or n.startswith("model.layers.0.")]
        return [first, layer1, ["model.norm.weight", "lm_head.weight"]]

    make("llama_bias_llama3", {
        "architectures": ["LlamaForCausalLM"],
        "model_type": "llama",
        "vocab_size": 96,
        "hidden_size": 32,
        "intermediate_size": 48,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "head_dim": 16,
        "max_position_embeddings": 256,
        "rms_norm_eps": 1e-6,
        "attention_bias": True,
        "mlp_bias": False,
        "tie_word_embeddings": False,
        "rope_theta": 10000.0,
        "rope_scaling": {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                         "original_max_position_embeddings": 64},
        "bos_token_id": 1,
        "eos_token_id": [2, 3],
        "torch_dtype": "float32",
    }, seed=5678, batch=2, seq_len=16, shard_groups=shards)

    # (C) Qwen2: q/k/v biases without an o_proj bias, 4 query heads on 1 KV head, tied, rope_theta 1e6.
    make("qwen2_tiny", {
        "architectures": ["Qwen2ForCausalLM"],
        "model_type": "qwen2",
        "vocab_size": 64,
        "hidden_size": 32,
        "intermediate_size": 48,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "num_key_value_heads": 1,
        "max_position_embeddings": 128,
        "rms_norm_eps": 1e-6,
        "rope_theta": 1000000.0,
        "tie_word_embeddings": True,
        "use_sliding_window": False,
        "sliding_window": 32,
        "bos_token_id": 60,
        "eos_token_id": 61,
        "torch_dtype": "float32",
    }, seed=9012, batch=2, seq_len=16)


# ----------------------------------------------------------------------------------------------------------------
# --check-export: an independent reader for a folder `finetune export` wrote (config.json, model.safetensors or
# shards + index, HF names), whose forward must reproduce a fixture's expected logits.
ST_FROM_NAME = {"F32": (torch.float32, 4), "F16": (torch.float16, 2), "BF16": (torch.bfloat16, 2), "F64": (torch.float64, 8)}


def load_safetensors(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n).decode("utf-8"))
        data = f.read()
    tensors = {}
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        dtype, _ = ST_FROM_NAME[entry["dtype"]]
        begin, end = entry["data_offsets"]
        raw = bytearray(data[begin:end])
        if dtype == torch.bfloat16:
            t = torch.frombuffer(raw, dtype=torch.int16).view(torch.bfloat16)
        else:
            t = torch.frombuffer(raw, dtype=dtype)
        tensors[name] = t.reshape(entry["shape"]).clone()
    return tensors


def check_export(folder, fixture):
    with open(os.path.join(folder, "config.json")) as f:
        cfg = json.load(f)
    index_path = os.path.join(folder, "model.safetensors.index.json")
    params = {}
    if os.path.exists(index_path):
        with open(index_path) as f:
            shards = sorted(set(json.load(f)["weight_map"].values()))
        for shard in shards:
            params.update(load_safetensors(os.path.join(folder, shard)))
    else:
        params = load_safetensors(os.path.join(folder, "model.safetensors"))
    rc = full_config(cfg)
    assert sorted(params) == sorted(parameter_shapes(rc)), "tensor names differ from the HF table"
    expected_dir = os.path.join(OUT, fixture, "expected")
    with open(os.path.join(expected_dir, "inputs.json")) as f:
        ids = torch.tensor(json.load(f)["input_ids"])
    logits, _ = forward({k: v.double() for k, v in params.items()}, rc, ids)
    expected = load_safetensors(os.path.join(expected_dir, "logits.safetensors"))["logits"]
    print("%s: %d tensors (%s), logits max rel error vs %s: %.2e"
          % (folder, len(params), sorted({str(v.dtype) for v in params.values()}), fixture, max_rel(logits, expected)))


if __name__ == "__main__":
    import sys
    if len(sys.argv) == 4 and sys.argv[1] == "--check-export":
        check_export(sys.argv[2], sys.argv[3])
    else:
        main()
