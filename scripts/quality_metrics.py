#!/usr/bin/env python3
"""Independent check of `stylize metrics` (src/StyleTransfer.Diagnostics/Diagnostics/ImageMetrics.cs).

Computes the same two noise measures with numpy/scipy/PIL:
  checkerboard energy: mean over positions and R,G,B of |I * K| on the 0-255 scale, K[i,j] =
    (-1)^(i+j)/16 (4x4), 'valid' convolution ((H-3)x(W-3) positions);
  colour speckle: mean over pixels of |c - blur(c)| for CIE a*, b* (sRGB, D65, white = the sRGB
    matrix's white so greys have a* = b* = 0), averaged over a* and b*; blur Gaussian sigma 1,
    radius 3 (7 taps, normalised), edges replicated.
Images are first scaled to --size long edge with PIL's LANCZOS (stylize uses ImageSharp's
Lanczos-3, so resized images agree closely, not exactly; the same pixels agree to the printed
3 decimals). JPEGs with 4:2:0 chroma: PIL (libjpeg) interpolates the chroma; ImageSharp 2.1
repeats it per 2x2 block, and stylize then re-interpolates it as libjpeg does (JpegChroma), so the
two agree closely, not exactly (starry_night.jpg at 1024 px: speckle 2.20 here, 2.02 in stylize;
3.62 before stylize interpolated). stylize's own outputs (PNG, or JPEG at quality 95, 4:4:4) are
not affected.

usage: /usr/bin/python3 scripts/quality_metrics.py [--size 512] IMAGE [IMAGE ...]
"""
import argparse

import numpy as np
from PIL import Image, ImageOps
from scipy.ndimage import correlate1d
from scipy.signal import convolve2d

M = np.array([[0.4124564, 0.3575761, 0.1804375],
              [0.2126729, 0.7151522, 0.0721750],
              [0.0193339, 0.1191920, 0.9503041]])


def load(path, size):
    im = ImageOps.exif_transpose(Image.open(path)).convert("RGB")
    w, h = im.size
    scale = size / max(w, h)
    nw, nh = max(1, round(w * scale)), max(1, round(h * scale))
    if (nw, nh) != (w, h):
        im = im.resize((nw, nh), Image.LANCZOS)
    return np.asarray(im, dtype=np.float64)


def checkerboard(rgb):
    k = np.fromfunction(lambda i, j: (-1.0) ** (i + j), (4, 4)) / 16
    return float(np.mean([np.abs(convolve2d(rgb[..., c], k, mode="valid")).mean() for c in range(3)]))


def lab_ab(rgb):
    c = rgb / 255.0
    lin = np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    xyz = lin @ M.T / M.sum(axis=1)
    d = 6 / 29
    f = np.where(xyz > d ** 3, np.cbrt(xyz), xyz / (3 * d * d) + 4 / 29)
    return 500 * (f[..., 0] - f[..., 1]), 200 * (f[..., 1] - f[..., 2])


def blur(ch, sigma=1.0, radius=3):
    x = np.arange(-radius, radius + 1)
    w = np.exp(-x ** 2 / (2 * sigma ** 2))
    w /= w.sum()
    return correlate1d(correlate1d(ch, w, axis=0, mode="nearest"), w, axis=1, mode="nearest")


def speckle(rgb):
    return float(np.mean([np.abs(ch - blur(ch)).mean() for ch in lab_ab(rgb)]))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("images", nargs="+")
    a = ap.parse_args()
    for p in a.images:
        x = load(p, a.size)
        print(f"metrics {p} size={x.shape[1]}x{x.shape[0]} checkerboard={checkerboard(x):.3f} speckle={speckle(x):.3f}")


if __name__ == "__main__":
    main()
