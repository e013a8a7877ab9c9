#!/usr/bin/env python3
"""The PyTorch side of the GPU check: the same iteration `stylize bench --network vgg19` times.

VGG-19's 16 convolutions with random weights (He init; fixed seed), average pooling, forward to
relu5_1; content loss 1/2 sum (F - P)^2 on relu4_2; style loss sum_l 0.2 * sum (G - A)^2 /
(4 N^2 M^2) on relu1_1 ... relu5_1 (sums in float64, as the C# losses); alpha = 1, beta = 1e3;
backward to the pixels; one torch.optim.LBFGS step (history 100, lr 1, no line search) per
iteration; white-noise start. Timed per iteration with a device synchronisation (the C# loop
reads the loss back once per evaluation, which synchronises too); the first iteration is a
warm-up. One line per case, in the C# bench's format:
    pytorch vgg19 512 ms=... min_ms=... gflop_per_iter=... gflops=... device=cuda precision=fp32

usage: gpu_reference.py [--sizes 512,1024] [-n 20] [--precision fp32|bf16|fp16] [--device cuda]
bf16/fp16 use torch.autocast around the network only (Grams and losses in float32/float64).
"""
import argparse
import statistics
import time

import torch
import torch.nn.functional as F

WIDTHS = [64, 64, 128, 128, 256, 256, 256, 256, 512, 512, 512, 512, 512, 512, 512, 512]
BLOCKS = [2, 2, 4, 4, 4]
STYLE = ["relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1"]
CONTENT = "relu4_2"
MEAN = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
STD = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)


def make_weights(device):
    g = torch.Generator().manual_seed(1)
    ws, cin = [], 3
    for cout in WIDTHS:
        w = torch.randn(cout, cin, 3, 3, generator=g) * (2.0 / (cout * 9)) ** 0.5
        ws.append((w.to(device), torch.zeros(cout, device=device)))
        cin = cout
    return ws


def features(x, ws, mean, std, taps):
    out, i = {}, 0
    x = (x - mean) / std
    deepest = max(taps, key=lambda t: tuple(int(v) for v in t[4:].split("_")))
    for b, n in enumerate(BLOCKS, 1):
        for k in range(1, n + 1):
            w, bias = ws[i]
            i += 1
            x = F.relu(F.conv2d(x, w, bias, padding=1))
            name = f"relu{b}_{k}"
            if name in taps:
                out[name] = x
            if name == deepest:
                return out
        x = F.avg_pool2d(x, 2, 2)
    return out


def gram(f):
    n = f.shape[1]
    f = f.reshape(n, -1)
    return f @ f.t()


def gflop(size):
    flop, cin, h = 0.0, 3, size
    conv = 0
    for b, n in enumerate(BLOCKS, 1):
        for k in range(1, n + 1):
            flop += 2 * 2 * cin * WIDTHS[conv] * 9 * h * h
            cin = WIDTHS[conv]
            conv += 1
            if (b, k) == (5, 1):
                return flop / 1e9
        h //= 2
    return flop / 1e9


def run(size, n, precision, device):
    ws = make_weights(device)
    mean, std = MEAN.to(device), STD.to(device)
    g = torch.Generator().manual_seed(2)
    content = torch.rand(1, 3, size, size, generator=g).to(device)
    style = torch.rand(1, 3, size, size, generator=g).to(device)
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision)

    def net(x, taps):
        if dtype is None:
            return features(x, ws, mean, std, taps)
        with torch.autocast(device_type=device.split(":")[0], dtype=dtype):
            return {k: v.float() for k, v in features(x, ws, mean, std, taps).items()}

    with torch.no_grad():
        p = net(content, {CONTENT})[CONTENT]
        sf = net(style, set(STYLE))
        targets = {k: (gram(v), v.shape[2] * v.shape[3]) for k, v in sf.items()}
    x = torch.rand(1, 3, size, size, generator=torch.Generator().manual_seed(3)).to(device).requires_grad_(True)
    opt = torch.optim.LBFGS([x], lr=1, max_iter=1, history_size=100)

    def closure():
        opt.zero_grad()
        f = net(x, set(STYLE) | {CONTENT})
        lc = 0.5 * (f[CONTENT] - p).square().sum(dtype=torch.float64)
        ls = 0
        for t in STYLE:
            a, ms = targets[t]
            nch, m = f[t].shape[1], f[t].shape[2] * f[t].shape[3]
            ls = ls + 0.2 * (gram(f[t]) - a * (m / ms)).square().sum(dtype=torch.float64) / (4.0 * nch * nch * m * m)
        loss = lc + 1e3 * ls
        loss.backward()
        return loss

    times, loss = [], None
    for i in range(n + 1):
        torch.cuda.synchronize() if device.startswith("cuda") else None
        t0 = time.perf_counter()
        loss = opt.step(closure)
        loss = float(loss)
        torch.cuda.synchronize() if device.startswith("cuda") else None
        if i > 0:
            times.append((time.perf_counter() - t0) * 1000)
    med = statistics.median(times)
    gf = gflop(size)
    print(f"pytorch vgg19 {size} ms={med:.1f} min_ms={min(times):.1f} gflop_per_iter={gf:.1f} gflops={gf / (med / 1000):.1f} "
          f"iters={n} device={device} precision={precision} final_loss={loss:.6g} torch={torch.__version__}", flush=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="512,1024")
    ap.add_argument("-n", type=int, default=20)
    ap.add_argument("--precision", default="fp32", choices=["fp32", "bf16", "fp16"])
    ap.add_argument("--device", default="cuda")
    a = ap.parse_args()
    for s in a.sizes.split(","):
        run(int(s), a.n, a.precision, a.device)


if __name__ == "__main__":
    main()
