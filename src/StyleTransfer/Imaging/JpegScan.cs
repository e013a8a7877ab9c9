namespace StyleTransfer.Imaging;

/// <summary>
/// ImageSharp 2.1 decodes a JPEG whose entropy-coded data stops early (a file cut short, with or
/// without its end marker put back) without a word, filling the missing blocks with grey, and
/// exposes nothing that says so. This walks the Huffman-coded data as libjpeg does, without
/// decoding pixels, and counts the blocks each scan holds: a scan that reaches a marker (or the
/// end of the file) before its last block is what libjpeg reports as "premature end of data
/// segment". Baseline, extended and progressive Huffman JPEGs are checked, except progressive AC
/// refinement scans (their length depends on every earlier scan's coefficients), which are skipped;
/// arithmetic-coded and lossless JPEGs are left to the decoder.
/// </summary>
internal static class JpegScan
{
    /// <summary>Null when every checked scan holds all its blocks, else what is wrong.</summary>
    public static string? Check(string path)
    {
        byte[] data = File.ReadAllBytes(path);
        try
        {
            return new Walker(data).Run();
        }
        catch (Exception e) when (e is IndexOutOfRangeException or ArgumentOutOfRangeException)
        {
            return "its data ends inside a segment";
        }
    }

    private sealed class Huffman
    {
        // Canonical code: for each length, the first code, the count and the index of its first symbol.
        private readonly int[] first = new int[17];
        private readonly int[] count = new int[17];
        private readonly int[] index = new int[17];
        private readonly byte[] symbols;

        public Huffman(ReadOnlySpan<byte> counts, byte[] symbols)
        {
            this.symbols = symbols;
            int code = 0, k = 0;
            for (int len = 1; len <= 16; len++)
            {
                first[len] = code;
                count[len] = counts[len - 1];
                index[len] = k;
                code = (code + counts[len - 1]) << 1;
                k += counts[len - 1];
            }
        }

        public int Decode(Walker w)
        {
            int code = 0;
            for (int len = 1; len <= 16; len++)
            {
                int bit = w.Bit();
                if (bit < 0)
                {
                    return -1;
                }

                code = (code << 1) | bit;
                if (code - first[len] < count[len])
                {
                    return symbols[index[len] + code - first[len]];
                }
            }

            return -2;
        }
    }

    private sealed record Component(int Id, int H, int V);

    private sealed class Walker(byte[] d)
    {
        private readonly Huffman?[] dc = new Huffman?[4];
        private readonly Huffman?[] ac = new Huffman?[4];
        private List<Component> components = [];
        private int width, height, restartInterval, pos;
        private bool progressive, supported = true;
        private int bits, bitCount;
        private bool hitMarker;

        public string? Run()
        {
            if (d.Length < 4 || d[0] != 0xFF || d[1] != 0xD8)
            {
                return "no start-of-image marker";
            }

            pos = 2;
            while (true)
            {
                while (pos < d.Length && d[pos] != 0xFF)
                {
                    pos++; // stray bytes between segments: libjpeg warns and skips them
                }

                while (pos < d.Length && d[pos] == 0xFF)
                {
                    pos++;
                }

                if (pos >= d.Length)
                {
                    return "it ends before its end-of-image marker";
                }

                byte marker = d[pos++];
                if (marker == 0xD9)
                {
                    return null;
                }

                if (marker is >= 0xD0 and <= 0xD7 or 0x01)
                {
                    continue;
                }

                int length = (d[pos] << 8) | d[pos + 1];
                if (length < 2 || pos + length > d.Length)
                {
                    return $"segment 0xFF{marker:X2} is cut short";
                }

                byte[] seg = d.AsSpan(pos + 2, length - 2).ToArray();
                pos += length;
                switch (marker)
                {
                    case 0xC0 or 0xC1 or 0xC2:
                        progressive = marker == 0xC2;
                        height = (seg[1] << 8) | seg[2];
                        width = (seg[3] << 8) | seg[4];
                        components = [.. Enumerable.Range(0, seg[5]).Select(i => new Component(seg[6 + (3 * i)], seg[7 + (3 * i)] >> 4, seg[7 + (3 * i)] & 15))];
                        if (components.Any(c => c.H is < 1 or > 4 || c.V is < 1 or > 4))
                        {
                            return "its sampling factors are invalid";
                        }

                        break;
                    case >= 0xC3 and <= 0xCF when marker is not (0xC4 or 0xC8 or 0xCC):
                        supported = false; // lossless or arithmetic coding: left to the decoder
                        break;
                    case 0xC4:
                        for (int i = 0; i < seg.Length;)
                        {
                            int tc = seg[i] >> 4, th = seg[i] & 3;
                            ReadOnlySpan<byte> counts = seg.AsSpan(i + 1, 16);
                            int n = 0;
                            foreach (byte c in counts)
                            {
                                n += c;
                            }

                            var table = new Huffman(counts, seg.AsSpan(i + 17, n).ToArray());
                            (tc == 0 ? dc : ac)[th] = table;
                            i += 17 + n;
                        }

                        break;
                    case 0xDD:
                        restartInterval = (seg[0] << 8) | seg[1];
                        break;
                    case 0xDA:
                        if (!supported || components.Count == 0)
                        {
                            return null;
                        }

                        if (Scan(seg) is { } problem)
                        {
                            return problem;
                        }

                        break;
                }
            }
        }

