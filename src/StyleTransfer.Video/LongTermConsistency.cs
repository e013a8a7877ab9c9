using StyleTransfer.Losses;
using TorchSharp;
using static TorchSharp.torch;

namespace StyleTransfer.Video;

/// <summary>A previous frame: <paramref name="Offset"/> frames before the current one, its content and its stylised result, [1,3,H,W] on the CPU.</summary>
internal sealed record PreviousFrame(int Offset, Tensor Content, Tensor Output);

/// <summary>
/// Ruder, Dosovitskiy &amp; Brox's long-term consistency: frame t is held to several previous
/// stylised frames t−j, each warped into frame t along the content's flow t → t−j, each over the
/// pixels where that flow is reliable and no nearer frame's is:
/// c_long(t−j) = max(c(t−j) − Σ_{k &lt; j} c(t−k), 0), k over the offsets in use. The loss is
/// Σ_j (1/D) Σ_p c_long(t−j)_p (x_p − w(t−j)_p)²; the start image takes each pixel from the nearest
/// previous frame that sees it (the content frame where none does). With offset 1 alone this is the
/// short-term method, to the bit.
/// </summary>
internal static class LongTermConsistency
{
    /// <summary>Ruder et al.'s c_long: each weight minus the sum of the nearer ones, clamped at 0.</summary>
    /// <param name="reliabilities">The c(t−j), [1,1,H,W] in [0,1], nearest frame first.</param>
    public static List<Tensor> Weights(IReadOnlyList<Tensor> reliabilities)
    {
        var weights = new List<Tensor>(reliabilities.Count);
        Tensor? nearer = null;
        foreach (Tensor c in reliabilities)
        {
            using (NewDisposeScope())
            {
                Tensor weight = nearer is null ? c.clone() : (c - nearer).clamp_min(0);
                weights.Add(weight.MoveToOuterDisposeScope());
                Tensor sum = nearer is null ? c.clone() : nearer + c;
                nearer?.Dispose();
                nearer = sum.MoveToOuterDisposeScope();
            }
        }

        nearer?.Dispose();
        return weights;
    }

    /// <summary>
    /// The start image: Σ_j c_long(t−j) · w(t−j) + (1 − Σ_j c_long(t−j)) · content, the covered share
    /// clamped to [0,1].
    /// </summary>
    /// <param name="content">The current content frame.</param>
    /// <param name="warped">The previous results warped into frame t, nearest first.</param>
    /// <param name="weights">Their c_long (<see cref="Weights"/>).</param>
    public static Tensor Start(Tensor content, IReadOnlyList<Tensor> warped, IReadOnlyList<Tensor> weights)
    {
        using var scope = NewDisposeScope();
        Tensor start = weights[0] * warped[0];
        Tensor covered = weights[0];
        for (int i = 1; i < warped.Count; i++)
        {
            start = start + (weights[i] * warped[i]);
            covered = covered + weights[i];
        }

        return (start + ((1 - covered.clamp(0, 1)) * content)).MoveToOuterDisposeScope();
    }

    /// <summary>Σ_j TemporalLoss(image, target_j, weight_j): the sum of the weighted mean squares.</summary>
    public static Tensor Loss(Tensor image, IReadOnlyList<Tensor> targets, IReadOnlyList<Tensor> weights)
    {
        Tensor loss = TemporalLoss.Compute(image, targets[0], weights[0]);
        for (int i = 1; i < targets.Count; i++)
        {
            using Tensor term = TemporalLoss.Compute(image, targets[i], weights[i]);
            Tensor sum = loss + term;
            loss.Dispose();
            loss = sum;
        }

        return loss;
    }
}
