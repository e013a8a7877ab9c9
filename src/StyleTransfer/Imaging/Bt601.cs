using static TorchSharp.torch;

namespace StyleTransfer.Imaging;

/// <summary>
/// BT.601 luma Y = Kr·R + Kg·G + Kb·B and the colour differences B−Y, R−Y (unscaled): the one
/// luminance/colour split that the anti-aliasing filter and the chroma TV term both use.
/// </summary>
internal static class Bt601
{
    public const double Kr = 0.299;
    public const double Kg = 0.587;
    public const double Kb = 0.114;

    /// <summary>RGB → (Y, B−Y, R−Y), as a 3×3 matrix (rows are outputs).</summary>
    public static float[,] ToYcc =>
        new float[,]
        {
            { (float)Kr, (float)Kg, (float)Kb },
            { (float)-Kr, (float)-Kg, (float)(1 - Kb) },
            { (float)(1 - Kr), (float)-Kg, (float)-Kb },
        };

    /// <summary>(Y, B−Y, R−Y) → RGB, the inverse of <see cref="ToYcc"/>.</summary>
    public static float[,] FromYcc =>
        new float[,]
        {
            { 1f, 0f, 1f },
            { 1f, (float)-Kb / (float)Kg, (float)-Kr / (float)Kg },
            { 1f, 1f, 0f },
        };

    /// <summary>The luma Y of a [N,3,H,W] RGB image, as [N,1,H,W].</summary>
    public static Tensor Luma(Tensor rgb)
    {
        using Tensor r = rgb.narrow(1, 0, 1), g = rgb.narrow(1, 1, 1), b = rgb.narrow(1, 2, 1);
        return (r * Kr) + (g * Kg) + (b * Kb);
    }

    /// <summary>B−Y and R−Y of a [N,3,H,W] RGB image, as [N,2,H,W]: zero for any grey image.</summary>
    public static Tensor ColorDifferences(Tensor rgb)
    {
        using Tensor r = rgb.narrow(1, 0, 1), b = rgb.narrow(1, 2, 1);
        using Tensor y = Luma(rgb);
        using Tensor cb = b - y, cr = r - y;
        return TorchSharp.torch.cat([cb, cr], 1);
    }
}
