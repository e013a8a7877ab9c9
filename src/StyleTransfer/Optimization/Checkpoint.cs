using System.Buffers.Binary;
using System.Globalization;
using System.Reflection;
using System.Runtime.InteropServices;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization;
using TorchSharp;
using static TorchSharp.torch;

namespace StyleTransfer.Optimization;

/// <summary>
/// A resumable state of a run: the image being optimised (float32, unclamped, at the scale it is
/// at), where the run stands (scale, iteration), its seed and options, the fingerprints of its
/// input images, and the L-BFGS state. One .safetensors file: the tensors, and the rest as JSON in
/// the header's <c>__metadata__</c>, with the SHA-256 of that JSON and of the tensor data, checked
/// on load; written atomically.
/// </summary>
internal sealed class Checkpoint : IDisposable
{
    /// <summary>The options that must be the same to resume: they define the loss being minimised (and the images' sizes).</summary>
    public static readonly IReadOnlyList<string> MustMatch =
    [
        nameof(StyleTransferOptions.Network), nameof(StyleTransferOptions.Size), nameof(StyleTransferOptions.Scales), nameof(StyleTransferOptions.StyleScale),
        nameof(StyleTransferOptions.PreserveColor), nameof(StyleTransferOptions.Padding), nameof(StyleTransferOptions.ContentLayers), nameof(StyleTransferOptions.StyleLayers),
        nameof(StyleTransferOptions.StyleLayerWeights), nameof(StyleTransferOptions.ContentWeight), nameof(StyleTransferOptions.StyleWeight), nameof(StyleTransferOptions.TvWeight),
        nameof(StyleTransferOptions.FeatureTransform), nameof(StyleTransferOptions.SoftmaxTemperature), nameof(StyleTransferOptions.StyleNormalization),
        nameof(StyleTransferOptions.Pooling), nameof(StyleTransferOptions.NormalizeWeights), nameof(StyleTransferOptions.Optimizer), nameof(StyleTransferOptions.ContentLuminance),
        nameof(StyleTransferOptions.PaletteTransfer), nameof(StyleTransferOptions.SmallStyle),
    ];

    /// <summary>The options that may differ when a run resumes (the rest of <see cref="MustMatch"/>'s complement only changes how the same loss is minimised).</summary>
    private static readonly Opt[] MayChange =
    [
        Opt.Iterations with { Key = "Iterations.Short" }, Opt.SaveEvery, Opt.LineSearch, Opt.LbfgsHistory, Opt.LearningRate, Opt.Precision, Opt.Device, Opt.Threads,
    ];

    private const string MetadataKey = "stylize_checkpoint";
    private const string ChecksumKey = "stylize_sha256";
    private const int FormatVersion = 2;

    private static readonly JsonSerializerOptions Json = new()
    {
        Converters = { new JsonStringEnumConverter() },
        NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals,
    };

    /// <summary>0-based index of the scale the run is at (0 when single-scale).</summary>
    public int Scale { get; init; }

    /// <summary>Iterations done at that scale.</summary>
    public int ScaleIteration { get; init; }

    /// <summary>Iterations done in all, over every scale.</summary>
    public int Iteration { get; init; }

    public long Seed { get; init; }

    /// <summary>Optimisation time so far, in seconds.</summary>
    public double Seconds { get; init; }

    /// <summary>Objective evaluations so far, over every scale.</summary>
    public int Evaluations { get; init; }

    public required StyleTransferOptions Options { get; init; }

    /// <summary>SHA-256 (hex) of the content image file, when the run came from files.</summary>
    public string? ContentSha256 { get; set; }

    public string? StyleSha256 { get; set; }

    /// <summary>The image being optimised, [1,3,h,w] float32 on the CPU, not clamped.</summary>
    public required Tensor Image { get; init; }

    /// <summary>L-BFGS's state (null for Adam, whose moments are not kept: a resumed Adam run restarts them).</summary>
    public LbfgsState? Lbfgs { get; init; }

