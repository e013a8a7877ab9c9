using System.Security.Cryptography;
using System.Text.Json;
using TorchSharp;
using static TorchSharp.torch;

namespace StyleTransfer.Networks;

/// <summary>
/// The paper's normalisation: rescale each filter so its mean rectified activation over a set of
/// images and positions is 1, and multiply the next layer's matching input weights by the same
/// factor. ReLU and (average or max) pooling commute with positive per-channel scales, so the
/// network computes the same function, except that every tap is divided channel-wise by the
/// mean activation of its filter.
/// </summary>
internal static class WeightNormalization
{
    /// <summary>Bump when the image set or the algorithm changes, so old caches are not reused.</summary>
    private const int Version = 1;

    /// <summary>
    /// Normalises <paramref name="network"/> in place. The per-layer factors are cached under
    /// <paramref name="cacheDirectory"/>, keyed by the weights file's SHA-256 and the pooling mode.
    /// Returns the factors (mean activation per filter, per convolution).
    /// </summary>
    public static IReadOnlyList<float[]> Apply(Vgg19 network, string weightsPath, string? cacheDirectory)
    {
        string? cacheFile = null;
        if (cacheDirectory != null)
        {
            string hash = Convert.ToHexStringLower(SHA256.HashData(File.ReadAllBytes(weightsPath)));
            cacheFile = Path.Combine(cacheDirectory, $"{network.Name}-{hash[..16]}-{network.Pooling.ToString().ToLowerInvariant()}-v{Version}.json");
            if (TryReadCache(cacheFile, network) is { } cached)
            {
                ApplyFactors(network, cached);
                return cached;
            }
        }

        using Tensor images = CalibrationImages(network.Device);
        List<float[]> factors = Compute(network, images);
        if (cacheFile != null)
        {
            WriteCache(cacheFile, factors);
        }

        return factors;
    }

    /// <summary>Computes the factors on <paramref name="images"/> ([N,3,H,W], RGB [0,1]) and normalises in place as it goes.</summary>
    internal static List<float[]> Compute(ISequentialConvNet network, Tensor images)
    {
        var factors = new List<float[]>();
        using var noGrad = torch.no_grad();
        for (int i = 0; i < network.ConvCount; i++)
        {
            using var scope = torch.NewDisposeScope();
            Tensor act = network.ActivationAfterConv(images, i);
            Tensor m = act.mean([0L, 2L, 3L]);

            // A filter that never fires stays as it is: there is no scale to take out.
            m = torch.where(m > 1e-12, m, torch.ones_like(m));
            float[] f = m.to(torch.CPU).data<float>().ToArray();
            factors.Add(f);
            ScaleConv(network, i, m);
        }

        return factors;
    }

    /// <summary>
    /// Deterministic calibration images: 1/f ("pink") noise, whose power spectrum falls off like
    /// that of natural photographs, with correlated colour channels. No ImageNet is available here.
    /// </summary>
    internal static Tensor CalibrationImages(Device device, int count = 8, int size = 128)
    {
        using var scope = torch.NewDisposeScope();
        using var gen = new Generator(1234);
        Tensor fy = torch.fft.fftfreq(size).reshape(size, 1);
        Tensor fx = torch.fft.rfftfreq(size).reshape(1, (size / 2) + 1);
        Tensor radius = (fy.pow(2) + fx.pow(2)).sqrt().clamp_min(1.0 / size);
        Tensor white = torch.randn(new long[] { count, 3, size, size }, generator: gen);
        Tensor pink = torch.fft.irfft2(torch.fft.rfft2(white) / radius, s: new long[] { size, size });

        // Mix channels so colours correlate as in photographs, then map to [0,1].
        Tensor mix = torch.tensor(new float[] { 0.6f, 0.3f, 0.1f, 0.3f, 0.5f, 0.2f, 0.1f, 0.3f, 0.6f }, new long[] { 3, 3 });
        Tensor mixed = torch.einsum("ij,njhw->nihw", mix, pink);
        Tensor flat = mixed.flatten(1);
        Tensor lo = flat.quantile(torch.tensor(0.01f), dim: 1, keepdim: true).reshape(count, 1, 1, 1);
        Tensor hi = flat.quantile(torch.tensor(0.99f), dim: 1, keepdim: true).reshape(count, 1, 1, 1);
        Tensor result = ((mixed - lo) / (hi - lo)).clamp(0, 1).to(device);
        return result.MoveToOuterDisposeScope();
    }

    private static void ApplyFactors(ISequentialConvNet network, IReadOnlyList<float[]> factors)
    {
        using var noGrad = torch.no_grad();
        for (int i = 0; i < factors.Count; i++)
        {
            using var scope = torch.NewDisposeScope();
            ScaleConv(network, i, torch.tensor(factors[i]).to(network.Conv(i).Weight.device));
        }
    }

    /// <summary>Divides filter c of conv i by m[c] and multiplies conv i+1's input channel c by m[c].</summary>
    private static void ScaleConv(ISequentialConvNet network, int i, Tensor m)
    {
        (Tensor w, Tensor b) = network.Conv(i);
        w.div_(m.reshape(-1, 1, 1, 1));
        b.div_(m);
        if (i + 1 < network.ConvCount)
        {
            network.Conv(i + 1).Weight.mul_(m.reshape(1, -1, 1, 1));
        }
    }

    private static List<float[]>? TryReadCache(string file, Vgg19 network)
    {
        try
        {
            if (!File.Exists(file))
            {
                return null;
            }

            List<float[]>? f = JsonSerializer.Deserialize<List<float[]>>(File.ReadAllText(file));
            bool fits = f != null && f.Count == network.Widths.Count && f.Select(a => (long)a.Length).SequenceEqual(network.Widths);
            return fits ? f : null;
        }
        catch (Exception e) when (e is IOException or JsonException or UnauthorizedAccessException)
        {
            return null;
        }
    }

    private static void WriteCache(string file, List<float[]> factors)
    {
        try
        {
            Directory.CreateDirectory(Path.GetDirectoryName(file)!);
            string temp = file + $".{Environment.ProcessId}.tmp";
            File.WriteAllText(temp, JsonSerializer.Serialize(factors));
            File.Move(temp, file, overwrite: true);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // A cache that cannot be written only costs time on the next run.
        }
    }
}
