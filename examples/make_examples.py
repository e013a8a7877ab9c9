#!/usr/bin/env python3
"""Procedurally generate the two example images shipped with the repo.

    village.jpg  384x256  a "photograph": sky with clouds, hazy hills, a few
                          houses, a church and trees on a river bank, the
                          scene mirrored in the rippled water in the foreground.
    swirls.jpg   320x320  a "painting": bold blue/yellow brush strokes that
                          follow a swirling vector field, with haloed stars,
                          a dark cypress and a small village at night.

Nothing is copied from elsewhere; every pixel comes from the code below and
fixed random seeds, so the output is deterministic (for a given numpy/Pillow
version).

Run from anywhere with a Python 3 that has numpy and Pillow (on Debian/Ubuntu:
`apt-get install python3-numpy python3-pil`, then use /usr/bin/python3).
Takes about 25 seconds:

    python3 examples/make_examples.py            # writes next to this script
    python3 examples/make_examples.py OUT_DIR    # writes into OUT_DIR
"""

import math
import os
import sys

import numpy as np
from PIL import Image, ImageDraw, ImageFilter


# ----------------------------------------------------------------------------
# shared helpers
# ----------------------------------------------------------------------------

def fbm(rng, h, w, base=4, octaves=6, persistence=0.55):
    """Fractal (1/f-like) value noise in [0, 1], shape (h, w).

    Sums bicubically upsampled random grids of doubling resolution.
    """
    out = np.zeros((h, w), np.float32)
    amp, total = 1.0, 0.0
    for o in range(octaves):
        n = base * 2 ** o
        gh = max(2, int(round(n * h / max(h, w))) + 1)
        gw = max(2, int(round(n * w / max(h, w))) + 1)
        grid = rng.random((gh, gw)).astype(np.float32)
        img = Image.fromarray(grid, mode="F").resize((w, h), Image.BICUBIC)
        out += amp * np.asarray(img)
        total += amp
        amp *= persistence
    out /= total
    out -= out.min()
    out /= max(out.max(), 1e-6)
    return out


def midpoint_line(rng, n, rough=0.55, scale=1.0):
    """1-D midpoint displacement profile of length n, roughly in [-1, 1]."""
    size = 1
    while size < n - 1:
        size *= 2
    pts = np.zeros(size + 1)
    pts[0], pts[-1] = rng.uniform(-0.5, 0.5, 2) * scale
    step, amp = size, scale
    while step > 1:
        half = step // 2
        for i in range(half, size, step):
            pts[i] = 0.5 * (pts[i - half] + pts[i + half]) + rng.uniform(-amp, amp)
        amp *= rough
        step = half
    return pts[:n]


def blur(arr, radius):
    """Separable Gaussian blur (sigma=radius) of a float HxW or HxWxC array."""
    if radius <= 0:
        return arr
    r = int(math.ceil(3 * radius))
    k = np.exp(-0.5 * (np.arange(-r, r + 1) / radius) ** 2).astype(np.float32)
    k /= k.sum()
    a = np.asarray(arr, np.float32)
    for axis in (0, 1):
        pad = [(0, 0)] * a.ndim
        pad[axis] = (r, r)
        p = np.pad(a, pad, mode="edge")
        out = np.zeros_like(a)
        n = a.shape[axis]
        for i, kv in enumerate(k):
            out += kv * np.take(p, np.arange(i, i + n), axis=axis)
        a = out
    return a


def mix(a, b, t):
    t = np.asarray(t, np.float32)
    if t.ndim == 2:
        t = t[..., None]
    return a * (1 - t) + b * t


def smoothstep(e0, e1, x):
    t = np.clip((x - e0) / (e1 - e0), 0, 1)
    return t * t * (3 - 2 * t)


def paste_layer(canvas, layer_rgba):
    """Alpha-composite an RGBA Pillow layer onto a float RGB [0,1] canvas."""
    a = np.asarray(layer_rgba, np.float32) / 255.0
    alpha = a[..., 3:4]
    return canvas * (1 - alpha) + a[..., :3] * alpha


def to_image(arr):
    return Image.fromarray((np.clip(arr, 0, 1) * 255 + 0.5).astype(np.uint8))


def col(hexstr):
    hexstr = hexstr.lstrip("#")
    return np.array([int(hexstr[i:i + 2], 16) / 255.0 for i in (0, 2, 4)], np.float32)


