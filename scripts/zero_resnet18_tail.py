#!/usr/bin/env python3
"""Writes a copy of ResNet18.onnx with layer4's and the classifier's weights set to zero.

Only for the GPU check (scripts/gpu-check.sh): the device machine receives at most 64 MiB, and the
full graph (64 MB of float32 weights that barely compress) does not fit beside the program. Every
default resnet18 layer of `stylize` stops at layer3_1, so a stylisation with the copy is the same
as with the original (checked by the GPU check: taps up to layer3_1 equal the original's, CPU vs
CPU, exactly). Zeros compress to nothing. Tensors are recognised by a dimension of 512 (layer4's
widths) or 1000 (the classifier): no earlier layer has either. The protobuf is walked by hand (no
onnx package here) and only bytes inside the tensors' data fields change, so the file's layout and
length are unchanged.

usage: zero_resnet18_tail.py IN.onnx OUT.onnx
"""
import sys


def varint(buf, i):
    shift = result = 0
    while True:
        b = buf[i]
        i += 1
        result |= (b & 0x7F) << shift
        if b < 0x80:
            return result, i
        shift += 7


def fields(buf, start, end):
    """Yields (field number, wire type, value start, value end) for a message in buf[start:end]."""
    i = start
    while i < end:
        key, i = varint(buf, i)
        field, wire = key >> 3, key & 7
        if wire == 0:
            _, j = varint(buf, i)
        elif wire == 1:
            j = i + 8
        elif wire == 2:
            n, i = varint(buf, i)
            j = i + n
        elif wire == 5:
            j = i + 4
        else:
            raise ValueError(f"wire type {wire} at {i}")
        yield field, wire, i, j
        i = j


def main():
    src, dst = sys.argv[1], sys.argv[2]
    buf = bytearray(open(src, "rb").read())
    zeroed = kept = 0
    for f, w, s, e in fields(buf, 0, len(buf)):
        if f != 7 or w != 2:  # ModelProto.graph
            continue
        for gf, gw, gs, ge in fields(buf, s, e):
            if gf != 5 or gw != 2:  # GraphProto.initializer (TensorProto)
                continue
            dims, data = [], []
            for tf, tw, ts, te in fields(buf, gs, ge):
                if tf == 1:  # dims
                    if tw == 0:
                        dims.append(varint(buf, ts)[0])
                    else:
                        k = ts
                        while k < te:
                            d, k = varint(buf, k)
                            dims.append(d)
                elif tf in (4, 5, 7, 9, 10) and tw == 2:  # float/int32/int64/raw/double data
                    data.append((ts, te))
            if 512 in dims or 1000 in dims:
                for ts, te in data:
                    buf[ts:te] = bytes(te - ts)
                zeroed += 1
            else:
                kept += 1
    open(dst, "wb").write(buf)
    print(f"{dst}: {zeroed} initializers zeroed (layer4, classifier), {kept} kept")


if __name__ == "__main__":
    main()