    /// <summary>Total, content, style and TV loss of the point the next iteration starts from, when already evaluated (line search).</summary>
    public double[]? StartLosses { get; init; }

    /// <summary>Where a run writing <paramref name="outputPath"/> keeps its checkpoint: out.png → out.ckpt.</summary>
    public static string PathFor(string outputPath) => Path.ChangeExtension(outputPath, ".ckpt");

    /// <summary>SHA-256 of a file, lower-case hex.</summary>
    public static string Sha256(string path)
    {
        using FileStream f = File.OpenRead(path);
        return Convert.ToHexStringLower(SHA256.HashData(f));
    }

    /// <summary>Writes the checkpoint (atomically: a reader sees the old file or the new one).</summary>
    public void Save(string path)
    {
        var tensors = new List<(string Name, Tensor T)> { ("image", Image) };
        if (Lbfgs is { } l)
        {
            for (int i = 0; i < l.Ys.Count; i++)
            {
                tensors.Add(($"lbfgs.y.{i}", l.Ys[i]));
                tensors.Add(($"lbfgs.s.{i}", l.Ss[i]));
            }

            AddIf(tensors, "lbfgs.direction", l.Direction);
            AddIf(tensors, "lbfgs.prev_grad", l.PrevGrad);
            AddIf(tensors, "lbfgs.current_grad", l.CurrentGrad);
        }

        var meta = new JsonObject
        {
            ["format"] = FormatVersion,
            ["scale"] = Scale,
            ["scale_iteration"] = ScaleIteration,
            ["iteration"] = Iteration,
            ["seed"] = Seed,
            ["seconds"] = Seconds,
            ["evaluations"] = Evaluations,
            ["content_sha256"] = ContentSha256,
            ["style_sha256"] = StyleSha256,
            ["start_losses"] = StartLosses is null ? null : new JsonArray([.. StartLosses.Select(v => (JsonNode?)JsonValue.Create(v))]),
            ["options"] = JsonSerializer.SerializeToNode(Options, Json),
        };
        if (Lbfgs is { } s)
        {
            meta["lbfgs"] = new JsonObject
            {
                ["pairs"] = s.Ys.Count,
                ["rho"] = new JsonArray([.. s.Rhos.Select(v => (JsonNode?)JsonValue.Create(v))]),
                ["h_diag"] = s.HDiag,
                ["t"] = s.T,
                ["iteration"] = s.Iteration,
                ["evaluations"] = s.Evaluations,
                ["stalls"] = s.Stalls,
                ["converged"] = s.Converged,
                ["start_evaluation"] = s.StartEvaluation,
                ["current_loss"] = s.CurrentLoss,
                ["current_ordinal"] = s.CurrentOrdinal,
            };
        }

        AtomicFile.Write(path, stream => WriteSafetensors(stream, tensors, meta.ToJsonString(Json)));
    }

