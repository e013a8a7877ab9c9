using System.Runtime.InteropServices;
using SixLabors.ImageSharp;
using SixLabors.ImageSharp.PixelFormats;
using SixLabors.ImageSharp.Processing;
using SkiaSharp;

namespace StyleTransfer.Imaging;

/// <summary>One cell of a contact sheet: an image (or none: left blank) and a caption under it.</summary>
internal sealed record SheetCell(int Row, int Column, string? Caption, Image<Rgb24>? Image = null);

/// <summary>
/// What a contact sheet shows: a grid of <see cref="Rows"/> × <see cref="Columns"/> tiles, each at
/// most <see cref="TileWidth"/> × <see cref="TileHeight"/> (larger images are scaled down to fit,
/// smaller ones centred), with optional captions, column headers, row headers and a title.
/// </summary>
internal sealed record SheetSpec(int Rows, int Columns, int TileWidth, int TileHeight, IReadOnlyList<SheetCell> Cells)
{
    /// <summary>One per column, above the first row; null: none.</summary>
    public IReadOnlyList<string>? ColumnHeaders { get; init; }

    /// <summary>One per row, left of the first column; null: none.</summary>
    public IReadOnlyList<string>? RowHeaders { get; init; }

    /// <summary>One line above everything; null: none.</summary>
    public string? Title { get; init; }

    /// <summary>Text size in pixels.</summary>
    public float FontSize { get; init; } = 14;

    /// <summary>A font size that suits tiles of this size: 1/14 of the short side, from 10 to 18 px.</summary>
    public static float FontSizeFor(int tileWidth, int tileHeight) => Math.Clamp(MathF.Round(Math.Min(tileWidth, tileHeight) / 14f), 10, 18);
}

/// <summary>A rectangle in sheet pixels.</summary>
internal readonly record struct Box(int X, int Y, int Width, int Height)
{
    public int Right => X + Width;

    public int Bottom => Y + Height;
}

/// <summary>
/// Where everything of a <see cref="SheetSpec"/> goes. Columns are all as wide as the widest tile,
/// caption or column header; a caption line sits under every tile when any cell has one.
/// </summary>
internal sealed class SheetLayout
{
    internal SheetLayout(SheetSpec spec, Func<string, float> measure)
    {
        Spec = spec;
        Padding = Math.Max(4, (int)MathF.Round(spec.FontSize * 0.6f));
        LineHeight = (int)MathF.Ceiling(spec.FontSize * 1.5f);
        int Text(string? s) => s == null ? 0 : (int)MathF.Ceiling(measure(s));

        TitleHeight = spec.Title != null ? LineHeight : 0;
        HeaderHeight = spec.ColumnHeaders != null ? LineHeight : 0;
        CaptionHeight = spec.Cells.Any(c => c.Caption != null) ? LineHeight : 0;
        RowHeaderWidth = spec.RowHeaders is { Count: > 0 } rh ? rh.Max(Text) + Padding : 0;
        int widestText = spec.Cells.Select(c => Text(c.Caption)).Concat(spec.ColumnHeaders?.Select(Text) ?? []).DefaultIfEmpty(0).Max();
        ColumnWidth = Math.Max(spec.TileWidth, widestText + 4);
        int gridWidth = (Padding * 2) + RowHeaderWidth + (spec.Columns * ColumnWidth) + ((spec.Columns - 1) * Padding);
        Width = Math.Max(gridWidth, Text(spec.Title) + (Padding * 2));
        Height = (Padding * 2) + TitleHeight + HeaderHeight + (spec.Rows * (spec.TileHeight + CaptionHeight)) + ((spec.Rows - 1) * Padding);
    }

    public SheetSpec Spec { get; }

    public int Width { get; }

    public int Height { get; }

    public int Padding { get; }

    public int LineHeight { get; }

    public int ColumnWidth { get; }

    public int RowHeaderWidth { get; }

    public int TitleHeight { get; }

    public int HeaderHeight { get; }

    public int CaptionHeight { get; }

    /// <summary>The title line (zero height without a title).</summary>
    public Box Title => new(Padding, Padding, Width - (2 * Padding), TitleHeight);

    /// <summary>Where column <paramref name="column"/>'s tile image goes in row <paramref name="row"/>.</summary>
    public Box Tile(int row, int column) =>
        new(ColumnX(column) + ((ColumnWidth - Spec.TileWidth) / 2), RowY(row), Spec.TileWidth, Spec.TileHeight);

