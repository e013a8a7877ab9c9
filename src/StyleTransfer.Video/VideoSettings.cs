using System.Text.Json.Serialization;

namespace StyleTransfer.Video;

/// <summary>How the frames of a video are stylised.</summary>
public enum VideoMethod
{
    /// <summary>Ruder et al.: frame t starts from frame t−1's result warped along the flow and is held to it by the temporal loss.</summary>
    Temporal,

    /// <summary>Each frame stylised as an image, independently (flickers; the baseline).</summary>
    Independent,
}

/// <summary>The video settings on top of the per-frame <see cref="StyleTransferOptions"/>; the defaults live here.</summary>
public sealed record VideoSettings
{
    /// <summary>Default of <see cref="TemporalWeight"/> (chosen by measurement, docs/video.md).</summary>
    public const double DefaultTemporalWeight = 1e6;

    /// <summary>Default of <see cref="FrameIterations"/> (chosen by measurement, docs/video.md).</summary>
    public const int DefaultFrameIterations = 50;

    /// <summary>Frame rate given to a folder of frames.</summary>
    public const double DefaultFolderFrameRate = 25;

    public VideoMethod Method { get; init; } = VideoMethod.Temporal;

    /// <summary>λ_t, the weight of the temporal loss (mean over pixels of c·(x − warped)², pixels in [0,1]).</summary>
    public double TemporalWeight { get; init; } = DefaultTemporalWeight;

    /// <summary>L-BFGS iterations for every frame after the first (single scale, from the warped previous result); the first frame runs the image options.</summary>
    public int FrameIterations { get; init; } = DefaultFrameIterations;

    /// <summary>The largest frame offset <see cref="LongTerm"/> may name (the frames kept in memory).</summary>
    public const int MaxLongTermOffset = 32;

    /// <summary>The most offsets <see cref="LongTerm"/> may name (a flow pair and a warp each per frame).</summary>
    public const int MaxLongTermOffsets = 8;

    /// <summary>Default of <see cref="LongTerm"/>: frames t−1, t−2 and t−4 (chosen by measurement, docs/video.md).</summary>
    public static readonly IReadOnlyList<int> DefaultLongTerm = [1, 2, 4];

    /// <summary>
    /// Long-term consistency (Ruder et al.): the frame offsets j whose stylised frames t−j, warped into
    /// frame t, frame t is held to, each over the pixels it sees and no nearer one does. Offset 1 is
    /// always among them; [1] or null is short-term only.
    /// </summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public IReadOnlyList<int>? LongTerm { get; init; } = DefaultLongTerm;

    /// <summary>The offsets in use, ascending, 1 first.</summary>
    [JsonIgnore]
    public IReadOnlyList<int> Offsets => [.. (LongTerm ?? []).Append(1).Distinct().Order()];

    /// <summary>Stylise at most this many frames from the start (null: all).</summary>
    public int? MaxFrames { get; init; }

    /// <summary>The frame rate of a video made from a folder of frames.</summary>
    public double FolderFrameRate { get; init; } = DefaultFolderFrameRate;

    /// <summary>Measure each frame's warping error against the previous one and its style loss.</summary>
    public bool Report { get; init; }

    /// <summary>Where ffmpeg and ffprobe are looked for (null: $PATH).</summary>
    public string? SearchPath { get; init; }

    /// <summary>Checks the settings; a one-line error otherwise.</summary>
    public VideoSettings Validate()
    {
        if (!double.IsFinite(TemporalWeight) || TemporalWeight < 0)
        {
            throw new StyleTransferException($"--temporal-weight must be a number of 0 or more, not {TemporalWeight}");
        }

        if (FrameIterations < 1)
        {
            throw new StyleTransferException($"--frame-iterations must be at least 1, not {FrameIterations}");
        }

        if (MaxFrames is int m && m < 1)
        {
            throw new StyleTransferException($"--frames must be at least 1, not {m}");
        }

        if (!double.IsFinite(FolderFrameRate) || FolderFrameRate <= 0 || FolderFrameRate > 1000)
        {
            throw new StyleTransferException($"--fps must be above 0 and at most 1000, not {FolderFrameRate}");
        }

        foreach (int j in LongTerm ?? [])
        {
            if (j < 1 || j > MaxLongTermOffset)
            {
                throw new StyleTransferException($"--long-term: frame offsets must be from 1 to {MaxLongTermOffset}, not {j}");
            }
        }

        if (Offsets.Count > MaxLongTermOffsets)
        {
            throw new StyleTransferException($"--long-term: at most {MaxLongTermOffsets} frame offsets, not {Offsets.Count}");
        }

        return this;
    }

    /// <summary>Parses --long-term: comma-separated frame offsets ("1,2,4"); 1 is added when missing.</summary>
    public static IReadOnlyList<int> ParseLongTerm(string text)
    {
        var offsets = new List<int>();
        foreach (string part in text.Split(',', StringSplitOptions.TrimEntries))
        {
            if (!int.TryParse(part, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out int j))
            {
                throw new StyleTransferException($"--long-term: '{text}' is not a comma-separated list of frame offsets such as 1,2,4");
            }

            offsets.Add(j);
        }

        return offsets;
    }
}
