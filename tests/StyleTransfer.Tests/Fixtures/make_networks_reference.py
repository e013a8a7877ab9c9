"""Parity fixtures for the AlexNet, GoogLeNet and ResNet-50 feature networks.

How to run (from the repository root; needs Debian's PyTorch 1.13 and torchvision 0.14, no internet):

    apt-get install -y python3-torch python3-torchvision && \
        /usr/bin/python3 tests/StyleTransfer.Tests/Fixtures/make_networks_reference.py

It takes about a minute on two cores. Outputs, written next to this script:

  alexnet_narrow.pth, googlenet_narrow.pth, resnet50_narrow.pth
        state dicts of torchvision's own model classes with every channel width divided by
        8 (AlexNet, GoogLeNet) or 16 (ResNet-50), saved straight from ``model.state_dict()``
        with torch.save, like torchvision's published files: the same key names, in the same
        order, including what the feature networks skip (AlexNet's ``classifier.*``,
        GoogLeNet's ``aux1.*``, ``aux2.*`` and ``fc.*``, ResNet-50's ``fc.*``) and the batch
        norms' ``num_batches_tracked``.
  resnet50_narrow_legacy.pth
        the same state dict as resnet50_narrow.pth in torch.save's legacy (pre-1.6, non-zip)
        format, which torchvision's older published files use (e.g. googlenet-1378be20.pth).
  alexnet_reference.safetensors, googlenet_reference.safetensors, resnet50_reference.safetensors
        the input ``x`` (1x3x64x80, RGB in [0,1]), the feature map at every tap
        (``features.<tap>``) and the gradient ``grad.x`` of sum over taps of mean(f^2)
        with respect to x.
  networks_full_layout.json
        for each network, torchvision's full-width state-dict layout (key -> shape) and
        the shape of every tap for a 1x3x112x160 input (odd sizes deep down, so ceil-mode
        pooling and stride-2 rounding are exercised), from torchvision's own full-width
        models (random init). The C# tests build full-width networks from random tensors of
        these shapes without committing the 100-250 MB files.

The narrow models are torchvision's classes with their submodules swapped for narrow ones
built from torchvision's own building blocks (AlexNet: the Conv2d/Linear of ``features`` and
``classifier``; GoogLeNet: ``BasicConv2d``, ``Inception``, ``InceptionAux``; ResNet-50:
``ResNet._make_layer`` with ``Bottleneck``), so the forward pass that records the taps is
torchvision's own. The script checks that each narrow state dict has exactly the keys (in
order) and kernel sizes of the full-width torchvision model.

Weights: convolutions kaiming-normal, biases U(-0.1, 0.1); batch norms calibrated on the
inputs (running statistics of a batch-statistics pass), then their affine parameters
randomised (gamma U(0.5, 1.5), beta U(-0.3, 0.3)) so that folding them is exercised.

Preprocessing, as torchvision's weights transforms do it: ImageNet mean/std on RGB [0,1].
GoogLeNet is built with ``transform_input=True``, which torchvision sets when it loads the
pretrained ``googlenet-1378be20.pth``: it maps the normalised input back to (x - 0.5) / 0.5.

Taps (forward order) are the C# networks' names; their outputs are recorded with forward hooks
on torchvision's modules (cloned, because torchvision's ReLUs work in place). A float64 run of
the same models gives the float32 noise floor, printed as max|f32 - f64| / max|f64|.
"""

import copy
import json
import os
from collections import OrderedDict

import numpy as np
import torch
import torch.nn as nn
import importlib

from make_reference import write_safetensors  # same folder: one safetensors writer for both fixture scripts

# torchvision.models re-exports functions named like these modules: import the modules themselves.
tva = importlib.import_module("torchvision.models.alexnet")
tvg = importlib.import_module("torchvision.models.googlenet")
tvr = importlib.import_module("torchvision.models.resnet")

HERE = os.path.dirname(os.path.abspath(__file__))

IMAGENET_MEAN = [0.485, 0.456, 0.406]
IMAGENET_STD = [0.229, 0.224, 0.225]
X_SHAPE = (1, 3, 64, 80)
FULL_SHAPE = (1, 3, 112, 160)
NUM_CLASSES = 10

