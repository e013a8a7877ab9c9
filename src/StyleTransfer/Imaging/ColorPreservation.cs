using StyleTransfer.Losses;
using TorchSharp;
using static TorchSharp.torch;

namespace StyleTransfer.Imaging;

/// <summary>
/// The two colour-preservation methods of Gatys, Bethge, Hertzmann &amp; Shechtman, "Preserving Color
/// in Neural Artistic Style Transfer" (2016), as pre- and post-processing around an unchanged
/// transfer. Pure tensor maths on [1,3,H,W] RGB images; the 3×3 colour maths is done in float64.
/// </summary>
internal static class ColorPreservation
{
    // NTSC YIQ (FCC rounding): Y is the Rec. 601 luma, I and Q the chroma.
    private static readonly double[] RgbToYiqRows =
    [
        0.299, 0.587, 0.114,
        0.595716, -0.274453, -0.321263,
        0.211456, -0.522591, 0.311135,
    ];

    /// <summary>Smallest eigenvalue the style covariance is given before it is inverted (a flat image has none).</summary>
    private const double MinEigenvalue = 1e-8;

    /// <summary>
    /// The least colour variance <see cref="TowardsPalette"/> divides by: (8/255)², about 1e-3. A
    /// photograph varying less than that in some colour direction has it stretched by at most
    /// √(λ_max / 1e-3), λ_max the painting's largest colour variance (0.03–0.1: 5–10×). A test holds
    /// the worst case to it: a grey photograph with ±1/255 of chroma noise, a colourful painting
    /// (λ_max 0.11), 9.4/255 of colour noise in the recoloured start, which the chroma TV smooths; an
    /// exactly grey photograph has none to stretch.
    /// </summary>
    internal const double PaletteFloor = 1e-3;

    /// <summary>Pixels per run in <see cref="Statistics"/>: 24 MB of float64.</summary>
    internal const long StatisticsChunk = 1 << 20;

    /// <summary>RGB → YIQ, channel-wise linear map; same dtype and device as the input.</summary>
    public static Tensor ToYiq(Tensor rgb)
    {
        using Tensor m = RgbToYiq();
        return Mix(m, rgb);
    }

    /// <summary>YIQ → RGB, the exact inverse of <see cref="ToYiq"/> (the matrix inverted in float64).</summary>
    public static Tensor FromYiq(Tensor yiq)
    {
        using Tensor m = RgbToYiq();
        using Tensor inv = torch.linalg.inv(m);
        return Mix(inv, yiq);
    }

    /// <summary>The luminance Y as a [1,1,H,W] tensor.</summary>
    public static Tensor Luminance(Tensor rgb)
    {
        using var scope = torch.NewDisposeScope();
        return ToYiq(rgb).narrow(1, 0, 1).contiguous().MoveToOuterDisposeScope();
    }

    /// <summary>
    /// The luminance-only inputs of the transfer: the content's Y, and the style's Y shifted and
    /// scaled so its mean and standard deviation equal the content's (the paper's luminance
    /// histogram matching: Y_s' = σ_c/σ_s (Y_s − μ_s) + μ_c), each replicated to three channels.
    /// </summary>
    public static (Tensor Content, Tensor Style) LuminanceInputs(Tensor content, Tensor style)
    {
        using var scope = torch.NewDisposeScope();
        Tensor yc = Luminance(content).to(ScalarType.Float64);
        Tensor ys = Luminance(style).to(ScalarType.Float64);
        Tensor sc = yc.std(), ss = ys.std().clamp_min(1e-6);
        Tensor matched = ((ys - ys.mean()) * (sc / ss)) + yc.mean();
        Tensor c3 = yc.expand(-1, 3, -1, -1).to(content.dtype).contiguous();
        Tensor s3 = matched.expand(-1, 3, -1, -1).to(style.dtype).contiguous();
        return (c3.MoveToOuterDisposeScope(), s3.MoveToOuterDisposeScope());
    }

