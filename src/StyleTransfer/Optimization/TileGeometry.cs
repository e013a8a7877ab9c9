using System.Globalization;

namespace StyleTransfer.Optimization;

/// <summary>One tile of a tiled evaluation: its interior (what it contributes) and its crop (interior plus halo), in input pixels.</summary>
/// <param name="Y0">Interior top (a multiple of the alignment).</param>
/// <param name="Y1">Interior bottom (exclusive; the image height for the last row of tiles).</param>
/// <param name="X0">Interior left.</param>
/// <param name="X1">Interior right (exclusive).</param>
/// <param name="CropY0">Crop top: Y0 − halo, at least 0 (a multiple of the alignment).</param>
/// <param name="CropY1">Crop bottom: Y1 + halo, at most the height.</param>
/// <param name="CropX0">Crop left.</param>
/// <param name="CropX1">Crop right.</param>
/// <param name="Row">Row of the tile in the grid.</param>
/// <param name="Col">Column of the tile in the grid.</param>
internal sealed record Tile(int Y0, int Y1, int X0, int X1, int CropY0, int CropY1, int CropX0, int CropX1, int Row, int Col)
{
    public bool LastRow(int height) => Y1 == height;

    public bool LastCol(int width) => X1 == width;

    /// <summary>
    /// The interior of a feature map of this crop at a tap of stride <paramref name="stride"/>: rows
    /// [start, end) and columns; a last row or column of tiles runs to the map's edge, as the
    /// whole image's map does.
    /// </summary>
    public (long Y, long H, long X, long W) FeatureInterior(int stride, long mapHeight, long mapWidth, int height, int width)
    {
        long y = (Y0 - CropY0) / stride, x = (X0 - CropX0) / stride;
        long yEnd = LastRow(height) ? mapHeight : Math.Min(mapHeight, (Y1 - CropY0) / stride);
        long xEnd = LastCol(width) ? mapWidth : Math.Min(mapWidth, (X1 - CropX0) / stride);
        return (y, Math.Max(0, yEnd - y), x, Math.Max(0, xEnd - x));
    }
}

/// <summary>
/// Where a network's taps can be cut into tiles: each tap's stride (tile borders must fall on
/// multiples of the deepest one, so every tile's feature grid is the whole image's) and its
/// receptive radius (how many input pixels beyond a feature's own position it sees; a halo that
/// large makes a tile's interior features equal the whole image's).
/// </summary>
internal static class TileGeometry
{
    /// <summary>The anti-aliasing filter's reach: its 5×5 chroma kernel (<see cref="Networks.AntiAliasedInput"/>).</summary>
    public const int AntiAliasRadius = 2;

    /// <summary>Extra pixels on every receptive radius: ONNX/CNTK pads may put a strided layer's window one pixel off centre.</summary>
    public const int Margin = 8;

    /// <summary>Networks whose geometry is known here.</summary>
    public static readonly IReadOnlyList<string> Networks = ["resnet18", "vgg19"];

    /// <summary>Stride and receptive radius per tap (and per luminance tap, <see cref="Networks.LuminanceTaps"/>: the same layer), or null for a network tiling does not know.</summary>
    public static IReadOnlyDictionary<string, (int Stride, int Radius)>? Taps(string network) => network switch
    {
        "resnet18" => ResNet18Taps.Value,
        "vgg19" => Vgg19Taps.Value,
        _ => null,
    };

    /// <summary><paramref name="table"/> with each tap's luminance tap added.</summary>
    private static Dictionary<string, (int, int)> WithLuminance(Dictionary<string, (int, int)> table)
    {
        foreach (string tap in table.Keys.ToList())
        {
            table[global::StyleTransfer.Networks.LuminanceTaps.Luminance(tap)] = table[tap];
        }

        return table;
    }

    /// <summary>
    /// (alignment, exact halo) for <paramref name="taps"/>: the alignment is the deepest tap's
    /// stride, the halo its receptive radius (+ the anti-aliasing filter's and a margin), rounded
    /// up to a multiple of the alignment.
    /// </summary>
    public static (int Align, int Halo) For(string network, IEnumerable<string> taps, bool antiAlias)
    {
        IReadOnlyDictionary<string, (int Stride, int Radius)> table = Taps(network)
            ?? throw new StyleTransferException($"tiled evaluation supports {string.Join(" and ", Networks)}, not {network}");
        int align = 1, radius = 0;
        foreach (string tap in taps)
        {
            if (!table.TryGetValue(tap, out var g))
            {
                throw new StyleTransferException($"tiled evaluation does not know the receptive field of {network}'s tap '{tap}'");
            }

            align = Math.Max(align, g.Stride);
            radius = Math.Max(radius, g.Radius);
        }

        radius += Margin + (antiAlias ? AntiAliasRadius : 0);
        return (align, RoundUp(radius, align));
    }