    /// <summary>Reads a checkpoint; a missing, truncated or foreign file gives one line naming it.</summary>
    public static Checkpoint Load(string path)
    {
        if (!File.Exists(path))
        {
            throw StyleTransferException.Named($"{Opt.Resume}: checkpoint '{path}' does not exist");
        }

        Dictionary<string, Tensor>? tensors = null;
        try
        {
            (tensors, string metadata) = ReadSafetensors(path);
            JsonNode meta = JsonNode.Parse(metadata) ?? throw new FormatException("empty metadata");
            if ((int?)meta["format"] != FormatVersion)
            {
                throw new FormatException($"format {meta["format"]?.ToJsonString() ?? "missing"}, expected {FormatVersion}");
            }

            StyleTransferOptions options = Upgrade(Field(meta, "options").Deserialize<StyleTransferOptions>(Json) ?? throw new FormatException("no options"), Field(meta, "options"));
            CheckComplete(options, Field(meta, "options"));
            Tensor Take(string name) => tensors!.Remove(name, out Tensor? t) ? t : throw new FormatException($"no tensor '{name}'");
            Tensor? TakeIf(string name) => tensors!.Remove(name, out Tensor? t) ? t : null;
            LbfgsState? lbfgs = null;
            if (meta["lbfgs"] is JsonObject l)
            {
                int pairs = (int)Field(l, "pairs");
                if (pairs < 0)
                {
                    throw new FormatException($"{pairs} L-BFGS pairs");
                }

                lbfgs = new LbfgsState
                {
                    Ys = [.. Enumerable.Range(0, pairs).Select(i => Take($"lbfgs.y.{i}"))],
                    Ss = [.. Enumerable.Range(0, pairs).Select(i => Take($"lbfgs.s.{i}"))],
                    Rhos = [.. Field(l, "rho").AsArray().Select(v => (double)(v ?? throw new FormatException("'rho' holds null")))],
                    HDiag = (double)Field(l, "h_diag"),
                    T = (double)Field(l, "t"),
                    Iteration = (int)Field(l, "iteration"),
                    Evaluations = (int)Field(l, "evaluations"),
                    Stalls = (int)Field(l, "stalls"),
                    Converged = (bool)Field(l, "converged"),
                    StartEvaluation = (int)Field(l, "start_evaluation"),
                    CurrentLoss = (double?)l["current_loss"],
                    CurrentOrdinal = (int?)l["current_ordinal"],
                    Direction = TakeIf("lbfgs.direction"),
                    PrevGrad = TakeIf("lbfgs.prev_grad"),
                    CurrentGrad = TakeIf("lbfgs.current_grad"),
                };
                if (lbfgs.Rhos.Count != pairs)
                {
                    throw new FormatException("L-BFGS pairs and ρ differ in number");
                }
            }

            Tensor image = Take("image");
            if (image.dim() != 4 || image.shape[0] != 1 || image.shape[1] != 3 || image.shape[2] < 1 || image.shape[3] < 1)
            {
                throw new FormatException("the image is not [1,3,H,W]");
            }

            return new Checkpoint
            {
                Scale = (int)Field(meta, "scale"),
                ScaleIteration = (int)Field(meta, "scale_iteration"),
                Iteration = (int)Field(meta, "iteration"),
                Seed = (long)Field(meta, "seed"),
                Seconds = (double)Field(meta, "seconds"),
                Evaluations = (int)Field(meta, "evaluations"),
                ContentSha256 = (string?)meta["content_sha256"],
                StyleSha256 = (string?)meta["style_sha256"],
                StartLosses = meta["start_losses"] is JsonArray a ? [.. a.Select(v => (double)(v ?? throw new FormatException("'start_losses' holds null")))] : null,
                Options = options,
                Image = image,
                Lbfgs = lbfgs,
            };
        }
        catch (Exception e) when (e is FormatException or JsonException or InvalidOperationException or InvalidCastException or NullReferenceException or EndOfStreamException or ArgumentException or OverflowException or IOException or ExternalException or UnauthorizedAccessException)
        {
            string first = e.Message.Split('\n')[0].Trim();
            throw StyleTransferException.Named($"{Opt.Resume}: '{path}' is not a readable stylize checkpoint ({first})");
        }
        finally
        {
            foreach (Tensor t in tensors?.Values ?? Enumerable.Empty<Tensor>())
            {
                t.Dispose();
            }
        }
    }