    /// <summary>The caption line under a tile (zero height when no cell has a caption).</summary>
    public Box Caption(int row, int column) => new(ColumnX(column), RowY(row) + Spec.TileHeight, ColumnWidth, CaptionHeight);

    public Box ColumnHeader(int column) => new(ColumnX(column), Padding + TitleHeight, ColumnWidth, HeaderHeight);

    /// <summary>The row header, level with the row's tiles.</summary>
    public Box RowHeader(int row) => new(Padding, RowY(row), Math.Max(0, RowHeaderWidth - Padding), Spec.TileHeight);

    private int ColumnX(int column) => Padding + RowHeaderWidth + (column * (ColumnWidth + Padding));

    private int RowY(int row) => Padding + TitleHeight + HeaderHeight + (row * (Spec.TileHeight + CaptionHeight + Padding));
}

/// <summary>Composes labelled contact sheets (SkiaSharp draws the text; ImageSharp 2 has none).</summary>
internal static class ContactSheet
{
    private static readonly Lazy<SKTypeface?> Typeface = new(FindTypeface);

    /// <summary>The layout of <paramref name="spec"/> with the sheet font's text widths.</summary>
    public static SheetLayout Layout(SheetSpec spec)
    {
        using SKFont font = Font(spec.FontSize);
        return Layout(spec, s => font.MeasureText(s));
    }

    /// <summary>The layout of <paramref name="spec"/> with text widths from <paramref name="measure"/> (tests use a fixed width per character).</summary>
    public static SheetLayout Layout(SheetSpec spec, Func<string, float> measure)
    {
        if (spec.Rows < 1 || spec.Columns < 1 || spec.TileWidth < 1 || spec.TileHeight < 1)
        {
            throw new ArgumentException("a sheet needs at least one row and column and tiles of at least 1x1", nameof(spec));
        }

        if ((spec.ColumnHeaders != null && spec.ColumnHeaders.Count != spec.Columns) || (spec.RowHeaders != null && spec.RowHeaders.Count != spec.Rows))
        {
            throw new ArgumentException("one header per column and per row", nameof(spec));
        }

        foreach (SheetCell cell in spec.Cells)
        {
            if (cell.Row < 0 || cell.Row >= spec.Rows || cell.Column < 0 || cell.Column >= spec.Columns)
            {
                throw new ArgumentException($"cell ({cell.Row}, {cell.Column}) is outside the {spec.Rows}x{spec.Columns} sheet", nameof(spec));
            }
        }

        return new SheetLayout(spec, measure);
    }

    /// <summary>Draws the sheet: white background, the tiles, dark text.</summary>
    public static Image<Rgb24> Render(SheetSpec spec)
    {
        SheetLayout layout = Layout(spec);
        var info = new SKImageInfo(layout.Width, layout.Height, SKColorType.Rgba8888, SKAlphaType.Premul);
        using SKSurface surface = SKSurface.Create(info) ?? throw new StyleTransferException($"cannot allocate a {layout.Width}x{layout.Height} sheet");
        SKCanvas canvas = surface.Canvas;
        canvas.Clear(SKColors.White);
        using SKFont font = Font(spec.FontSize);
        using var ink = new SKPaint { Color = new SKColor(0x20, 0x20, 0x20), IsAntialias = true };

        foreach (SheetCell cell in spec.Cells)
        {
            Box tile = layout.Tile(cell.Row, cell.Column);
            if (cell.Image != null)
            {
                using SKBitmap bitmap = ToBitmap(cell.Image, tile.Width, tile.Height);
                canvas.DrawBitmap(bitmap, tile.X + ((tile.Width - bitmap.Width) / 2), tile.Y + ((tile.Height - bitmap.Height) / 2));
            }

            if (cell.Caption != null)
            {
                DrawText(canvas, cell.Caption, layout.Caption(cell.Row, cell.Column), SKTextAlign.Center, font, ink);
            }
        }

        for (int c = 0; c < (spec.ColumnHeaders?.Count ?? 0); c++)
        {
            DrawText(canvas, spec.ColumnHeaders![c], layout.ColumnHeader(c), SKTextAlign.Center, font, ink);
        }

        for (int r = 0; r < (spec.RowHeaders?.Count ?? 0); r++)
        {
            DrawText(canvas, spec.RowHeaders![r], layout.RowHeader(r), SKTextAlign.Right, font, ink);
        }

        if (spec.Title != null)
        {
            DrawText(canvas, spec.Title, layout.Title, SKTextAlign.Left, font, ink);
        }

        canvas.Flush();
        var pixels = new byte[layout.Width * layout.Height * 4];
        var readInfo = new SKImageInfo(layout.Width, layout.Height, SKColorType.Rgba8888, SKAlphaType.Unpremul);
        GCHandle pin = GCHandle.Alloc(pixels, GCHandleType.Pinned);
        try
        {
            if (!surface.ReadPixels(readInfo, pin.AddrOfPinnedObject(), layout.Width * 4, 0, 0))
            {
                throw new InvalidOperationException("SkiaSharp could not read the sheet back");
            }
        }
        finally
        {
            pin.Free();
        }

        using Image<Rgba32> rgba = SixLabors.ImageSharp.Image.LoadPixelData<Rgba32>(pixels, layout.Width, layout.Height);
        return rgba.CloneAs<Rgb24>();
    }