    /// <summary>
    /// The output's luminance (the Y of the optimised image, which is grey up to small drift) with
    /// the content's I and Q, back in RGB, clamped to [0,1]. <paramref name="content"/> is resized
    /// bilinearly when its size differs.
    /// </summary>
    public static Tensor Recombine(Tensor output, Tensor content)
    {
        using var scope = torch.NewDisposeScope();
        Tensor c = content.to(output.device);
        if (c.shape[2] != output.shape[2] || c.shape[3] != output.shape[3])
        {
            c = nn.functional.interpolate(c, size: [output.shape[2], output.shape[3]], mode: InterpolationMode.Bilinear, align_corners: false);
        }

        Tensor y = Luminance(output);
        Tensor iq = ToYiq(c).narrow(1, 1, 2);
        return FromYiq(torch.cat([y, iq.to(y.dtype)], 1)).clamp(0, 1).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// The style image recoloured so that its pixel colours have the content's mean and covariance:
    /// x' = A (x − μ_s) + μ_c with A = Σ_c^½ Σ_s^−½ (symmetric square roots by eigendecomposition,
    /// the image-analogies variant the paper describes; A Σ_s Aᵀ = Σ_c exactly). Not clamped, so the
    /// statistics hold exactly; the network takes values outside [0,1].
    /// </summary>
    public static Tensor MatchColorHistogram(Tensor style, Tensor content)
    {
        using var scope = torch.NewDisposeScope();
        (Tensor muS, Tensor covS) = Statistics(style);
        (Tensor muC, Tensor covC) = Statistics(content);
        Tensor a = torch.matmul(SymmetricPower(covC, 0.5), SymmetricPower(covS, -0.5));
        Tensor xs = style.to(ScalarType.Float64).reshape(3, -1);
        Tensor matched = torch.matmul(a, xs - muS) + muC;
        return matched.reshape(style.shape).to(style.dtype).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// The photograph recoloured towards the painting's palette, the reverse of
    /// <see cref="MatchColorHistogram"/>: x' = A (x − μ_c) + μ_s with A = Σ_s^½ Σ_c^−½, where μ_s, Σ_s
    /// are the colour mean and covariance of the style images together (their mixture, by
    /// <paramref name="styles"/>' weights), then (1 − <paramref name="amount"/>)·x + amount·x', clamped
    /// to [0, 1]. Colour directions in which the photograph hardly varies (a grey photograph's chroma,
    /// variance below <see cref="PaletteFloor"/>) are not amplified beyond what that floor allows, so
    /// JPEG noise in them stays noise-sized.
    /// </summary>
    public static Tensor TowardsPalette(Tensor content, IReadOnlyList<(Tensor Style, double Weight)> styles, double amount)
    {
        using var scope = torch.NewDisposeScope();
        (Tensor muC, Tensor covC) = Statistics(content);
        (Tensor muS, Tensor covS) = GaussianFit.Mixture(styles.Select(s =>
        {
            (Tensor m, Tensor c) = Statistics(s.Style);
            return (m.reshape(3), c, s.Weight);
        }));
        Tensor mean = muS.reshape(3, 1);
        Tensor a = torch.matmul(SymmetricPower(covS, 0.5), SymmetricPower(covC, -0.5, PaletteFloor));

        // (1 − k) x + k (A (x − μ_c) + μ_s) is one affine map, M x + b: applied in the image's own
        // precision, one image-sized tensor (a 16384 px print is 3.2 GB of RGB in float32).
        Tensor m3 = (torch.eye(3, dtype: ScalarType.Float64) * (1 - amount)) + (a * amount);
        Tensor b = (mean - a.mm(muC)) * amount;
        Tensor mixed = torch.einsum("ck,bkhw->bchw", m3.to(content.dtype).to(content.device), content);
        mixed.add_(b.reshape(1, 3, 1, 1).to(content.dtype).to(content.device)).clamp_(0, 1);
        return mixed.MoveToOuterDisposeScope();
    }

    /// <summary>
    /// Per-channel mean [3,1] and covariance [3,3] (1/N) of an image's pixels, float64: two passes
    /// (the mean, then the centred products) over runs of <see cref="StatisticsChunk"/> pixels, so
    /// that a print-sized image needs no float64 copy of itself.
    /// </summary>
    public static (Tensor Mean, Tensor Covariance) Statistics(Tensor rgb)
    {
        using var scope = torch.NewDisposeScope();
        Tensor x = rgb.reshape(3, -1);
        long n = x.shape[1];
        Tensor sum = torch.zeros(3, 1, dtype: ScalarType.Float64, device: rgb.device);
        for (long start = 0; start < n; start += StatisticsChunk)
        {
            using Tensor part = x.narrow(1, start, Math.Min(StatisticsChunk, n - start)).to(ScalarType.Float64);
            using Tensor partSum = part.sum([1], keepdim: true);
            sum.add_(partSum);
        }

        Tensor mu = sum / n;
        Tensor products = torch.zeros(3, 3, dtype: ScalarType.Float64, device: rgb.device);
        for (long start = 0; start < n; start += StatisticsChunk)
        {
            using Tensor part = x.narrow(1, start, Math.Min(StatisticsChunk, n - start)).to(ScalarType.Float64).sub_(mu);
            using Tensor partProducts = torch.matmul(part, part.t());
            products.add_(partProducts);
        }

        return (mu.MoveToOuterDisposeScope(), (products / n).MoveToOuterDisposeScope());
    }

    private static Tensor SymmetricPower(Tensor cov, double power, double floor = MinEigenvalue)
    {
        using var scope = torch.NewDisposeScope();
        (Tensor values, Tensor vectors) = torch.linalg.eigh(cov);
        Tensor scaled = vectors * values.clamp_min(floor).pow(power).unsqueeze(0);
        return torch.matmul(scaled, vectors.t()).MoveToOuterDisposeScope();
    }

    private static Tensor RgbToYiq() => torch.tensor(RgbToYiqRows, new long[] { 3, 3 }, ScalarType.Float64);

    /// <summary>out_c = Σ_k m[c,k] in_k per pixel, computed in float64, returned in the input's dtype.</summary>
    private static Tensor Mix(Tensor m, Tensor image)
    {
        using var scope = torch.NewDisposeScope();
        Tensor x = image.to(ScalarType.Float64);
        Tensor r = torch.einsum("ck,bkhw->bchw", m.to(x.device), x);
        return r.to(image.dtype).MoveToOuterDisposeScope();
    }
}
