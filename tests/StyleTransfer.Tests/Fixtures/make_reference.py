"""Generate small PyTorch reference fixtures for the StyleTransfer numeric parity tests.

How to run (from the repository root; needs PyTorch and torchvision, no internet):

    apt-get install -y python3-torch python3-torchvision && \
        /usr/bin/python3 tests/StyleTransfer.Tests/Fixtures/make_reference.py

Outputs, written next to this script:

  vgg19_narrow.pth           state dict of a "narrow" VGG-19 feature stack (torch.save, zip format)
  vgg19_narrow.safetensors   the same tensors, same keys, in safetensors format
  vgg19_reference.safetensors
                             inputs, per-tap features (avg and max pooling), Gram matrices,
                             Gatys et al. (2016) content/style/total losses, dL/dx, and a
                             squared-difference total-variation reference

The network has exactly torchvision's ``vgg19().features`` layout (same Sequential
indices, so keys are ``features.{i}.weight`` / ``features.{i}.bias``) but every channel
width is divided by 16 so the fixtures stay small. Everything is float32 and
deterministic. As a side check the whole computation is repeated in float64 and the
float32-vs-float64 relative differences are printed (not stored), which gives the float32
noise floor to use as test tolerances.

The safetensors files are written by hand (no ``safetensors`` package needed):
8-byte little-endian u64 header length, a UTF-8 JSON header padded with spaces to a
multiple of 8 bytes, then the raw little-endian tensor bytes, contiguous.
"""

import json
import os
import struct
from collections import OrderedDict

import numpy as np
import torch
import torch.nn as nn

HERE = os.path.dirname(os.path.abspath(__file__))

# VGG-19 ("E") configuration with channel widths divided by 16 (64->4, ..., 512->32).
NARROW_CFG = [4, 4, "M", 8, 8, "M", 16, 16, 16, 16, "M", 32, 32, 32, 32, "M", 32, 32, 32, 32, "M"]
CONV_INDICES = [0, 2, 5, 7, 10, 12, 14, 16, 19, 21, 23, 25, 28, 30, 32, 34]
POOL_INDICES = [4, 9, 18, 27, 36]

IMAGENET_MEAN = [0.485, 0.456, 0.406]
IMAGENET_STD = [0.229, 0.224, 0.225]

CONTENT_TAP = "relu4_2"
STYLE_TAPS = ["relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1"]
STYLE_WEIGHTS = [0.2] * len(STYLE_TAPS)
ALPHA = 1.0
BETA = 1000.0

CONTENT_SHAPE = (1, 3, 48, 64)
STYLE_SHAPE = (1, 3, 40, 56)
X_SHAPE = (1, 3, 48, 64)


# --------------------------------------------------------------------------------------
# Model
# --------------------------------------------------------------------------------------

def make_features(cfg, pooling):
    """torchvision.models.vgg.make_layers(cfg) without BN, with a choice of pooling.

    ReLUs are *not* in-place so that the conv outputs (pre-ReLU taps) survive.
    """
    layers = []
    in_channels = 3
    for v in cfg:
        if v == "M":
            layers.append(nn.AvgPool2d(2, 2) if pooling == "avg" else nn.MaxPool2d(2, 2))
        else:
            layers += [nn.Conv2d(in_channels, v, kernel_size=3, padding=1), nn.ReLU(inplace=False)]
            in_channels = v
    return nn.Sequential(*layers)


def tap_names(cfg):
    """Name of the output of every module in the Sequential, in forward order."""
    names = []
    block, k = 1, 0
    for v in cfg:
        if v == "M":
            names.append(f"pool{block}")
            block, k = block + 1, 0
        else:
            k += 1
            names += [f"conv{block}_{k}", f"relu{block}_{k}"]
    return names


TAPS = tap_names(NARROW_CFG)