        /// <summary>Walks one scan's entropy-coded data, leaving <see cref="pos"/> at the marker after it.</summary>
        private string? Scan(byte[] seg)
        {
            int ns = seg[0];
            var parts = new List<(Component C, Huffman? Dc, Huffman? Ac)>();
            for (int i = 0; i < ns; i++)
            {
                Component c = components.FirstOrDefault(x => x.Id == seg[1 + (2 * i)]) ?? throw new IndexOutOfRangeException();
                parts.Add((c, dc[seg[2 + (2 * i)] >> 4], ac[seg[2 + (2 * i)] & 3]));
            }

            int ss = seg[1 + (2 * ns)], se = seg[2 + (2 * ns)], ah = seg[3 + (2 * ns)] >> 4;
            bool dcScan = ss == 0, refineAc = progressive && !dcScan && ah > 0;
            bits = bitCount = 0;
            hitMarker = false;
            if (refineAc || parts.Any(p => (dcScan && ah == 0 && p.Dc == null) || (!dcScan && p.Ac == null) || (!progressive && (p.Dc == null || p.Ac == null))))
            {
                SkipToMarker();
                return null;
            }

            int hMax = components.Max(c => c.H), vMax = components.Max(c => c.V);
            long units; // MCUs when interleaved, blocks when one component
            if (ns == 1)
            {
                Component c = parts[0].C;
                long cw = (((long)width * c.H) + hMax - 1) / hMax, ch = (((long)height * c.V) + vMax - 1) / vMax;
                units = ((cw + 7) / 8) * ((ch + 7) / 8);
            }
            else
            {
                units = ((width + (8L * hMax) - 1) / (8L * hMax)) * ((height + (8L * vMax) - 1) / (8L * vMax));
            }

            int eobRun = 0;
            for (long u = 0; u < units; u++)
            {
                if (restartInterval > 0 && u > 0 && u % restartInterval == 0)
                {
                    // The restart marker: byte-aligned, then RSTn.
                    bits = bitCount = 0;
                    if (pos + 1 >= d.Length || d[pos] != 0xFF || d[pos + 1] is < 0xD0 or > 0xD7)
                    {
                        return $"a scan stops after {u} of {units} blocks: premature end of data";
                    }

                    pos += 2;
                    eobRun = 0;
                }

                foreach ((Component c, Huffman? dcTable, Huffman? acTable) in parts)
                {
                    int blocks = ns == 1 ? 1 : c.H * c.V;
                    for (int b = 0; b < blocks; b++)
                    {
                        bool ok = !progressive ? Baseline(dcTable!, acTable!)
                            : dcScan ? (ah == 0 ? Skip(dcTable!.Decode(this)) : Bit() >= 0)
                            : FirstAc(acTable!, ss, se, ref eobRun);
                        if (!ok)
                        {
                            return $"a scan stops after {u} of {units} blocks: premature end of data";
                        }
                    }
                }
            }

            SkipToMarker();
            return null;
        }

        private bool Baseline(Huffman dcTable, Huffman acTable)
        {
            if (!Skip(dcTable.Decode(this)))
            {
                return false;
            }

            for (int k = 1; k < 64;)
            {
                int rs = acTable.Decode(this);
                if (rs < 0)
                {
                    return false;
                }

                int r = rs >> 4, s = rs & 15;
                if (s == 0)
                {
                    if (r != 15)
                    {
                        return true;
                    }

                    k += 16;
                    continue;
                }

                k += r + 1;
                if (!Skip(s))
                {
                    return false;
                }
            }

            return true;
        }

        private bool FirstAc(Huffman table, int ss, int se, ref int eobRun)
        {
            if (eobRun > 0)
            {
                eobRun--;
                return true;
            }

            for (int k = ss; k <= se;)
            {
                int rs = table.Decode(this);
                if (rs < 0)
                {
                    return false;
                }

                int r = rs >> 4, s = rs & 15;
                if (s == 0)
                {
                    if (r < 15)
                    {
                        eobRun = (1 << r) - 1;
                        if (r > 0)
                        {
                            int extra = Bits(r);
                            if (extra < 0)
                            {
                                return false;
                            }

                            eobRun += extra;
                        }

                        return true;
                    }

                    k += 16;
                    continue;
                }

                k += r + 1;
                if (!Skip(s))
                {
                    return false;
                }
            }

            return true;
        }

        private bool Skip(int n) => n >= 0 && n <= 16 && (n == 0 || Bits(n) >= 0);

        private int Bits(int n)
        {
            int v = 0;
            for (int i = 0; i < n; i++)
            {
                int b = Bit();
                if (b < 0)
                {
                    return -1;
                }

                v = (v << 1) | b;
            }

            return v;
        }

        /// <summary>The next bit of the entropy-coded data, or −1 at a marker or the end of the file.</summary>
        public int Bit()
        {
            if (bitCount == 0)
            {
                if (hitMarker || pos >= d.Length)
                {
                    return -1;
                }

                byte b = d[pos];
                if (b == 0xFF)
                {
                    if (pos + 1 >= d.Length || d[pos + 1] != 0x00)
                    {
                        hitMarker = true;
                        return -1;
                    }

                    pos += 2;
                }
                else
                {
                    pos++;
                }

                bits = b;
                bitCount = 8;
            }

            bitCount--;
            return (bits >> bitCount) & 1;
        }

        private void SkipToMarker()
        {
            while (pos + 1 < d.Length && !(d[pos] == 0xFF && d[pos + 1] != 0x00 && d[pos + 1] is < 0xD0 or > 0xD7))
            {
                pos++;
            }
        }
    }
}