    /// <summary>
    /// Refuses (one line) to resume under options or inputs that define another loss: the options
    /// in <see cref="MustMatch"/>, and the content and style files' SHA-256 when both are known.
    /// </summary>
    public void CheckCompatible(StyleTransferOptions options, string? contentSha256, string? styleSha256, string path)
    {
        Dictionary<string, string> mine = Signature(Options), theirs = Signature(options);
        foreach (string name in MustMatch)
        {
            if (mine[name] != theirs[name])
            {
                throw StyleTransferException.Named(
                    $"{Opt.Resume}: checkpoint '{path}' was made with {new Opt(name, mine[name])}, not {theirs[name]} (only {MayChange} may change)");
            }
        }

        if (contentSha256 != null && ContentSha256 != null && contentSha256 != ContentSha256)
        {
            throw StyleTransferException.Named($"{Opt.Resume}: checkpoint '{path}' was made from another content image (SHA-256 differs)");
        }

        if (styleSha256 != null && StyleSha256 != null && styleSha256 != StyleSha256)
        {
            throw StyleTransferException.Named($"{Opt.Resume}: checkpoint '{path}' was made from another style image (SHA-256 differs)");
        }
    }

    public void Dispose()
    {
        Image.Dispose();
        Lbfgs?.Dispose();
    }

    private static Dictionary<string, string> Signature(StyleTransferOptions o)
    {
        static string G(double v) => v.ToString("R", CultureInfo.InvariantCulture);
        static string L(string v) => v.ToLowerInvariant();
        return new Dictionary<string, string>
        {
            [nameof(StyleTransferOptions.Network)] = o.Network,
            [nameof(StyleTransferOptions.Size)] = o.Size.ToString(CultureInfo.InvariantCulture),
            [nameof(StyleTransferOptions.Scales)] = string.Join(",", o.ScaleSizes),
            [nameof(StyleTransferOptions.StyleScale)] = G(o.StyleScale),
            [nameof(StyleTransferOptions.PreserveColor)] = L(o.PreserveColor.ToString()),
            [nameof(StyleTransferOptions.PaletteTransfer)] = G(o.PaletteTransfer),
            [nameof(StyleTransferOptions.SmallStyle)] = L(o.SmallStyle.ToString()),
            [nameof(StyleTransferOptions.Padding)] = L(o.Padding.ToString()),
            [nameof(StyleTransferOptions.AntiAlias)] = o.AntiAlias ? "on" : "off",
            [nameof(StyleTransferOptions.SizeInvariant)] = o.SizeInvariant ? "on" : "off",
            [nameof(StyleTransferOptions.ContentLayers)] = string.Join(",", o.ContentLayers),
            [nameof(StyleTransferOptions.StyleLayers)] = string.Join(",", o.StyleLayers),
            [nameof(StyleTransferOptions.StyleLayerWeights)] = string.Join(",", o.EffectiveStyleLayerWeights.Select(G)),
            [nameof(StyleTransferOptions.ContentWeight)] = G(o.ContentWeight),
            [nameof(StyleTransferOptions.StyleWeight)] = G(o.StyleWeight),
            [nameof(StyleTransferOptions.TvWeight)] = G(o.TvWeight),
            [nameof(StyleTransferOptions.TvChromaWeight)] = G(o.TvChromaWeight),
            [nameof(StyleTransferOptions.ContentLuminance)] = o.ContentLuminance ? "on" : "off",
            [nameof(StyleTransferOptions.FeatureTransform)] = L(o.FeatureTransform.ToString()),
            [nameof(StyleTransferOptions.SoftmaxTemperature)] = G(o.SoftmaxTemperature),
            [nameof(StyleTransferOptions.StyleNormalization)] = L(o.StyleNormalization.ToString()),
            [nameof(StyleTransferOptions.Pooling)] = L(o.Pooling.ToString()),
            [nameof(StyleTransferOptions.NormalizeWeights)] = o.NormalizeWeights ? "on" : "off",
            [nameof(StyleTransferOptions.Optimizer)] = L(o.Optimizer.ToString()),
        };
    }

