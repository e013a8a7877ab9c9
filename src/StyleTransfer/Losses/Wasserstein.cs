using TorchSharp;
using static TorchSharp.torch;

namespace StyleTransfer.Losses;

/// <summary>Which statistic of the feature maps the style loss matches.</summary>
public enum StyleLossKind
{
    /// <summary>Gram matrices (the paper).</summary>
    Gram,

    /// <summary>
    /// The squared 2-Wasserstein distance between Gaussian fits (mean and covariance) of the
    /// features, as in crowsonkb/style-transfer-pytorch.
    /// </summary>
    W2,
}

/// <summary>The Gaussian fit of a feature map: the mean μ [N] and covariance Σ [N,N] over positions, in float64.</summary>
internal static class GaussianFit
{
    /// <summary>
    /// μ and Σ of <paramref name="features"/> [1,N,H,W] over its positions; with a
    /// <paramref name="mask"/> [1,1,H,W] each position weighs m² / Σ m² (the weighting a guided
    /// Gram implies). Differentiable.
    /// </summary>
    public static (Tensor Mean, Tensor Covariance) Of(Tensor features, Tensor? mask = null)
    {
        using var scope = torch.NewDisposeScope();
        long n = features.shape[^3];
        Tensor f = features.reshape(n, -1).to(ScalarType.Float64);
        Tensor mean, cov;
        if (mask is null)
        {
            mean = f.mean([1L]);
            Tensor centred = f - mean.unsqueeze(1);
            cov = centred.mm(centred.t()) / f.shape[1];
        }
        else
        {
            Tensor w = mask.reshape(1, -1).to(ScalarType.Float64).square();
            w = w / w.sum();
            mean = (f * w).sum([1L]);
            Tensor centred = (f - mean.unsqueeze(1)) * w.sqrt();
            cov = centred.mm(centred.t());
        }

        return (mean.MoveToOuterDisposeScope(), cov.MoveToOuterDisposeScope());
    }

    /// <summary>
    /// The Gaussian fit of a weighted mixture of distributions given by their fits (means [N]):
    /// μ = Σ w_i μ_i and Σ = Σ w_i (Σ_i + μ_i μ_iᵀ) − μ μᵀ, the second moment kept. The weights are
    /// used as given (normalise them first).
    /// </summary>
    public static (Tensor Mean, Tensor Covariance) Mixture(IEnumerable<(Tensor Mean, Tensor Covariance, double Weight)> parts)
    {
        using var scope = torch.NewDisposeScope();
        Tensor? m = null, second = null;
        foreach ((Tensor mean, Tensor cov, double weight) in parts)
        {
            Tensor sm = (cov + mean.unsqueeze(1).mm(mean.unsqueeze(0))) * weight;
            m = m is null ? mean * weight : m + (mean * weight);
            second = second is null ? sm : second + sm;
        }

        if (m is null)
        {
            throw new ArgumentException("a mixture needs at least one part", nameof(parts));
        }

        return (m.MoveToOuterDisposeScope(), (second! - m.unsqueeze(1).mm(m.unsqueeze(0))).MoveToOuterDisposeScope());
    }
}

/// <summary>
/// A style target for <see cref="Wasserstein"/>: a Gaussian N(μ_t, Σ_t) with Σ_t regularised by
/// ε·I and its symmetric square root precomputed once (no gradient flows into the target).
/// </summary>
internal sealed class GaussianTarget : IDisposable
{
    private GaussianTarget(Tensor mean, Tensor covariance, Tensor sqrt, double epsilon, double energy, double trace)
    {
        Mean = mean;
        Covariance = covariance;
        CovarianceSqrt = sqrt;
        Epsilon = epsilon;
        Energy = energy;
        Trace = trace;
    }

    /// <summary>μ_t, [N], float64.</summary>
    public Tensor Mean { get; }

    /// <summary>Σ_t + ε·I, [N,N], float64.</summary>
    public Tensor Covariance { get; }

    /// <summary>(Σ_t + ε·I)^½.</summary>
    public Tensor CovarianceSqrt { get; }

    /// <summary>ε, added to both covariances' diagonals: keeps (Σ_t^½ Σ Σ_t^½) positive definite, so the square roots' gradients stay finite.</summary>
    public double Epsilon { get; }

    /// <summary>‖μ_t‖² + tr Σ_t: the squared W2 distance from a point mass at 0 (the relative normalisation's denominator).</summary>
    public double Energy { get; }

    /// <summary>tr (Σ_t + ε·I).</summary>
    public double Trace { get; }

