#!/usr/bin/python3
# Generates adamw_reference.bin: PyTorch's own torch.optim.AdamW (1.13, _single_tensor_adamw, defaults
# lr 1e-3 scaled per step, betas (0.9, 0.999), eps 1e-8, weight_decay 0.01) run for 100 steps on gradients from a
# SplitMix64 stream that the C# test reproduces (tests/FineTune.Offload.Tests/Adam/SeededGradients.cs).
# Run offline with Debian's python3-torch:  /usr/bin/python3 adamw_reference.py
# Output: little-endian float32 arrays, each ELEMENTS long: initial params, then params after steps 1, 10, 100.
import struct
import torch

ELEMENTS = 4099          # not a multiple of 32: exercises the kernel's scalar tail
STEPS = 100
MASK = (1 << 64) - 1


def splitmix64(state):
    state = (state + 0x9E3779B97F4A7C15) & MASK
    z = state
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
    return state, z ^ (z >> 31)


def uniform_floats(seed, count):
    # u in [-1, 1): top 24 bits of each draw, exactly representable in float32.
    state, out = seed, []
    for _ in range(count):
        state, z = splitmix64(state)
        out.append(((z >> 40) / float(1 << 24)) * 2.0 - 1.0)
    return torch.tensor(out, dtype=torch.float32)


def learning_rate(step):
    return 1e-3 * (1.0 - step / 200.0)


param = torch.nn.Parameter(uniform_floats(1, ELEMENTS))
optimizer = torch.optim.AdamW([param])
snapshots = [param.detach().clone()]
for step in range(1, STEPS + 1):
    for group in optimizer.param_groups:
        group["lr"] = learning_rate(step)
    # Gradient magnitudes vary by element (scale 2^-(i % 8)) so v spans several orders of magnitude.
    scale = torch.tensor([2.0 ** -(i % 8) for i in range(ELEMENTS)], dtype=torch.float32)
    param.grad = uniform_floats(1000 + step, ELEMENTS) * scale
    optimizer.step()
    if step in (1, 10, 100):
        snapshots.append(param.detach().clone())

with open("adamw_reference.bin", "wb") as f:
    for s in snapshots:
        f.write(struct.pack("<%df" % ELEMENTS, *s.tolist()))
