#!/usr/bin/env python3
"""Goldens for the Tensors kernels (Tests/Fixtures/kernels/*.npz), computed with PyTorch on small random inputs.

Run with the reference environment:  /opt/postersim-ref/bin/python tools/reference/make_kernel_fixtures.py
Deterministic: every case seeds its own torch.Generator. Arrays are float32, stored with np.savez_compressed,
keys `<case>__<array>` (see notes/FIXTURES.md). Integer parameters are stored as int64 arrays next to the data.
"""
import os

import numpy as np
import torch
import torch.nn.functional as F

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "Tests", "Fixtures", "kernels")
torch.set_num_threads(1)


def gen(seed):
    return torch.Generator().manual_seed(seed)


def randn(g, *shape):
    return torch.randn(*shape, generator=g, dtype=torch.float32)


def to_np(t):
    return t.detach().contiguous().numpy().astype(np.float32)


def save(name, arrays):
    os.makedirs(OUT, exist_ok=True)
    path = os.path.join(OUT, name + ".npz")
    np.savez_compressed(path, **arrays)
    print(f"{path}: {len(arrays)} arrays, {os.path.getsize(path)} bytes")


def conv_fixtures():
    out = {}
    # name, x shape, weight shape, stride, padding, bias, relu
    cases = [
        ("stem7x7s2", (2, 3, 23, 19), (8, 3, 7, 7), 2, 3, True, True),
        ("conv3x3", (2, 16, 9, 11), (32, 16, 3, 3), 1, 1, True, False),
        ("conv3x3s2", (1, 16, 10, 10), (16, 16, 3, 3), 2, 1, True, True),
        ("conv1x1", (2, 32, 6, 5), (24, 32, 1, 1), 1, 0, False, True),
        ("conv1x1s2", (2, 24, 7, 7), (40, 24, 1, 1), 2, 0, False, False),
        ("fc7x7", (2, 8, 7, 7), (20, 8, 7, 7), 1, 0, True, True),
    ]
    for i, (name, xs, ws, stride, pad, has_bias, relu) in enumerate(cases):
        g = gen(100 + i)
        x, w = randn(g, *xs), randn(g, *ws) * (2.0 / np.prod(ws[1:])) ** 0.5
        b = randn(g, ws[0]) if has_bias else None
        y = F.conv2d(x, w, b, stride=stride, padding=pad)
        if relu:
            y = F.relu(y)
        out.update({f"{name}__x": to_np(x), f"{name}__weight": to_np(w), f"{name}__y": to_np(y),
                    f"{name}__params": np.array([stride, pad, int(relu)], dtype=np.int64)})
        if b is not None:
            out[f"{name}__bias"] = to_np(b)

    # Conv without bias + eval-mode BatchNorm2d + ReLU (ResNet's ResNetConvLayer), reference by torch modules.
    g = gen(200)
    conv = torch.nn.Conv2d(8, 16, 3, stride=1, padding=1, bias=False)
    bn = torch.nn.BatchNorm2d(16, eps=1e-5)
    with torch.no_grad():
        conv.weight.copy_(randn(g, 16, 8, 3, 3) * 0.3)
        bn.weight.copy_(randn(g, 16).abs() + 0.5)
        bn.bias.copy_(randn(g, 16))
        bn.running_mean.copy_(randn(g, 16))
        bn.running_var.copy_(torch.rand(16, generator=g) * 2 + 0.1)
    bn.eval()
    x = randn(g, 2, 8, 8, 8)
    with torch.no_grad():
        y = F.relu(bn(conv(x)))
    out.update({"bn__x": to_np(x), "bn__weight": to_np(conv.weight), "bn__gamma": to_np(bn.weight),
                "bn__beta": to_np(bn.bias), "bn__mean": to_np(bn.running_mean), "bn__var": to_np(bn.running_var),
                "bn__y": to_np(y), "bn__eps": np.array([bn.eps], dtype=np.float32)})

    # Bottleneck-style chain: relu(conv1x1(relu(conv3x3(x))) + shortcut), shortcut = x (blocked layouts kept
    # between layers, residual fused as a sum post-op).
    g = gen(300)
    x = randn(g, 2, 16, 6, 6)
    w1, b1 = randn(g, 16, 16, 3, 3) * 0.2, randn(g, 16)
    w2, b2 = randn(g, 16, 16, 1, 1) * 0.3, randn(g, 16)
    h = F.relu(F.conv2d(x, w1, b1, padding=1))
    y = F.relu(F.conv2d(h, w2, b2) + x)
    out.update({"residual__x": to_np(x), "residual__w1": to_np(w1), "residual__b1": to_np(b1),
                "residual__w2": to_np(w2), "residual__b2": to_np(b2), "residual__y": to_np(y)})
    save("conv", out)