    /// <summary>
    /// The options of a checkpoint written before a setting existed, as that run had them: a missing
    /// <see cref="StyleTransferOptions.SmallStyle"/> (before the eighth session) was
    /// <see cref="SmallStyleMode.Enlarge"/>, whatever the network's default is now.
    /// </summary>
    internal static StyleTransferOptions Upgrade(StyleTransferOptions options, JsonNode json) =>
        json is JsonObject o && !o.ContainsKey(nameof(StyleTransferOptions.SmallStyle)) ? options with { SmallStyle = SmallStyleMode.Enlarge } : options;

    /// <summary>A field that must be there and not null.</summary>
    private static JsonNode Field(JsonNode node, string name) => node[name] ?? throw new FormatException($"'{name}' is missing");

    /// <summary>Refuses options whose non-nullable references (lists, names) are missing: a hand-edited or damaged header.</summary>
    /// <remarks>A setting whose default depends on the network reads that default when it is null, so the JSON itself is checked too.</remarks>
    private static void CheckComplete(StyleTransferOptions options, JsonNode json)
    {
        var nullability = new NullabilityInfoContext();
        foreach (PropertyInfo p in typeof(StyleTransferOptions).GetProperties(BindingFlags.Public | BindingFlags.Instance))
        {
            if (!p.PropertyType.IsValueType && p.CanWrite && nullability.Create(p).ReadState == NullabilityState.NotNull
                && (p.GetValue(options) is null || (json is JsonObject o && o.TryGetPropertyValue(p.Name, out JsonNode? v) && v is null)))
            {
                throw new FormatException($"option '{p.Name}' is missing");
            }
        }

        if (options.ContentLayers.Any(l => l is null) || options.StyleLayers.Any(l => l is null))
        {
            throw new FormatException("a layer name is null");
        }
    }

    private static void AddIf(List<(string, Tensor)> list, string name, Tensor? t)
    {
        if (t is not null)
        {
            list.Add((name, t));
        }
    }

    /// <summary>
    /// safetensors: u64 header length (little-endian), the JSON header, then the raw float32 data;
    /// the header's metadata carries the SHA-256 of the metadata JSON followed by the data.
    /// </summary>
    private static void WriteSafetensors(Stream stream, List<(string Name, Tensor T)> tensors, string metadata)
    {
        long offset = 0;
        var data = new List<float[]>();
        var entries = new JsonObject();
        using var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        sha.AppendData(Encoding.UTF8.GetBytes(metadata));
        foreach ((string name, Tensor t) in tensors)
        {
            using Tensor cpu = t.detach().to(ScalarType.Float32).to(torch.CPU).contiguous();
            float[] values = cpu.data<float>().ToArray();
            data.Add(values);
            sha.AppendData(MemoryMarshal.AsBytes(values.AsSpan()));
            long bytes = values.LongLength * sizeof(float);
            entries[name] = new JsonObject
            {
                ["dtype"] = "F32",
                ["shape"] = new JsonArray([.. t.shape.Select(d => (JsonNode?)JsonValue.Create(d))]),
                ["data_offsets"] = new JsonArray(offset, offset + bytes),
            };
            offset += bytes;
        }

        var header = new JsonObject
        {
            ["__metadata__"] = new JsonObject { [MetadataKey] = metadata, [ChecksumKey] = Convert.ToHexStringLower(sha.GetHashAndReset()) },
        };
        foreach ((string name, JsonNode? entry) in entries.ToList())
        {
            entries.Remove(name);
            header[name] = entry;
        }

        byte[] json = Encoding.UTF8.GetBytes(header.ToJsonString());
        int padded = (json.Length + 7) / 8 * 8;
        Span<byte> length = stackalloc byte[8];
        BinaryPrimitives.WriteUInt64LittleEndian(length, (ulong)padded);
        stream.Write(length);
        stream.Write(json);
        for (int i = json.Length; i < padded; i++)
        {
            stream.WriteByte((byte)' ');
        }

        foreach (float[] values in data)
        {
            stream.Write(MemoryMarshal.AsBytes(values.AsSpan()));
        }
    }