def check_layout_against_torchvision(features):
    """The narrow stack must have exactly torchvision's vgg19 `features` layout."""
    import torchvision.models.vgg as tvvgg

    full_cfg = tvvgg.cfgs["E"]  # vgg19
    assert [v if v == "M" else v // 16 for v in full_cfg] == NARROW_CFG
    ref = tvvgg.make_layers(full_cfg, batch_norm=False)
    assert len(ref) == len(features) == len(TAPS) == 37
    for i, (a, b) in enumerate(zip(ref, features)):
        if isinstance(a, nn.Conv2d):
            assert isinstance(b, nn.Conv2d) and i in CONV_INDICES, i
            assert a.out_channels == 16 * b.out_channels, i
            assert (a.kernel_size, a.stride, a.padding) == (b.kernel_size, b.stride, b.padding), i
        elif isinstance(a, nn.MaxPool2d):
            assert isinstance(b, (nn.MaxPool2d, nn.AvgPool2d)) and i in POOL_INDICES, i
            assert (a.kernel_size, a.stride) == (b.kernel_size, b.stride) == (2, 2), i
        else:
            assert isinstance(a, nn.ReLU) and isinstance(b, nn.ReLU), i
    ref_keys = ["features." + k for k in ref.state_dict().keys()]
    our_keys = ["features." + k for k in features.state_dict().keys()]
    assert ref_keys == our_keys, (ref_keys, our_keys)
    assert [i for i, m in enumerate(features) if isinstance(m, nn.Conv2d)] == CONV_INDICES
    print("layout matches torchvision vgg19().features (indices, kernels, strides, keys)")


def init_weights(features):
    """Seeded init: kaiming-normal (fan_out, relu) weights, U(-0.1, 0.1) biases.

    Non-zero biases are deliberate: they catch a loader that drops or misplaces them.
    """
    torch.manual_seed(0)
    with torch.no_grad():
        for m in features:
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                m.weight.mul_(1.0)
                nn.init.uniform_(m.bias, -0.1, 0.1)


def build_state_dict(features):
    """Plain OrderedDict (no `_metadata` attribute) with keys features.{i}.weight/bias."""
    sd = OrderedDict()
    for i in CONV_INDICES:
        sd[f"features.{i}.weight"] = features[i].weight.detach().clone().float().contiguous()
        sd[f"features.{i}.bias"] = features[i].bias.detach().clone().float().contiguous()
    return sd


def load_features(state_dict, pooling, dtype):
    features = make_features(NARROW_CFG, pooling)
    features.load_state_dict(OrderedDict((k[len("features."):], v) for k, v in state_dict.items()))
    return features.to(dtype).eval()


# --------------------------------------------------------------------------------------
# Forward pass, Gram matrices, losses
# --------------------------------------------------------------------------------------

def normalize(img):
    """ImageNet normalisation of a [0,1] RGB tensor (N,3,H,W)."""
    mean = torch.tensor(IMAGENET_MEAN, dtype=img.dtype).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD, dtype=img.dtype).view(1, 3, 1, 1)
    return (img - mean) / std


def extract(features, img):
    """Dict tap -> output, for every module of the stack, on a [0,1] RGB image."""
    out = OrderedDict()
    h = normalize(img)
    for name, module in zip(TAPS, features):
        h = module(h)
        out[name] = h
    return out


def gram(feat):
    """Unnormalised Gram matrix G = F F^T, F = (C, H*W) reshape of a (1,C,H,W) map."""
    _, c, h, w = feat.shape
    f = feat.reshape(c, h * w)
    return f @ f.t()


def compute_losses(features, content, style, x):
    """Gatys et al. (2016) losses for generated image x; returns dict of tensors.

    L_c = 0.5 * sum((F_x - P_content)^2) at CONTENT_TAP
    E_l = sum((G_x - A_style)^2) / (4 N^2 M^2), N, M = channels and H*W of x's layer l
          where the style image has another size, its Gram is rescaled by M_x / M_style, so
          Grams per position are compared (identical to the paper's formula at equal sizes)
    L_s = sum_l w_l E_l
    L   = alpha L_c + beta L_s
    """
    with torch.no_grad():
        p = extract(features, content)[CONTENT_TAP]
        style_feats = extract(features, style)
        a = {t: gram(style_feats[t]) for t in STYLE_TAPS}

    x = x.detach().clone().requires_grad_(True)
    fx = extract(features, x)
    loss_c = 0.5 * ((fx[CONTENT_TAP] - p) ** 2).sum()
    per_layer = OrderedDict()
    loss_s = torch.zeros((), dtype=x.dtype)
    for t, w in zip(STYLE_TAPS, STYLE_WEIGHTS):
        _, n, h, wd = fx[t].shape
        m = h * wd
        m_style = style_feats[t].shape[2] * style_feats[t].shape[3]
        e = ((gram(fx[t]) - a[t] * (m / m_style)) ** 2).sum() / (4.0 * n * n * m * m)
        per_layer[t] = e
        loss_s = loss_s + w * e
    total = ALPHA * loss_c + BETA * loss_s
    (grad,) = torch.autograd.grad(total, x)

    return {
        "content": loss_c.detach(),
        "style": loss_s.detach(),
        "style_per_layer": OrderedDict((t, e.detach()) for t, e in per_layer.items()),
        "total": total.detach(),
        "grad": grad.detach(),
        "grams": OrderedDict((t, gram(fx[t]).detach()) for t in STYLE_TAPS),
    }