GOOGLENET_INCEPTIONS = [
    ("inception3a", 192, 64, 96, 128, 16, 32, 32),
    ("inception3b", 256, 128, 128, 192, 32, 96, 64),
    ("inception4a", 480, 192, 96, 208, 16, 48, 64),
    ("inception4b", 512, 160, 112, 224, 24, 64, 64),
    ("inception4c", 512, 128, 128, 256, 24, 64, 64),
    ("inception4d", 512, 112, 144, 288, 32, 64, 64),
    ("inception4e", 528, 256, 160, 320, 32, 128, 128),
    ("inception5a", 832, 256, 160, 320, 32, 128, 128),
    ("inception5b", 832, 384, 192, 384, 48, 128, 128),
]
RESNET50_BLOCKS = [3, 4, 6, 3]


# --------------------------------------------------------------------------------------
# Narrow models from torchvision's own classes
# --------------------------------------------------------------------------------------

def narrow_alexnet(div):
    m = tva.AlexNet(num_classes=NUM_CLASSES)
    w = [64 // div, 192 // div, 384 // div, 256 // div, 256 // div]
    f = m.features
    f[0] = nn.Conv2d(3, w[0], kernel_size=11, stride=4, padding=2)
    f[3] = nn.Conv2d(w[0], w[1], kernel_size=5, padding=2)
    f[6] = nn.Conv2d(w[1], w[2], kernel_size=3, padding=1)
    f[8] = nn.Conv2d(w[2], w[3], kernel_size=3, padding=1)
    f[10] = nn.Conv2d(w[3], w[4], kernel_size=3, padding=1)
    hidden = 4096 // (16 * div)
    m.classifier[1] = nn.Linear(w[4] * 6 * 6, hidden)
    m.classifier[4] = nn.Linear(hidden, hidden)
    m.classifier[6] = nn.Linear(hidden, NUM_CLASSES)
    return m


def full_alexnet():
    return tva.AlexNet()


def narrow_googlenet(div):
    m = tvg.GoogLeNet(num_classes=NUM_CLASSES, aux_logits=True, transform_input=True, init_weights=False)
    d = lambda c: c // div  # noqa: E731
    m.conv1 = tvg.BasicConv2d(3, d(64), kernel_size=7, stride=2, padding=3)
    m.conv2 = tvg.BasicConv2d(d(64), d(64), kernel_size=1)
    m.conv3 = tvg.BasicConv2d(d(64), d(192), kernel_size=3, padding=1)
    for name, *widths in GOOGLENET_INCEPTIONS:
        setattr(m, name, tvg.Inception(*[d(c) for c in widths]))
    for name, cin in (("aux1", 512), ("aux2", 528)):
        aux = tvg.InceptionAux(d(cin), NUM_CLASSES)
        aux.conv = tvg.BasicConv2d(d(cin), d(128), kernel_size=1)
        aux.fc1 = nn.Linear(d(128) * 16, d(1024))
        aux.fc2 = nn.Linear(d(1024), NUM_CLASSES)
        setattr(m, name, aux)
    m.fc = nn.Linear(d(1024), NUM_CLASSES)
    return m


def full_googlenet():
    # What torchvision.models.googlenet(weights=...) builds before loading googlenet-1378be20.pth.
    return tvg.GoogLeNet(aux_logits=True, transform_input=True, init_weights=False)


class NarrowResNet50(tvr.ResNet):
    """torchvision's ResNet.__init__ with every width divided by `div` (same modules, same names)."""

    def __init__(self, div):
        nn.Module.__init__(self)
        self._norm_layer = nn.BatchNorm2d
        self.inplanes = 64 // div
        self.dilation = 1
        self.groups = 1
        self.base_width = 64
        self.conv1 = nn.Conv2d(3, self.inplanes, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(self.inplanes)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.layer1 = self._make_layer(tvr.Bottleneck, 64 // div, RESNET50_BLOCKS[0])
        self.layer2 = self._make_layer(tvr.Bottleneck, 128 // div, RESNET50_BLOCKS[1], stride=2)
        self.layer3 = self._make_layer(tvr.Bottleneck, 256 // div, RESNET50_BLOCKS[2], stride=2)
        self.layer4 = self._make_layer(tvr.Bottleneck, 512 // div, RESNET50_BLOCKS[3], stride=2)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(512 // div * tvr.Bottleneck.expansion, NUM_CLASSES)


def narrow_resnet50(div):
    return NarrowResNet50(div)


def full_resnet50():
    return tvr.resnet50()


# --------------------------------------------------------------------------------------
# Taps through forward hooks
# --------------------------------------------------------------------------------------

def alexnet_taps(m):
    names = ["conv1", "relu1", "pool1", "conv2", "relu2", "pool2", "conv3", "relu3",
             "conv4", "relu4", "conv5", "relu5", "pool5"]
    return [(n, m.features[i]) for i, n in enumerate(names)]


def googlenet_taps(m):
    names = ["conv1", "maxpool1", "conv2", "conv3", "maxpool2", "inception3a", "inception3b", "maxpool3",
             "inception4a", "inception4b", "inception4c", "inception4d", "inception4e", "maxpool4",
             "inception5a", "inception5b"]
    return [(n, getattr(m, n)) for n in names]


def resnet50_taps(m):
    """(name, module) pairs; a Bottleneck's shared `relu` fires three times: relu1, relu2, output."""
    taps = [("conv1", m.bn1), ("relu1", m.relu), ("pool1", m.maxpool)]
    for s in range(1, 5):
        for b, block in enumerate(getattr(m, f"layer{s}")):
            taps.append(((f"layer{s}_{b}_relu1", f"layer{s}_{b}_relu2", f"layer{s}_{b}"), block.relu))
    return taps


def run_taps(model, taps, x):
    """Forward x (ImageNet-normalised inside) and return OrderedDict tap -> cloned output."""
    out = OrderedDict()
    fired = {}
    handles = []
    for name, module in taps:
        def hook(mod, inp, output, name=name):
            if isinstance(name, tuple):
                n = fired.get(id(mod), 0)
                fired[id(mod)] = n + 1
                out[name[n]] = output.clone()
            else:
                out[name] = output.clone()
        handles.append(module.register_forward_hook(hook))
    try:
        model(normalize(x))
    finally:
        for h in handles:
            h.remove()
    return out


def tap_order(taps):
    names = []
    for name, _ in taps:
        names += list(name) if isinstance(name, tuple) else [name]
    return names


def normalize(x):
    mean = torch.tensor(IMAGENET_MEAN, dtype=x.dtype).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD, dtype=x.dtype).view(1, 3, 1, 1)
    return (x - mean) / std


# --------------------------------------------------------------------------------------
# Weights
# --------------------------------------------------------------------------------------

def init_weights(model, calib, seed):
    torch.manual_seed(seed)
    with torch.no_grad():
        for mod in model.modules():
            if isinstance(mod, (nn.Conv2d, nn.Linear)):
                nn.init.kaiming_normal_(mod.weight, mode="fan_in", nonlinearity="relu")
                if mod.bias is not None:
                    nn.init.uniform_(mod.bias, -0.1, 0.1)
    bns = [mod for mod in model.modules() if isinstance(mod, nn.BatchNorm2d)]
    if not bns:
        return
    # Running statistics from one batch-statistics pass over the calibration images.
    model.eval()
    for bn in bns:
        bn.reset_running_stats()
        bn.momentum = None
        bn.train()
    with torch.no_grad():
        model(normalize(calib))
    model.eval()
    with torch.no_grad():
        for bn in bns:
            bn.momentum = 0.1
            nn.init.uniform_(bn.weight, 0.5, 1.5)
            nn.init.uniform_(bn.bias, -0.3, 0.3)


def make_inputs():
    g = torch.Generator().manual_seed(1)
    _, c, h, w = X_SHAPE
    yy = torch.linspace(0.0, 1.0, h).view(1, 1, h, 1)
    xx = torch.linspace(0.0, 1.0, w).view(1, 1, 1, w)
    ch = torch.arange(c, dtype=torch.float32).view(1, c, 1, 1)
    smooth = 0.5 + 0.3 * torch.sin(2 * np.pi * (1.5 * xx + 1.0 * yy) + ch)
    x = (smooth + 0.2 * (torch.rand(X_SHAPE, generator=g) - 0.5)).clamp(0, 1).float().contiguous()
    calib = torch.rand((4,) + X_SHAPE[1:], generator=g).float()
    return x, calib


# --------------------------------------------------------------------------------------
# Checks and output
# --------------------------------------------------------------------------------------

def check_layout(narrow, full, name):
    ns, fs = narrow.state_dict(), full.state_dict()
    assert list(ns.keys()) == list(fs.keys()), (name, [k for k in fs if k not in ns][:5], [k for k in ns if k not in fs][:5])
    for k in fs:
        a, b = ns[k], fs[k]
        assert a.dim() == b.dim() and a.dtype == b.dtype, (name, k)
        if a.dim() == 4:
            assert a.shape[2:] == b.shape[2:], (name, k, a.shape, b.shape)
    print(f"{name}: narrow layout has torchvision's {len(fs)} keys in order, same kernel sizes")


def grad_of_taps(model, taps, x):
    x = x.detach().clone().requires_grad_(True)
    feats = run_taps(model, taps, x)
    loss = sum(f.pow(2).mean() for f in feats.values())
    (g,) = torch.autograd.grad(loss, x)
    return loss.detach(), g.detach()


def rel_diff(a32, a64):
    return ((a32.double() - a64).abs().max() / a64.abs().max().clamp_min(1e-300)).item()


def make(name, narrow_fn, full_fn, taps_fn, div, seed, x, calib, layouts):
    narrow = narrow_fn(div)
    full = full_fn()
    check_layout(narrow, full, name)
    init_weights(narrow, calib, seed)
    narrow.eval()

    sd = narrow.state_dict()
    pth = os.path.join(HERE, f"{name}_narrow.pth")
    torch.save(sd, pth)
    loaded = torch.load(pth)
    assert list(loaded.keys()) == list(sd.keys()) and all(torch.equal(loaded[k], sd[k]) for k in sd)
    if name == "resnet50":
        legacy = os.path.join(HERE, f"{name}_narrow_legacy.pth")
        torch.save(sd, legacy, _use_new_zipfile_serialization=False)
        loaded = torch.load(legacy)
        assert list(loaded.keys()) == list(sd.keys()) and all(torch.equal(loaded[k], sd[k]) for k in sd)
        print(f"    {os.path.basename(legacy):34s} {os.path.getsize(legacy):8d} bytes")

    taps = taps_fn(narrow)
    order = tap_order(taps)
    with torch.no_grad():
        feats = run_taps(narrow, taps, x)
    assert list(feats.keys()) == order, (list(feats.keys()), order)
    loss, grad = grad_of_taps(narrow, taps, x)

    ref = OrderedDict()
    ref["x"] = x
    for tap, t in feats.items():
        ref[f"features.{tap}"] = t.contiguous()
    ref["grad.x"] = grad.contiguous()
    ref["loss"] = loss.reshape(1).float()
    refpath = os.path.join(HERE, f"{name}_reference.safetensors")
    write_safetensors(refpath, ref)

    # float64 noise floor
    n64 = copy.deepcopy(narrow).double().eval()
    with torch.no_grad():
        f64 = run_taps(n64, taps_fn(n64), x.double())
    _, g64 = grad_of_taps(n64, taps_fn(n64), x.double())
    worst = max(order, key=lambda t: rel_diff(feats[t], f64[t]))
    print(f"{name}: {len(order)} taps; float32 vs float64: features worst {worst} {rel_diff(feats[worst], f64[worst]):.2e}, "
          f"grad.x {rel_diff(grad, g64):.2e}")
    for tap in order:
        print(f"    {tap:22s} {tuple(feats[tap].shape)}  max|f| {feats[tap].abs().max().item():.3g}")

    # Full-width layout and tap shapes at 224x224.
    full.eval()
    with torch.no_grad():
        ffeats = run_taps(full, taps_fn(full), torch.rand(FULL_SHAPE))
    layouts[name] = {
        "divisor": div,
        "state_dict": OrderedDict((k, list(v.shape)) for k, v in full.state_dict().items()),
        "input": list(FULL_SHAPE),
        "taps": OrderedDict((t, list(ffeats[t].shape)) for t in order),
    }
    for p in (pth, refpath):
        print(f"    {os.path.basename(p):34s} {os.path.getsize(p):8d} bytes")


def main():
    torch.set_num_threads(2)
    torch.set_default_dtype(torch.float32)
    x, calib = make_inputs()
    layouts = OrderedDict()
    make("alexnet", narrow_alexnet, full_alexnet, alexnet_taps, 8, 10, x, calib, layouts)
    make("googlenet", narrow_googlenet, full_googlenet, googlenet_taps, 8, 11, x, calib, layouts)
    make("resnet50", narrow_resnet50, full_resnet50, resnet50_taps, 16, 12, x, calib, layouts)
    path = os.path.join(HERE, "networks_full_layout.json")
    with open(path, "w") as f:
        json.dump(layouts, f, indent=1)
        f.write("\n")
    print(f"{os.path.basename(path)}: {os.path.getsize(path)} bytes")


if __name__ == "__main__":
    main()