    /// <summary>
    /// Reads the tensors and the metadata after checking the structure (shapes, offsets that tile
    /// the data exactly) and the SHA-256 of the metadata and the data, before allocating any tensor.
    /// </summary>
    private static (Dictionary<string, Tensor> Tensors, string Metadata) ReadSafetensors(string path)
    {
        using FileStream f = File.OpenRead(path);
        Span<byte> length = stackalloc byte[8];
        f.ReadExactly(length);
        ulong headerLength = BinaryPrimitives.ReadUInt64LittleEndian(length);
        if (headerLength == 0 || headerLength > (ulong)f.Length - 8 || headerLength > 100_000_000)
        {
            throw new FormatException("no safetensors header");
        }

        byte[] json = new byte[headerLength];
        f.ReadExactly(json);
        JsonObject header = JsonNode.Parse(json)?.AsObject() ?? throw new FormatException("empty header");
        string metadata = (string?)header["__metadata__"]?[MetadataKey] ?? throw new FormatException("no stylize metadata");
        long dataStart = 8 + (long)headerLength, dataLength = f.Length - dataStart;
        var layout = new List<(string Name, long[] Shape, long Begin, long End)>();
        foreach ((string name, JsonNode? node) in header)
        {
            if (name == "__metadata__")
            {
                continue;
            }

            if ((string?)node?["dtype"] != "F32")
            {
                throw new FormatException($"tensor '{name}' is not F32");
            }

            long[] shape = [.. Field(node, "shape").AsArray().Select(v => (long)(v ?? throw new FormatException($"tensor '{name}' has a null dimension")))];
            long count = 1;
            foreach (long d in shape)
            {
                count = d < 0 || d > dataLength ? throw new FormatException($"tensor '{name}' has shape [{string.Join(",", shape)}]") : checked(count * d);
            }

            JsonArray offsets = Field(node, "data_offsets").AsArray();
            long begin = (long)offsets[0]!, end = (long)offsets[1]!;
            if (offsets.Count != 2 || begin < 0 || end > dataLength || end - begin != checked(count * sizeof(float)))
            {
                throw new FormatException($"tensor '{name}' is truncated or its offsets are wrong");
            }

            layout.Add((name, shape, begin, end));
        }

        layout.Sort((x, y) => x.Begin.CompareTo(y.Begin));
        long expected = 0;
        foreach ((string name, _, long begin, long end) in layout)
        {
            if (begin != expected)
            {
                throw new FormatException($"tensor '{name}' overlaps another or leaves a gap");
            }

            expected = end;
        }

        if (expected != dataLength)
        {
            throw new FormatException($"the data is {dataLength} bytes, the tensors need {expected}");
        }

        string? checksum = (string?)header["__metadata__"]?[ChecksumKey] ?? throw new FormatException("no checksum");
        using (var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256))
        {
            sha.AppendData(Encoding.UTF8.GetBytes(metadata));
            f.Position = dataStart;
            byte[] buffer = new byte[1 << 20];
            for (int n; (n = f.Read(buffer)) > 0;)
            {
                sha.AppendData(buffer, 0, n);
            }

            if (!string.Equals(Convert.ToHexStringLower(sha.GetHashAndReset()), checksum, StringComparison.Ordinal))
            {
                throw new FormatException("its SHA-256 checksum does not match: the file is damaged");
            }
        }

        var tensors = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        try
        {
            foreach ((string name, long[] shape, long begin, long end) in layout)
            {
                var values = new float[(end - begin) / sizeof(float)];
                f.Position = dataStart + begin;
                f.ReadExactly(MemoryMarshal.AsBytes(values.AsSpan()));
                tensors[name] = torch.tensor(values, shape);
            }
        }
        catch
        {
            foreach (Tensor t in tensors.Values)
            {
                t.Dispose();
            }

            throw;
        }

        return (tensors, metadata);
    }
}