def tv_loss(x):
    """Squared-difference total variation: sum of squared vertical + horizontal diffs."""
    return ((x[:, :, 1:, :] - x[:, :, :-1, :]) ** 2).sum() + ((x[:, :, :, 1:] - x[:, :, :, :-1]) ** 2).sum()


# --------------------------------------------------------------------------------------
# Inputs
# --------------------------------------------------------------------------------------

def make_inputs():
    """content/style: smooth gradients + noise in [0,1]; x: plain U(0,1). Seeded 1."""
    g = torch.Generator().manual_seed(1)

    def structured(shape, fx, fy, phase):
        _, c, h, w = shape
        yy = torch.linspace(0.0, 1.0, h).view(1, 1, h, 1)
        xx = torch.linspace(0.0, 1.0, w).view(1, 1, 1, w)
        ch = torch.arange(c, dtype=torch.float32).view(1, c, 1, 1)
        smooth = 0.5 + 0.3 * torch.sin(2 * np.pi * (fx * xx + fy * yy) + phase + ch)
        noise = 0.15 * (torch.rand(shape, generator=g) - 0.5)
        return (smooth + noise).clamp(0.0, 1.0).float().contiguous()

    content = structured(CONTENT_SHAPE, 1.5, 1.0, 0.0)
    style = structured(STYLE_SHAPE, 3.0, -2.0, 1.0)
    x = torch.rand(X_SHAPE, generator=g).float().contiguous()
    return content, style, x


# --------------------------------------------------------------------------------------
# safetensors (hand-written, F32 only)
# --------------------------------------------------------------------------------------

def write_safetensors(path, tensors):
    """Write an ordered dict name -> float32 tensor as safetensors."""
    header, blobs, offset = OrderedDict(), [], 0
    for name, t in tensors.items():
        assert t.dtype == torch.float32, name
        data = t.detach().contiguous().numpy().astype("<f4", copy=False).tobytes()
        header[name] = {"dtype": "F32", "shape": list(t.shape), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    hjson = json.dumps(header, separators=(",", ":")).encode("utf-8")
    hjson += b" " * (-len(hjson) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(hjson)))
        f.write(hjson)
        for b in blobs:
            f.write(b)


def read_safetensors(path):
    """Minimal strict reader used to verify what write_safetensors produced."""
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    assert n % 8 == 0 and 8 + n <= len(raw), "bad header length"
    header = json.loads(raw[8:8 + n].decode("utf-8"))
    body = raw[8 + n:]
    out, spans = OrderedDict(), []
    for name, info in header.items():
        if name == "__metadata__":
            continue
        assert info["dtype"] == "F32", name
        begin, end = info["data_offsets"]
        numel = int(np.prod(info["shape"], dtype=np.int64))
        assert 0 <= begin <= end <= len(body) and end - begin == 4 * numel, name
        spans.append((begin, end))
        arr = np.frombuffer(body[begin:end], dtype="<f4").reshape(info["shape"])
        out[name] = torch.from_numpy(arr.copy())
    # Data must tile the body exactly: no gaps, no overlaps, nothing trailing.
    spans.sort()
    pos = 0
    for begin, end in spans:
        assert begin == pos, "gap/overlap in data offsets"
        pos = end
    assert pos == len(body), "trailing bytes after tensor data"
    return out


def assert_same(a, b, what):
    assert set(a.keys()) == set(b.keys()), what
    for k in a:
        assert a[k].dtype == b[k].dtype and a[k].shape == b[k].shape, (what, k)
        assert torch.equal(a[k], b[k]), (what, k)


# --------------------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------------------

def rel_diff(a32, a64):
    """max|a32 - a64| / max|a64| (norm-wise relative difference)."""
    a32 = a32.double()
    return ((a32 - a64).abs().max() / a64.abs().max().clamp_min(1e-300)).item()