    public long Channels => Mean.shape[0];

    /// <summary>
    /// A target from <paramref name="mean"/> and <paramref name="covariance"/> (any float type; kept
    /// as float64 copies). <paramref name="epsilon"/> null: 1e-5 × tr Σ_t / N.
    /// </summary>
    public static GaussianTarget Create(Tensor mean, Tensor covariance, double? epsilon = null)
    {
        using var noGrad = torch.no_grad();
        using var scope = torch.NewDisposeScope();
        long n = mean.shape[0];
        Tensor mu = mean.detach().to(ScalarType.Float64).clone();
        Tensor cov = covariance.detach().to(ScalarType.Float64);
        cov = (cov + cov.t()) / 2;
        double trace = cov.trace().ToDouble();
        double eps = epsilon ?? Math.Max(1e-5 * trace / n, 1e-30);
        double energy = mu.square().sum().ToDouble() + trace;
        Tensor eye = torch.eye(n, dtype: ScalarType.Float64, device: cov.device);
        Tensor regular = cov + (eye * eps);
        (Tensor values, Tensor vectors) = torch.linalg.eigh(regular);
        Tensor sqrt = (vectors * values.clamp_min(0).sqrt().unsqueeze(0)).mm(vectors.t());
        sqrt = (sqrt + sqrt.t()) / 2;
        return new GaussianTarget(
            mu.DetachFromDisposeScope(),
            regular.DetachFromDisposeScope(),
            sqrt.DetachFromDisposeScope(),
            eps,
            energy,
            trace + (n * eps));
    }

    public void Dispose()
    {
        Mean.Dispose();
        Covariance.Dispose();
        CovarianceSqrt.Dispose();
    }
}

/// <summary>
/// The squared 2-Wasserstein distance between the Gaussian fit N(μ, Σ) of the generated image's
/// features and a <see cref="GaussianTarget"/> N(μ_t, Σ_t):
/// ‖μ − μ_t‖² + tr(Σ + Σ_t − 2 (Σ_t^½ Σ Σ_t^½)^½).
/// </summary>
/// <remarks>
/// Only the trace of the matrix square root is needed, and that is Σ √λ_i over the eigenvalues of
/// the symmetric positive definite Σ_t^½ Σ Σ_t^½. The eigenvalues' gradient, v_i v_iᵀ, has no
/// 1/(λ_i − λ_j) terms (those come from eigenvectors), so it is stable even for repeated
/// eigenvalues; ε·I on both covariances keeps every λ ≥ ε² and the 1/(2√λ) factor finite.
/// Computed in float64.
/// </remarks>
internal static class Wasserstein
{
    /// <summary>The unnormalised squared distance.</summary>
    /// <param name="features">[1,N,H,W].</param>
    /// <param name="target">N(μ_t, Σ_t) at the same layer.</param>
    /// <param name="mask">Optional [1,1,H,W] guidance: positions weigh m² / Σ m².</param>
    public static Tensor Distance(Tensor features, GaussianTarget target, Tensor? mask = null)
    {
        long n = features.shape[^3];
        if (n != target.Channels)
        {
            throw new ArgumentException($"W2 target of {target.Channels} channels does not match {n} filters");
        }

        using var scope = torch.NewDisposeScope();
        (Tensor mean, Tensor cov) = GaussianFit.Of(features, mask);
        Tensor eye = torch.eye(n, dtype: ScalarType.Float64, device: cov.device);
        cov = cov + (eye * target.Epsilon);
        Tensor product = target.CovarianceSqrt.mm(cov).mm(target.CovarianceSqrt);
        product = (product + product.t()) / 2;
        Tensor roots = torch.linalg.eigvalsh(product).clamp_min(0).sqrt();
        Tensor meanTerm = (mean - target.Mean).square().sum();
        Tensor covTerm = cov.trace() + target.Trace - (roots.sum() * 2);
        return (meanTerm + covTerm).reshape(1).MoveToOuterDisposeScope();
    }

    /// <summary>The per-layer term: the distance ÷ N (<see cref="StyleNormalization.Paper"/>, the mean over channels) or ÷ (‖μ_t‖² + tr Σ_t) (<see cref="StyleNormalization.Relative"/>).</summary>
    public static Tensor Layer(Tensor features, GaussianTarget target, StyleNormalization normalization, Tensor? mask = null)
    {
        using Tensor d = Distance(features, target, mask);
        double denominator = normalization == StyleNormalization.Relative ? Math.Max(target.Energy, 1e-30) : target.Channels;
        return d / denominator;
    }
}
