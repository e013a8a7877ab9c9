"""Reference trajectories of PyTorch's torch.optim.LBFGS for the C# L-BFGS parity test.

Run (Debian 12): apt-get install -y python3-torch && /usr/bin/python3 tests/StyleTransfer.Tests/Fixtures/make_lbfgs_reference.py

Objective: the generalised Rosenbrock function over a 1x3x4x4 tensor (48 variables), in float64,
from a fixed start. One optimizer.step() per iteration with max_iter=1 (as the C# engine
iterates), lr=1, history_size=100, for plain steps and for line_search_fn="strong_wolfe"; and the
same with history_size=5 ("_h5"), where the history is full after 6 steps and wraps from then on.
Writes lbfgs_reference.json: the start point and, per mode, the loss at the start of each step
and the final point.
"""
import json
import os

import torch


def rosenbrock(x):
    v = x.reshape(-1)
    return (100.0 * (v[1:] - v[:-1] ** 2) ** 2 + (1.0 - v[:-1]) ** 2).sum()


def run(start, line_search, history=100, steps=40):
    x = start.clone().requires_grad_(True)
    opt = torch.optim.LBFGS([x], lr=1, max_iter=1, history_size=history,
                            tolerance_grad=1e-7, tolerance_change=1e-9,
                            line_search_fn="strong_wolfe" if line_search else None)
    losses = []
    for _ in range(steps):
        def closure():
            opt.zero_grad()
            loss = rosenbrock(x)
            loss.backward()
            return loss
        losses.append(float(opt.step(closure)))
    return losses, x.detach().reshape(-1).tolist()


def main():
    torch.manual_seed(0)
    start = (torch.rand(1, 3, 4, 4, dtype=torch.float64) * 2.0 - 1.0) * 0.8
    out = {"start": start.reshape(-1).tolist(), "shape": [1, 3, 4, 4]}
    for name, ls, history in (("plain", False, 100), ("strong_wolfe", True, 100),
                              ("plain_h5", False, 5), ("strong_wolfe_h5", True, 5)):
        losses, final = run(start, ls, history)
        out[name] = {"losses": losses, "final": final}
        print(name, "first", losses[0], "last", losses[-1])
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "lbfgs_reference.json")
    with open(path, "w") as f:
        json.dump(out, f, indent=1)
    print("wrote", path)


if __name__ == "__main__":
    main()