# ----------------------------------------------------------------------------
# village.jpg
# ----------------------------------------------------------------------------

def make_village(path):
    W, H = 384, 256
    S = 2                      # supersampling factor
    w, h = W * S, H * S
    rng = np.random.default_rng(20240611)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)

    water_y = int(0.64 * h)    # shoreline / mirror axis

    # --- sky ---------------------------------------------------------------
    t = (yy / water_y)[..., None]
    top, horizon = col("#3d6fb6"), col("#c9dcec")
    sky = mix(top, horizon, np.clip(t, 0, 1) ** 1.4)
    # slight warm glow near the horizon on the right
    glow = np.exp(-(((xx - 0.75 * w) / (0.45 * w)) ** 2 + ((yy - 0.5 * h) / (0.25 * h)) ** 2))
    sky = mix(sky, col("#f3e6cf"), 0.35 * glow)

    # clouds: fbm thresholded, stretched horizontally, thinner near horizon
    n = fbm(rng, h, w // 3, base=7, octaves=6, persistence=0.55)
    n = np.asarray(Image.fromarray(n, "F").resize((w, h), Image.BICUBIC))
    band = smoothstep(0.02, 0.10, yy / h) * (1 - smoothstep(0.22, 0.42, yy / h))
    n = n * (0.55 + 0.45 * band)
    cov = smoothstep(0.45, 0.66, n)
    # lit from above: brighter where the noise increases upwards
    grad = n - np.roll(n, 6 * S, axis=0)
    shade = np.clip(0.55 - 6.0 * grad + 0.6 * (n - 0.55), 0, 1)
    cloud_col = mix(col("#8e9aae"), col("#fdfcf8"), shade)
    img = mix(sky, cloud_col, cov * 0.95)

    # --- hills: three ridgelines with atmospheric perspective ----------------
    haze = col("#bcd0e2")
    layers = [
        # (baseline y, amplitude, roughness, colour, haze amount, texture)
        (0.34, 0.10, 0.58, col("#4f6f8e"), 0.42, 0.03),
        (0.42, 0.06, 0.55, col("#3d6650"), 0.22, 0.05),
        (0.49, 0.035, 0.60, col("#4b7a34"), 0.10, 0.09),
    ]
    for k, (base, amp, rough, c, hz, tex) in enumerate(layers):
        prof = midpoint_line(rng, w, rough=rough)
        prof = (prof - prof.mean()) / (np.abs(prof).max() + 1e-6)
        ridge = (base - amp * prof) * h
        mask = (yy >= ridge[None, :]).astype(np.float32)
        mask = blur(mask, 0.8)
        depth = np.clip((yy - ridge[None, :]) / (0.12 * h), 0, 1)
        tx = fbm(rng, h, w, base=16, octaves=4, persistence=0.6)
        hc = c[None, None, :] * (0.85 + 0.3 * tx[..., None] * (tex / 0.05)) \
            * (1 - 0.18 * depth[..., None])
        hc = mix(hc, haze, hz * (1 - 0.4 * depth))
        img = mix(img, hc, mask)

    # --- near bank: grass strip above the water ---------------------------
    bank_top = int(0.555 * h)
    gtex = fbm(rng, h, w, base=24, octaves=4, persistence=0.65)
    grass = mix(col("#4d7a2c"), col("#8aa646"), gtex)
    bank_prof = bank_top + 4 * S * midpoint_line(rng, w, rough=0.6, scale=0.8)
    bank = ((yy >= bank_prof[None, :]) & (yy < water_y)).astype(np.float32)
    img = mix(img, grass, blur(bank, 0.6))
    # muddy edge right at the water
    edge = ((yy >= water_y - 3 * S) & (yy < water_y)).astype(np.float32)
    img = mix(img, col("#5b4a35"), 0.7 * edge)

    # --- houses, trees: drawn into an RGBA layer ----------------------------
    layer = Image.new("RGBA", (w, h), (0, 0, 0, 0))
    d = ImageDraw.Draw(layer)

    def rgb(c, a=255):
        return tuple(int(v * 255) for v in c) + (a,)

    def tree(cx, base_y, r, dark=0.0):
        # trunk
        d.rectangle([cx - 0.12 * r, base_y - 0.9 * r, cx + 0.12 * r, base_y],
                    fill=rgb(col("#3b2a1c")))
        d.line([(cx, base_y - 1.2 * r), (cx - 0.4 * r, base_y - 1.8 * r)],
               fill=rgb(col("#3b2a1c")), width=max(1, int(0.1 * r)))
        # crown: a few clumps, each made of many small leafy dabs, lit from
        # the upper left and darker underneath
        ccy = base_y - 1.6 * r
        clumps = [(cx + rng.uniform(-0.5, 0.5) * r, ccy + rng.uniform(-0.5, 0.4) * r,
                   rng.uniform(0.45, 0.7) * r) for _ in range(5)]
        clumps.append((cx, ccy, 0.75 * r))
        for qx, qy, qr in clumps:
            for _ in range(int(40 + 4 * qr)):
                a = rng.uniform(0, 2 * math.pi)
                rr = qr * math.sqrt(rng.uniform(0, 1))
                px = qx + rr * math.cos(a)
                py = qy + rr * math.sin(a) * 0.9
                s = rng.uniform(0.07, 0.16) * r + 0.5
                lx = ((qx - px) * 0.5 + (qy - py)) / qr       # clump-local light
                gy = (ccy - py) / r                          # darker at bottom
                light = 0.45 + 0.35 * lx + 0.3 * gy + rng.normal(0, 0.18)
                light = float(np.clip(light, 0, 1)) * (1 - dark)
                c = mix(col("#0f260c"), col("#6e9436"), light)
                d.ellipse([px - s, py - s, px + s, py + s], fill=rgb(c))

    def poplar(cx, base_y, r):
        d.rectangle([cx - 0.08 * r, base_y - 0.6 * r, cx + 0.08 * r, base_y],
                    fill=rgb(col("#30241a")))
        for _ in range(70):
            v = rng.uniform(0, 1)
            py = base_y - 0.5 * r - v * 3.6 * r
            half = r * 0.55 * math.sin(math.pi * (0.15 + 0.85 * v) ** 0.9) + 1
            px = cx + rng.uniform(-half, half)
            s = rng.uniform(0.15, 0.3) * r
            light = float(np.clip(0.35 + 0.5 * (px - cx) / r + rng.normal(0, 0.15), 0, 1))
            c = mix(col("#11280d"), col("#4f7a28"), light)
            d.ellipse([px - s, py - s * 1.3, px + s, py + s * 1.3], fill=rgb(c))

    def house(x0, base_y, bw, bh, wall, roof, floors=1, chimney=True):
        x1 = x0 + bw
        y0 = base_y - bh
        side = x1 - 0.3 * bw             # front (gable) face | side wall
        apex = (x0 + side) / 2
        rh = 0.5 * (side - x0) + 0.15 * bw
        ov = 0.05 * bw
        # walls: front lit, side in shade
        d.rectangle([x0, y0, side, base_y], fill=rgb(wall))
        d.rectangle([side, y0, x1, base_y], fill=rgb(wall * 0.7))
        # side roof plane (parallelogram from the gable to the back)
        back = x1 + ov
        d.polygon([(apex, y0 - rh), (side + ov, y0 + ov * 0.4), (back, y0 + ov * 0.4),
                   (back - (side + ov - apex), y0 - rh)], fill=rgb(roof * 0.82))
        # tile courses on the side plane
        for f in np.linspace(0.12, 0.9, 6):
            ax = side + ov + (apex - side - ov) * f
            ay = y0 + ov * 0.4 + (-rh - ov * 0.4) * f
            d.line([(ax, ay), (ax + back - side - ov, ay)], fill=rgb(roof * 0.6), width=1)
        # gable wall (lit) and its roof edge
        d.polygon([(x0, y0), (side, y0), (apex, y0 - rh + ov)], fill=rgb(wall * 1.03))
        d.line([(x0 - ov, y0 + ov * 0.4), (apex, y0 - rh), (side + ov, y0 + ov * 0.4)],
               fill=rgb(roof * 0.95), width=int(2.2 * S))
        if chimney:
            cx = apex + 0.55 * (back - side)
            d.rectangle([cx, y0 - rh * 0.95, cx + 0.07 * bw, y0 - rh * 0.35],
                        fill=rgb(col("#6b4a3a")))
        fw = side - x0
        win = col("#26323c")
        frame = col("#f4efe4")
        ww, wh = 0.2 * fw, min(0.22 * bh / floors, 0.3 * fw)
        for f in range(floors):
            wy = y0 + (f + 0.22) * bh / floors
            if f == floors - 1:
                xs = [x0 + 0.12 * fw, x0 + 0.68 * fw]
            else:
                xs = [x0 + 0.12 * fw, x0 + 0.40 * fw, x0 + 0.68 * fw]
            for wx in xs:
                d.rectangle([wx - 1, wy - 1, wx + ww + 1, wy + wh + 1], fill=rgb(frame))
                d.rectangle([wx, wy, wx + ww, wy + wh], fill=rgb(win))
                d.line([(wx + ww / 2, wy), (wx + ww / 2, wy + wh)], fill=rgb(frame), width=1)
        # gable attic window
        d.rectangle([apex - 0.06 * fw, y0 - rh * 0.45, apex + 0.06 * fw, y0 - rh * 0.25],
                    fill=rgb(win))
        # door
        dw = 0.2 * fw
        dx = x0 + 0.40 * fw
        dh = min(0.6 * bh / floors, 0.45 * bh)
        d.rectangle([dx, base_y - dh, dx + dw, base_y], fill=rgb(col("#4a2f22")))
        # side windows
        sw = x1 - side
        for f in range(floors):
            wy = y0 + (f + 0.25) * bh / floors
            d.rectangle([side + 0.3 * sw, wy, side + 0.62 * sw, wy + wh], fill=rgb(win * 0.8))

    def church(x0, base_y):
        # nave
        house(x0 + 14 * S, base_y, 40 * S, 24 * S, col("#dcd3c2"), col("#5c5a62"),
              floors=1, chimney=False)
        # tower with spire
        tw, th = 15 * S, 56 * S
        wall = col("#d6ccb8")
        d.rectangle([x0, base_y - th, x0 + tw, base_y], fill=rgb(wall))
        d.rectangle([x0 + 0.7 * tw, base_y - th, x0 + tw, base_y], fill=rgb(wall * 0.72))
        d.polygon([(x0 - S, base_y - th), (x0 + tw + S, base_y - th),
                   (x0 + tw / 2, base_y - th - 32 * S)], fill=rgb(col("#3f4a55")))
        d.polygon([(x0 + tw / 2, base_y - th - 32 * S), (x0 + tw + S, base_y - th),
                   (x0 + 0.7 * tw, base_y - th)], fill=rgb(col("#2c343c")))
        # clock and belfry openings
        cx, cy = x0 + 0.38 * tw, base_y - th + 10 * S
        d.ellipse([cx - 3 * S, cy - 3 * S, cx + 3 * S, cy + 3 * S], fill=rgb(col("#f2efe6")),
                  outline=rgb(col("#2a2a2a")))
        d.line([(cx, cy), (cx, cy - 2 * S)], fill=rgb(col("#222222")), width=1)
        for k in range(2):
            bx = x0 + (0.12 + 0.34 * k) * tw
            d.rectangle([bx, base_y - th + 2 * S, bx + 3 * S, base_y - th + 6 * S],
                        fill=rgb(col("#1c2228")))
        d.rectangle([x0 + 0.25 * tw, base_y - 12 * S, x0 + 0.55 * tw, base_y],
                    fill=rgb(col("#3e2a20")))

    # small far-away houses on the hillside (depth cue)
    for hx, hy in [(210, 0.485), (232, 0.49), (300, 0.47), (318, 0.478), (60, 0.50)]:
        x, y = hx * S, hy * h
        wcol = mix(col("#e6ddd0"), col("#bccfe0"), 0.25)
        d.rectangle([x, y - 4 * S, x + 7 * S, y], fill=rgb(wcol))
        d.polygon([(x - S, y - 4 * S), (x + 8 * S, y - 4 * S), (x + 3.5 * S, y - 7 * S)],
                  fill=rgb(mix(col("#a0503a"), col("#bccfe0"), 0.3)))
    # background trees behind houses
    for cx, r in [(42, 15), (152, 17), (268, 13), (334, 16), (205, 10)]:
        tree(cx * S, bank_top + 8 * S, r * S, dark=0.3)

    base_y0 = water_y - 6 * S
    houses = [
        # x, width, wall height, wall colour, roof colour, floors
        (58, 42, 24, col("#e3d7bf"), col("#9c3b24"), 1),
        (108, 34, 34, col("#d6b486"), col("#6d3a2a"), 2),
        (224, 46, 28, col("#eeeae2"), col("#a8482c"), 1),
        (284, 40, 34, col("#e1cc9c"), col("#8e3326"), 2),
    ]
    church(160 * S, base_y0 - 2 * S)
    for x, bw, bh, wall, roof, fl in houses:
        house(x * S, base_y0 - int(rng.integers(0, 3)) * S, bw * S, bh * S, wall, roof, floors=fl)
    house(326 * S, base_y0 + S, 26 * S, 18 * S, col("#c9a27a"), col("#5b5560"), floors=1)

    # foreground trees on the bank
    tree(20 * S, water_y - 2 * S, 24 * S)
    poplar(98 * S, water_y - 3 * S, 8 * S)
    tree(214 * S, water_y - 3 * S, 11 * S)
    poplar(272 * S, water_y - 3 * S, 7 * S)
    tree(370 * S, water_y - 2 * S, 20 * S)
    # bushes and reeds along the shore
    for _ in range(45):
        bx = rng.uniform(0, w)
        by = water_y - rng.uniform(1, 4) * S
        s = rng.uniform(2, 5) * S
        c = mix(col("#1d3a14"), col("#55802c"), float(rng.uniform(0, 1)))
        d.ellipse([bx - s * 1.4, by - s, bx + s * 1.4, by + s * 0.5], fill=rgb(c))
    for _ in range(160):
        bx = rng.uniform(0, w)
        if 120 * S < bx < 200 * S:
            continue                      # a gap: the church's little beach
        ln = rng.uniform(3, 9) * S
        c = mix(col("#3a4a1c"), col("#8a8d4a"), float(rng.uniform(0, 1)))
        d.line([(bx, water_y), (bx + rng.normal(0, 1.2) * S, water_y - ln)], fill=rgb(c),
               width=max(1, S // 2 + int(rng.integers(0, 2))))

    # subtle texture on everything drawn (plaster, foliage, tiles)
    la = np.asarray(layer, np.float32)
    grain = fbm(rng, h, w, base=96, octaves=2, persistence=0.6)
    la[..., :3] *= (0.9 + 0.2 * grain)[..., None]
    # walls slightly darker towards the ground (ambient occlusion-ish)
    ao = 1 - 0.12 * smoothstep(water_y - 16 * S, water_y, yy)
    la[..., :3] *= ao[..., None]
    layer = Image.fromarray(np.clip(la, 0, 255).astype(np.uint8), "RGBA")

    img = paste_layer(img, layer)

    # --- water: blurred, darkened, rippled reflection -----------------------
    above = img[:water_y]
    refl_h = h - water_y
    src = above[::-1][:refl_h]                   # mirror about the shoreline
    if src.shape[0] < refl_h:
        src = np.concatenate([src, np.repeat(src[-1:], refl_h - src.shape[0], 0)], 0)
    ry = np.arange(refl_h, dtype=np.float32)
    # horizontal ripple displacement, stronger further from the shore
    phase = fbm(rng, refl_h, w, base=6, octaves=3)
    amp = (1.0 + 6.0 * (ry / refl_h)[:, None]) * S
    disp = amp * np.sin(ry[:, None] * 0.9 / S * (1 + 0.6 * ry[:, None] / refl_h) + 6 * phase)
    xi = np.clip((np.arange(w)[None, :] + disp).astype(np.int32), 0, w - 1)
    yi = np.repeat(np.arange(refl_h)[:, None], w, 1)
    refl = src[yi, xi]
    refl = blur(refl, 1.6 * S)
    # streak the reflection vertically (water smears reflections)
    refl = 0.5 * refl + 0.5 * np.asarray(
        to_image(refl).resize((w, refl_h // 6)).resize(
            (w, refl_h), Image.BILINEAR), np.float32) / 255.0
    water_tint = col("#2b4a5e")
    depth = (ry / refl_h)[:, None, None]
    refl = mix(refl * 0.72, water_tint, 0.30 + 0.25 * depth)
    # small bright/dark ripple lines
    rip = fbm(rng, refl_h, w // 8, base=40, octaves=2, persistence=0.5)
    rip = np.asarray(Image.fromarray(rip, "F").resize((w, refl_h), Image.BICUBIC))
    lines = np.sin(ry[:, None] * (1.6 / S) * (1 + 1.5 * ry[:, None] / refl_h) + 9 * rip)
    refl = refl * (1 + 0.09 * lines[..., None] * (0.3 + depth))
    # dark line at the waterline
    refl[: 2 * S] *= 0.6
    img = np.concatenate([img[:water_y], refl], 0)

    # --- photographic finish ----------------------------------------------
    img = blur(img, 0.55 * S)
    out = to_image(img).resize((W, H), Image.LANCZOS)
    arr = np.asarray(out, np.float32) / 255.0
    # vignette + sensor noise + mild contrast curve
    vy, vx = np.mgrid[0:H, 0:W].astype(np.float32)
    r2 = ((vx - W / 2) / (W / 2)) ** 2 + ((vy - H / 2) / (H / 2)) ** 2
    arr *= (1 - 0.12 * r2)[..., None]
    nrng = np.random.default_rng(7)
    arr += nrng.normal(0, 0.012, arr.shape).astype(np.float32)
    arr += nrng.normal(0, 0.008, arr.shape[:2] + (1,)).astype(np.float32)
    arr = np.clip(arr, 0, 1)
    arr = mix(arr, smoothstep(0.0, 1.0, arr), 0.15)          # gentle S-curve
    to_image(arr).save(path, quality=88, optimize=True)


# ----------------------------------------------------------------------------
# swirls.jpg
# ----------------------------------------------------------------------------

def make_swirls(path):
    N = 320
    S = 3
    n = N * S
    rng = np.random.default_rng(18890618)
    yy, xx = np.mgrid[0:n, 0:n].astype(np.float32) / n   # unit square coords

    # vector field: a few vortices plus a gentle rightward/undulating flow
    vortices = [
        # x, y, strength (+ = counter-clockwise), radius
        (0.50, 0.36, 1.3, 0.20),
        (0.22, 0.22, -0.9, 0.13),
        (0.78, 0.18, 0.8, 0.11),
        (0.30, 0.60, 0.7, 0.14),
        (0.80, 0.56, -0.8, 0.13),
    ]
    stars = [(0.17, 0.10, 0.05), (0.60, 0.09, 0.04), (0.87, 0.13, 0.075),
             (0.88, 0.42, 0.05), (0.42, 0.66, 0.03)]

    def field(x, y):
        vx = 0.9 + 0.35 * np.sin(6.0 * y + 2.0 * x)
        vy = 0.25 * np.sin(5.0 * x + 1.0) + 0.15 * np.cos(9.0 * x)
        for cx, cy, s, r in vortices + [(sx, sy, 1.2, sr * 1.2) for sx, sy, sr in stars]:
            dx, dy = x - cx, y - cy
            d2 = dx * dx + dy * dy
            k = s * np.exp(-d2 / (2 * r * r)) / r * 0.6
            vx += -dy * k * 8
            vy += dx * k * 8
        m = np.sqrt(vx * vx + vy * vy) + 1e-6
        return vx / m, vy / m

    # base colour: palette mapped from a swirl-warped noise field
    palette = np.array([
        col("#0a1a4a"), col("#143a86"), col("#1f5cb3"), col("#3c86c8"),
        col("#7cc3dc"), col("#d9ecf0"), col("#f3dd62"), col("#eab92e"),
    ])
    stops = np.array([0.0, 0.18, 0.36, 0.52, 0.66, 0.76, 0.86, 1.0])

    def pal(v):
        v = np.clip(v, 0, 1)
        out = np.empty(v.shape + (3,), np.float32)
        for c in range(3):
            out[..., c] = np.interp(v, stops, palette[:, c])
        return out

    # scalar field: warp noise along the flow by a few advection steps (gives
    # banding that follows the swirls), plus bands around the main vortex
    base_noise = fbm(rng, n, n, base=4, octaves=5, persistence=0.5)
    px, py = xx.copy(), yy.copy()
    for _ in range(12):
        vx, vy = field(px, py)
        px += vx * 0.012
        py += vy * 0.012
    ix = np.clip((px * n).astype(np.int32), 0, n - 1)
    iy = np.clip((py * n).astype(np.int32), 0, n - 1)
    val = base_noise[iy, ix]
    val = 0.15 + 0.55 * val
    for cx, cy, s, r in vortices[:3]:
        dist = np.sqrt((xx - cx) ** 2 + (yy - cy) ** 2)
        ring = 0.5 + 0.5 * np.cos(dist / r * 9.0)
        val += 0.28 * ring * np.exp(-(dist / (1.4 * r)) ** 2)
    # darker lower band (night landscape) with rolling hills
    hill = 0.80 + 0.04 * np.sin(xx * 9) + 0.02 * np.sin(xx * 23 + 1)
    ground = smoothstep(hill - 0.01, hill + 0.01, yy)
    val = val * (1 - 0.6 * ground)
    # stars: bright concentric halos
    star_glow = np.zeros_like(val)
    for sx, sy, sr in stars:
        dist = np.sqrt((xx - sx) ** 2 + (yy - sy) ** 2) / sr
        halo = (0.55 + 0.45 * np.cos(dist * 2 * math.pi * 1.2)) * np.exp(-(dist / 1.6) ** 2)
        core = np.exp(-(dist / 0.35) ** 2)
        star_glow = np.maximum(star_glow, np.maximum(halo * 0.85, core * 1.1))
    val = np.maximum(val, 0.60 + 0.4 * star_glow) * (star_glow > 0.12) + val * (star_glow <= 0.12)
    base = pal(val)
    # ground: dark green/blue with some ochre (village lights hinted)
    gtex = fbm(rng, n, n, base=8, octaves=4)
    ground_col = mix(col("#0e2230"), col("#2e4a3a"), gtex)
    base = mix(base, ground_col, ground)

    # canvas starts as a smoothed version of the base colour
    canvas = Image.fromarray((blur(base, 3 * S) * 255).clip(0, 255).astype(np.uint8))
    d = ImageDraw.Draw(canvas)

    # paint strokes along streamlines, big ones first then finer ones on top
    passes = [(5200, 6.0, 7, 0.09), (9000, 4.0, 6, 0.07), (9000, 2.6, 5, 0.06)]
    for count, width, steps, jitter in passes:
        pts = rng.random((count, 2)).astype(np.float32)
        for p in pts:
            x, y = float(p[0]), float(p[1])
            xi_, yi_ = min(int(x * n), n - 1), min(int(y * n), n - 1)
            c = base[yi_, xi_] + rng.normal(0, jitter, 3)
            # occasional accent strokes: lighter or darker variations
            u = rng.random()
            if u < 0.08:
                c = c * 0.6
            elif u < 0.14:
                c = c + 0.25
            elif u < 0.22 and val[yi_, xi_] > 0.5 and y < 0.78:
                c = mix(c, col("#f1d872"), 0.65)             # yellow accents
            c = tuple(int(v) for v in np.clip(c, 0, 1) * 255)
            is_ground = y > 0.80 + 0.04 * math.sin(x * 9) + 0.02 * math.sin(x * 23 + 1)
            line = [(x * n, y * n)]
            step = (0.010 if not is_ground else 0.012) * rng.uniform(0.7, 1.3)
            for _ in range(steps):
                if is_ground:
                    vx, vy = 1.0, 0.15 * math.sin(x * 12)
                else:
                    a, b = field(np.float32(x), np.float32(y))
                    vx, vy = float(a), float(b)
                x += vx * step
                y += vy * step
                line.append((x * n, y * n))
            wdt = max(1, int(round(width * S * rng.uniform(0.75, 1.25))))
            d.line(line, fill=c, width=wdt, joint="curve")
            # round caps
            r = wdt / 2
            for (lx, ly) in (line[0], line[-1]):
                d.ellipse([lx - r, ly - r, lx + r, ly + r], fill=c)

    # stars: concentric halos painted as tangential arcs, outside in:
    # blue-cyan ring, pale ring, yellow ring, white-yellow core
    halo = [(1.75, col("#2f6fb8")), (1.5, col("#8fd0e0")), (1.25, col("#f4e08a")),
            (1.0, col("#2a64b0")), (0.8, col("#f2c83a")), (0.55, col("#fde88a")),
            (0.3, col("#fffbe6"))]
    for sx, sy, sr in stars:
        for rf, hc in halo:
            rad0 = rf * sr
            count = int(14 + 60 * rad0 / 0.05)
            for _ in range(count):
                rad = rad0 * rng.uniform(0.75, 1.05)
                a = rng.uniform(0, 2 * math.pi)
                span = rng.uniform(0.25, 0.6) * min(1.0, 0.03 / max(rad, 1e-3))
                pts = [((sx + rad * math.cos(a + span * k / 4)) * n,
                        (sy + rad * math.sin(a + span * k / 4)) * n) for k in range(5)]
                c = np.clip(hc + rng.normal(0, 0.06, 3), 0, 1)
                c = tuple(int(v) for v in c * 255)
                wdt = int(rng.uniform(2.2, 3.8) * S * (0.6 + 0.4 * min(1, rad0 / 0.03)))
                d.line(pts, fill=c, width=max(2, wdt), joint="curve")

    # a dark flame-shaped cypress on the left, in vertical wavy strokes
    for _ in range(1500):
        v = rng.random()
        yb = 0.98 - v * 0.78
        half = 0.075 * (1 - v) ** 0.8 * (0.6 + 0.4 * math.sin(v * 20)) + 0.005
        x = 0.11 + 0.02 * math.sin(v * 9) + rng.uniform(-half, half)
        c = mix(col("#0c1a10"), col("#3a5a2a"), rng.uniform(0, 1) ** 2)
        c = tuple(int(t) for t in np.clip(c, 0, 1) * 255)
        L = rng.uniform(0.02, 0.05)
        ang = -math.pi / 2 + 0.5 * math.sin(v * 30 + x * 40)
        pts = [(x * n, yb * n)]
        for k in range(4):
            ang += rng.normal(0, 0.2)
            x += L / 4 * math.cos(ang)
            yb += L / 4 * math.sin(ang)
            pts.append((x * n, yb * n))
        d.line(pts, fill=c, width=int(rng.uniform(2.5, 4.5) * S), joint="curve")

    # a sleepy village on the dark hills: small blocky houses with lit windows
    for _ in range(16):
        hx = rng.uniform(0.28, 0.95)
        hy = 0.80 + 0.04 * math.sin(hx * 9) + 0.02 * math.sin(hx * 23 + 1) + rng.uniform(0.03, 0.12)
        bw, bh = rng.uniform(0.03, 0.05), rng.uniform(0.02, 0.035)
        wc = mix(col("#1c2c44"), col("#4a5a6a"), rng.uniform(0, 1))
        d.rectangle([hx * n, (hy - bh) * n, (hx + bw) * n, hy * n],
                    fill=tuple(int(v * 255) for v in wc))
        d.polygon([((hx - 0.004) * n, (hy - bh) * n), ((hx + bw + 0.004) * n, (hy - bh) * n),
                   ((hx + bw / 2) * n, (hy - bh - 0.018) * n)],
                  fill=tuple(int(v * 255) for v in wc * 0.6))
        for k in range(int(rng.integers(1, 3))):
            wx = hx + bw * rng.uniform(0.15, 0.7)
            d.rectangle([wx * n, (hy - bh * 0.7) * n, (wx + 0.007) * n, (hy - bh * 0.35) * n],
                        fill=(246, 212, 80))

    arr = np.asarray(canvas, np.float32) / 255.0
    # canvas/impasto texture: high-frequency luminance noise + slight emboss
    tex = fbm(np.random.default_rng(3), n, n, base=64, octaves=3, persistence=0.7)
    arr = arr * (0.92 + 0.16 * tex[..., None])
    lum = arr.mean(-1)
    emb = lum - np.roll(np.roll(lum, 1, 0), 1, 1)
    arr = arr + 0.35 * emb[..., None]
    out = to_image(arr).resize((N, N), Image.LANCZOS)
    out = out.filter(ImageFilter.UnsharpMask(radius=1.2, percent=60, threshold=2))
    out.save(path, quality=90, optimize=True)


def main():
    out_dir = sys.argv[1] if len(sys.argv) > 1 else os.path.dirname(os.path.abspath(__file__))
    os.makedirs(out_dir, exist_ok=True)
    v = os.path.join(out_dir, "village.jpg")
    s = os.path.join(out_dir, "swirls.jpg")
    make_village(v)
    make_swirls(s)
    for p in (v, s):
        print(f"{p}: {os.path.getsize(p)} bytes")


if __name__ == "__main__":
    main()
