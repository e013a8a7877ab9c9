namespace StyleTransfer.Formats;

/// <summary>
/// Finds pretrained weights where PyTorch users already have them: an explicit path first, then
/// $TORCH_HOME/hub/checkpoints, then $XDG_CACHE_HOME/torch/hub/checkpoints, then ~/.cache/torch/hub/checkpoints.
/// </summary>
internal static class WeightLocator
{
    /// <summary>The folders searched for <paramref name="fileName"/>, in order.</summary>
    public static IReadOnlyList<string> CandidatePaths(string fileName)
    {
        var list = new List<string>();
        string? torchHome = Environment.GetEnvironmentVariable("TORCH_HOME");
        if (!string.IsNullOrEmpty(torchHome))
        {
            list.Add(Path.Combine(torchHome, "hub", "checkpoints", fileName));
        }

        string? xdg = Environment.GetEnvironmentVariable("XDG_CACHE_HOME");
        if (!string.IsNullOrEmpty(xdg))
        {
            list.Add(Path.Combine(xdg, "torch", "hub", "checkpoints", fileName));
        }

        string home = Environment.GetFolderPath(Environment.SpecialFolder.UserProfile);
        if (!string.IsNullOrEmpty(home))
        {
            list.Add(Path.Combine(home, ".cache", "torch", "hub", "checkpoints", fileName));
        }

        return list.Distinct(StringComparer.Ordinal).ToList();
    }

    /// <summary>
    /// The explicit path when given (it must exist), else the first candidate that exists, else null.
    /// </summary>
    public static string? Find(string? explicitPath, string fileName)
    {
        if (explicitPath != null)
        {
            if (!File.Exists(explicitPath))
            {
                throw new StyleTransferException($"weights file '{explicitPath}' does not exist");
            }

            return explicitPath;
        }

        return CandidatePaths(fileName).FirstOrDefault(File.Exists);
    }
}
