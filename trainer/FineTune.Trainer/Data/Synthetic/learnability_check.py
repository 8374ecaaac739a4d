#!/usr/bin/python3
# Learnability check of the synthetic "reverse" task (not part of the build): trains a tiny causal transformer in
# PyTorch on `finetune data synth --out rev.jsonl --count 5200` with the byte tokenizer's ids (BOS 256, EOS 257,
# PAD 258) and the Compact template ("reverse: abc\n" -> "cba" EOS), then measures exact greedy accuracy on the
# last 50 records (never trained on).
# Run: /usr/bin/python3 learnability_check.py rev.jsonl SECONDS D_MODEL LAYERS
# Measured 2026-11-22 on the shared dev machine (2 cores, load average ~25, 1 torch thread), batch 32, AdamW 2e-3,
# d=64, 2 layers, 134,144 params: step 200 loss 2.51 acc 0.00; step 400 loss 0.099 acc 0.68; step 600 loss 0.005
# acc 1.00 (406 s wall under that load). The model uses learned absolute positions and LayerNorm, not Llama's RoPE
# and RMSNorm, so it shows the task is learnable fast, not that FineTune's Llama learns it.
import json, math, sys, time, torch, torch.nn as nn, torch.nn.functional as F
torch.set_num_threads(1); torch.manual_seed(0)
BOS, EOS, PAD, V, T = 256, 257, 258, 259, 32
def encode(r):
    p = [BOS] + list(f"{r['instruction']}: {r['input']}\n".encode()); a = list(r['output'].encode()) + [EOS]
    return p, a
recs = [json.loads(l) for l in open(sys.argv[1])]
train, test = recs[:-200], recs[-50:]
def batch(rs):
    X = torch.full((len(rs), T), PAD); Y = torch.full((len(rs), T), -100)
    for i, r in enumerate(rs):
        p, a = encode(r); ids = p + a; lab = [-100]*len(p) + a
        X[i, :len(ids)-1] = torch.tensor(ids[:-1]); Y[i, :len(ids)-1] = torch.tensor(lab[1:])
    return X, Y
class Block(nn.Module):
    def __init__(s, d, h):
        super().__init__(); s.h = h; s.n1 = nn.LayerNorm(d); s.qkv = nn.Linear(d, 3*d, bias=False); s.o = nn.Linear(d, d, bias=False)
        s.n2 = nn.LayerNorm(d); s.up = nn.Linear(d, 4*d, bias=False); s.down = nn.Linear(4*d, d, bias=False)
    def forward(s, x):
        B, L, D = x.shape; q, k, v = s.qkv(s.n1(x)).view(B, L, 3, s.h, D//s.h).permute(2, 0, 3, 1, 4)
        att = (q @ k.transpose(-1, -2)) / math.sqrt(D//s.h); att = att.masked_fill(torch.triu(torch.ones(L, L, dtype=torch.bool), 1), -1e9)
        x = x + s.o((att.softmax(-1) @ v).transpose(1, 2).reshape(B, L, D)); return x + s.down(F.silu(s.up(s.n2(x))))
class M(nn.Module):
    def __init__(s, d=128, n=4, h=4):
        super().__init__(); s.e = nn.Embedding(V, d); s.p = nn.Embedding(T, d); s.b = nn.ModuleList(Block(d, h) for _ in range(n)); s.n = nn.LayerNorm(d); s.out = nn.Linear(d, V, bias=False)
    def forward(s, x):
        h = s.e(x) + s.p(torch.arange(x.shape[1]))
        for b in s.b: h = b(h)
        return s.out(s.n(h))
m = M(int(sys.argv[3]), int(sys.argv[4])); print('params', sum(p.numel() for p in m.parameters()))
opt = torch.optim.AdamW(m.parameters(), lr=2e-3, weight_decay=0.0)
def accuracy():
    m.eval(); right = 0
    with torch.no_grad():
        for r in test:
            ids, _ = encode(r)
            for _ in range(12):
                nxt = m(torch.tensor([ids]))[0, -1].argmax().item(); ids.append(nxt)
                if nxt == EOS: break
            gen = ids[len(encode(r)[0]):]
            right += EOS in gen and bytes(gen[:gen.index(EOS)]).decode(errors='replace') == r['output']
    m.train(); return right / len(test)
t0 = time.time(); step = 0
while time.time() - t0 < float(sys.argv[2]):
    idx = torch.randint(len(train), (32,)); X, Y = batch([train[i] for i in idx])
    loss = F.cross_entropy(m(X).view(-1, V), Y.view(-1), ignore_index=-100); opt.zero_grad(); loss.backward(); opt.step(); step += 1
    if step % 200 == 0: print(f'{time.time()-t0:.0f}s step {step} loss {loss.item():.3f} acc {accuracy():.2f}', flush=True)
print(f'final {time.time()-t0:.0f}s step {step} loss {loss.item():.3f} acc {accuracy():.2f}')