def main():
    torch.set_num_threads(1)
    torch.set_default_dtype(torch.float32)

    # 1. Narrow VGG-19 weights.
    proto = make_features(NARROW_CFG, "max")
    check_layout_against_torchvision(proto)
    init_weights(proto)
    state_dict = build_state_dict(proto)

    pth_path = os.path.join(HERE, "vgg19_narrow.pth")
    st_path = os.path.join(HERE, "vgg19_narrow.safetensors")
    torch.save(state_dict, pth_path)  # default zipfile serialization
    write_safetensors(st_path, state_dict)

    # 3. Inputs.
    content, style, x = make_inputs()

    # 4./5. Reference tensors (float32).
    ref = OrderedDict()
    ref["content"] = content
    ref["style"] = style
    ref["x"] = x
    for pooling in ("avg", "max"):
        feats = load_features(state_dict, pooling, torch.float32)
        with torch.no_grad():
            for tap, t in extract(feats, x).items():
                ref[f"{pooling}.features.{tap}"] = t.contiguous()

    avg32 = load_features(state_dict, "avg", torch.float32)
    r32 = compute_losses(avg32, content, style, x)
    for tap, g in r32["grams"].items():
        ref[f"gram.{tap}"] = g.contiguous()
    ref["loss.content"] = r32["content"].reshape(1)
    ref["loss.style"] = r32["style"].reshape(1)
    for tap, e in r32["style_per_layer"].items():
        ref[f"loss.style.{tap}"] = e.reshape(1)
    ref["loss.total"] = r32["total"].reshape(1)
    ref["grad.x"] = r32["grad"].contiguous()
    ref["meta.alpha"] = torch.tensor([ALPHA], dtype=torch.float32)
    ref["meta.beta"] = torch.tensor([BETA], dtype=torch.float32)
    ref["tv.x"] = x.clone()
    ref["loss.tv"] = tv_loss(x).reshape(1)

    ref_path = os.path.join(HERE, "vgg19_reference.safetensors")
    write_safetensors(ref_path, ref)

    # 6. Checks: round-trip every file.
    loaded_pth = torch.load(pth_path)
    assert type(loaded_pth) is OrderedDict
    assert list(loaded_pth.keys()) == list(state_dict.keys())
    assert all(v.is_contiguous() for v in loaded_pth.values())
    assert_same(loaded_pth, state_dict, "pth")
    assert_same(read_safetensors(st_path), state_dict, "weights safetensors")
    assert_same(read_safetensors(ref_path), ref, "reference safetensors")
    print("round-trip OK: vgg19_narrow.pth, vgg19_narrow.safetensors, vgg19_reference.safetensors")

    # Float64 side check: same weights and inputs, everything in double.
    sd64 = OrderedDict((k, v.double()) for k, v in state_dict.items())
    c64, s64, x64 = content.double(), style.double(), x.double()
    r64 = compute_losses(load_features(sd64, "avg", torch.float64), c64, s64, x64)
    diffs = OrderedDict()
    for pooling in ("avg", "max"):
        with torch.no_grad():
            f64 = extract(load_features(sd64, pooling, torch.float64), x64)
        worst = max(f64, key=lambda t: rel_diff(ref[f"{pooling}.features.{t}"], f64[t]))
        diffs[f"{pooling}.features (worst: {worst})"] = rel_diff(ref[f"{pooling}.features.{worst}"], f64[worst])
    for tap in STYLE_TAPS:
        diffs[f"gram.{tap}"] = rel_diff(r32["grams"][tap], r64["grams"][tap])
    diffs["loss.content"] = rel_diff(r32["content"], r64["content"])
    diffs["loss.style"] = rel_diff(r32["style"], r64["style"])
    for tap in STYLE_TAPS:
        diffs[f"loss.style.{tap}"] = rel_diff(r32["style_per_layer"][tap], r64["style_per_layer"][tap])
    diffs["loss.total"] = rel_diff(r32["total"], r64["total"])
    diffs["grad.x"] = rel_diff(r32["grad"], r64["grad"])
    diffs["loss.tv"] = rel_diff(ref["loss.tv"][0], tv_loss(x64))
    print("\nfloat32 vs float64, max|f32 - f64| / max|f64|:")
    for k, v in diffs.items():
        print(f"  {k:40s} {v:.3e}")
    print(f"  {'overall max':40s} {max(diffs.values()):.3e}")

    # Report.
    print("\nlosses (float32):")
    for k in ["loss.content", "loss.style"] + [f"loss.style.{t}" for t in STYLE_TAPS] + ["loss.total", "loss.tv"]:
        print(f"  {k:24s} {ref[k].item():.9g}")
    print(f"  {'|grad.x|_max':24s} {ref['grad.x'].abs().max().item():.9g}")

    print("\nfile sizes:")
    for p in (pth_path, st_path, ref_path):
        print(f"  {os.path.basename(p):30s} {os.path.getsize(p):8d} bytes")


if __name__ == "__main__":
    main()