def pool_fixtures():
    out = {}
    for i, (name, xs, k, s, p) in enumerate([("max3s2p1", (2, 8, 11, 11), 3, 2, 1),
                                             ("max2s2", (1, 20, 9, 8), 2, 2, 0)]):
        x = randn(gen(400 + i), *xs)
        out.update({f"{name}__x": to_np(x), f"{name}__y": to_np(F.max_pool2d(x, k, s, p)),
                    f"{name}__params": np.array([k, s, p], dtype=np.int64)})
    for i, (name, xs, os_) in enumerate([("avg10x13to7", (2, 3, 10, 13), (7, 7)), ("avg5to7", (1, 2, 5, 5), (7, 7)),
                                         ("avg7to1", (2, 4, 7, 7), (1, 1)), ("avg7to7", (1, 3, 7, 7), (7, 7)),
                                         ("avg11x6to3x4", (1, 2, 11, 6), (3, 4))]):
        x = randn(gen(500 + i), *xs)
        out.update({f"{name}__x": to_np(x), f"{name}__y": to_np(F.adaptive_avg_pool2d(x, os_)),
                    f"{name}__size": np.array(os_, dtype=np.int64)})
    save("pool", out)


def linear_fixtures():
    out = {}
    g = gen(600)
    x, w, b = randn(g, 5, 20), randn(g, 12, 20) * 0.3, randn(g, 12)
    out.update({"linear__x": to_np(x), "linear__weight": to_np(w), "linear__bias": to_np(b)})
    lin = F.linear(x, w, b)
    out["linear__y"] = to_np(lin)
    out["linear__relu"] = to_np(F.relu(lin))
    out["linear__gelu"] = to_np(F.gelu(lin))
    out["linear__quick_gelu"] = to_np(lin * torch.sigmoid(1.702 * lin))
    x3 = randn(g, 2, 3, 20)
    out.update({"linear3d__x": to_np(x3), "linear3d__y": to_np(F.linear(x3, w, None))})
    save("linear", out)


def elementwise_fixtures():
    g = gen(700)
    a, b = randn(g, 2, 5, 7, 3), randn(g, 2, 5, 7, 3)
    big = randn(g, 2, 33000) * 3      # >= 65536 values: exercises the two-core path of the SIMD loops
    small = randn(g, 3, 1000) * 3
    x = randn(g, 3, 5, 24) * 2 + 0.5
    gamma, beta = randn(g, 24), randn(g, 24)
    s = randn(g, 4, 7, 13) * 3
    save("elementwise", {
        "add__a": to_np(a), "add__b": to_np(b), "add__y": to_np(a + b),
        "relu__x": to_np(big), "relu__y": to_np(F.relu(big)),
        "gelu__x": to_np(small), "gelu__y": to_np(F.gelu(small)),
        "quick_gelu__x": to_np(small), "quick_gelu__y": to_np(small * torch.sigmoid(1.702 * small)),
        "layer_norm__x": to_np(x), "layer_norm__weight": to_np(gamma), "layer_norm__bias": to_np(beta),
        "layer_norm__y": to_np(F.layer_norm(x, (24,), gamma, beta, eps=1e-5)),
        "softmax__x": to_np(s), "softmax__y": to_np(torch.softmax(s, dim=-1)),
    })


def attention_fixtures():
    g = gen(800)
    batch, tokens, d, heads = 2, 7, 32, 4
    x = randn(g, batch, tokens, d)
    ws = {n: randn(g, d, d) * d ** -0.5 for n in "qkvo"}
    bs = {n: randn(g, d) * 0.1 for n in "qkvo"}

    def reference(causal):
        def split(t):
            return t.view(batch, tokens, heads, d // heads).transpose(1, 2)
        q, k, v = (split(F.linear(x, ws[n], bs[n])) for n in "qkv")
        o = F.scaled_dot_product_attention(q, k, v, is_causal=causal)   # scale = head_dim ** -0.5
        return F.linear(o.transpose(1, 2).reshape(batch, tokens, d), ws["o"], bs["o"])

    out = {"attention__x": to_np(x), "attention__heads": np.array([heads], dtype=np.int64),
           "attention__y": to_np(reference(False)), "attention__y_causal": to_np(reference(True))}
    for n in "qkvo":
        out[f"attention__{n}_weight"] = to_np(ws[n])
        out[f"attention__{n}_bias"] = to_np(bs[n])
    save("attention", out)


if __name__ == "__main__":
    with torch.no_grad():
        conv_fixtures()
        pool_fixtures()
        linear_fixtures()
        elementwise_fixtures()
        attention_fixtures()