    /// <summary>Renders the sheet and writes it as PNG or JPEG (by extension), atomically.</summary>
    public static SheetLayout Save(SheetSpec spec, string path, FileBatch? batch = null)
    {
        using Image<Rgb24> sheet = Render(spec);
        ImageIO.Save(sheet, path, batch);
        return Layout(spec);
    }

    private static SKFont Font(float size)
    {
        SKTypeface typeface = Typeface.Value
            ?? throw new StyleTransferException("no font found for the sheet's labels; install one (Debian: apt-get install fonts-dejavu-core)");
        return new SKFont(typeface, size) { Subpixel = true, Edging = SKFontEdging.Antialias };
    }

    /// <summary>A sans-serif face that has glyphs: DejaVu Sans where present (it has α and β), else the platform's default.</summary>
    private static SKTypeface? FindTypeface()
    {
        foreach (string family in new[] { "DejaVu Sans", "Liberation Sans", "Noto Sans", "Arial", "Helvetica" })
        {
            SKTypeface? t = SKFontManager.Default.MatchFamily(family);
            if (t is { GlyphCount: > 0 })
            {
                return t;
            }

            t?.Dispose();
        }

        SKTypeface fallback = SKTypeface.Default;
        return fallback.GlyphCount > 0 ? fallback : null;
    }

    private static void DrawText(SKCanvas canvas, string text, Box box, SKTextAlign align, SKFont font, SKPaint paint)
    {
        if (box.Height <= 0)
        {
            return;
        }

        SKFontMetrics m = font.Metrics;
        float baseline = box.Y + (box.Height / 2f) - ((m.Ascent + m.Descent) / 2f);
        float x = align switch
        {
            SKTextAlign.Center => box.X + (box.Width / 2f),
            SKTextAlign.Right => box.Right,
            _ => box.X,
        };
        canvas.DrawText(text, x, baseline, align, font, paint);
    }

    /// <summary>The image as a Skia bitmap, scaled down (Lanczos) to fit <paramref name="maxWidth"/> × <paramref name="maxHeight"/> when larger.</summary>
    private static SKBitmap ToBitmap(Image<Rgb24> image, int maxWidth, int maxHeight)
    {
        Image<Rgb24>? scaled = null;
        try
        {
            Image<Rgb24> source = image;
            if (image.Width > maxWidth || image.Height > maxHeight)
            {
                double scale = Math.Min((double)maxWidth / image.Width, (double)maxHeight / image.Height);
                int w = Math.Max(1, (int)Math.Round(image.Width * scale)), h = Math.Max(1, (int)Math.Round(image.Height * scale));
                scaled = image.Clone(x => x.Resize(Math.Min(w, maxWidth), Math.Min(h, maxHeight), KnownResamplers.Lanczos3));
                source = scaled;
            }

            var rgb = new Rgb24[source.Width * source.Height];
            source.CopyPixelDataTo(rgb);
            var rgba = new byte[rgb.Length * 4];
            for (int i = 0; i < rgb.Length; i++)
            {
                rgba[(4 * i) + 0] = rgb[i].R;
                rgba[(4 * i) + 1] = rgb[i].G;
                rgba[(4 * i) + 2] = rgb[i].B;
                rgba[(4 * i) + 3] = 255;
            }

            var bitmap = new SKBitmap(new SKImageInfo(source.Width, source.Height, SKColorType.Rgba8888, SKAlphaType.Opaque));
            if (bitmap.RowBytes != source.Width * 4)
            {
                bitmap.Dispose();
                throw new InvalidOperationException("unexpected SkiaSharp row stride");
            }

            Marshal.Copy(rgba, 0, bitmap.GetPixels(), rgba.Length);
            return bitmap;
        }
        finally
        {
            scaled?.Dispose();
        }
    }
}