    public static int RoundUp(int value, int multiple) => (value + multiple - 1) / multiple * multiple;

    /// <summary>
    /// Cuts an image of <paramref name="height"/>×<paramref name="width"/> into tiles of interior
    /// about <paramref name="tile"/> px (borders on multiples of <paramref name="align"/>, sizes
    /// evened out), each cropped with <paramref name="halo"/> px around it.
    /// </summary>
    public static List<Tile> Plan(int height, int width, int tile, int align, int halo)
    {
        int[] rows = Cuts(height, tile, align), cols = Cuts(width, tile, align);
        var tiles = new List<Tile>();
        for (int r = 0; r < rows.Length - 1; r++)
        {
            for (int c = 0; c < cols.Length - 1; c++)
            {
                (int y0, int y1, int x0, int x1) = (rows[r], rows[r + 1], cols[c], cols[c + 1]);
                tiles.Add(new Tile(y0, y1, x0, x1, Math.Max(0, y0 - halo), Math.Min(height, y1 + halo), Math.Max(0, x0 - halo), Math.Min(width, x1 + halo), r, c));
            }
        }

        return tiles;
    }

    /// <summary>Human-readable halo note for the start-up line.</summary>
    public static string Describe(int tile, int halo) => string.Create(CultureInfo.InvariantCulture, $"{tile} px tiles (+{halo} px halo)");

    private static int[] Cuts(int length, int tile, int align)
    {
        int n = Math.Max(1, (int)Math.Ceiling(length / (double)Math.Max(align, tile)));
        var cuts = new List<int> { 0 };
        for (int k = 1; k < n; k++)
        {
            int a = (int)Math.Round(k * (double)length / n / align) * align;
            if (a > cuts[^1] && a < length)
            {
                cuts.Add(a);
            }
        }

        cuts.Add(length);
        return [.. cuts];
    }

    private static readonly Lazy<Dictionary<string, (int, int)>> ResNet18Taps = new(() =>
    {
        // Receptive field size per tap (7×7/2 stem, 3×3/2 max pool, 3×3 convolutions, a stride 2 at
        // the first convolution of stages 2–4); radius (RF − 1) / 2, windows centred.
        var t = new Dictionary<string, (int, int)>(StringComparer.Ordinal)
        {
            ["conv1"] = (2, 3),
            ["relu1"] = (2, 3),
            ["pool1"] = (4, 5),
        };
        int rf = 11, jump = 4;
        int[] blocks = [2, 2, 2, 2];
        for (int s = 0; s < blocks.Length; s++)
        {
            for (int b = 0; b < blocks[s]; b++)
            {
                bool down = s > 0 && b == 0;
                rf += 2 * jump;
                jump *= down ? 2 : 1;
                string name = string.Create(CultureInfo.InvariantCulture, $"layer{s + 1}_{b}");
                t[name + "_relu1"] = (jump, (rf - 1) / 2);
                rf += 2 * jump;
                t[name] = (jump, (rf - 1) / 2);
            }

            t[string.Create(CultureInfo.InvariantCulture, $"layer{s + 1}")] = t[string.Create(CultureInfo.InvariantCulture, $"layer{s + 1}_{blocks[s] - 1}")];
        }

        return WithLuminance(t);
    });

    private static readonly Lazy<Dictionary<string, (int, int)>> Vgg19Taps = new(() =>
    {
        // 3×3 convolutions (padding 1) and 2×2/2 pooling: a feature at stride s, position s·j, sees
        // input pixels s·j + lo … s·j + hi; a halo must cover max(−lo, hi − s + 1).
        var t = new Dictionary<string, (int, int)>(StringComparer.Ordinal);
        int lo = 0, hi = 0, jump = 1;
        int[] convs = [2, 2, 4, 4, 4];
        for (int b = 0; b < convs.Length; b++)
        {
            for (int k = 0; k < convs[b]; k++)
            {
                lo -= jump;
                hi += jump;
                int r = Math.Max(-lo, hi - jump + 1);
                t[string.Create(CultureInfo.InvariantCulture, $"conv{b + 1}_{k + 1}")] = (jump, r);
                t[string.Create(CultureInfo.InvariantCulture, $"relu{b + 1}_{k + 1}")] = (jump, r);
            }

            hi += jump;
            jump *= 2;
            t[string.Create(CultureInfo.InvariantCulture, $"pool{b + 1}")] = (jump, Math.Max(-lo, hi - jump + 1));
        }

        return WithLuminance(t);
    });
}
