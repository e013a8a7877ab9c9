namespace StyleTransfer.Networks;

/// <summary>
/// Tells a network whose preprocessing depends on position (ResNet-18's per-pixel mean image) that
/// the image it is given is a crop of a larger one: <see cref="FullHeight"/>×<see cref="FullWidth"/>,
/// the crop's top left at (<see cref="Y"/>, <see cref="X"/>). Set around <see cref="IFeatureNetwork.Extract"/>
/// by tiled evaluation, so each tile is preprocessed exactly as its part of the whole image.
/// </summary>
internal sealed record TileWindow(long FullHeight, long FullWidth, long Y, long X)
{
    private static readonly AsyncLocal<TileWindow?> CurrentWindow = new();

    /// <summary>The window in force on this thread of execution, if any.</summary>
    public static TileWindow? Current => CurrentWindow.Value;

    /// <summary>Puts <paramref name="window"/> (null: none) in force until the result is disposed.</summary>
    public static IDisposable Enter(TileWindow? window)
    {
        TileWindow? before = CurrentWindow.Value;
        CurrentWindow.Value = window;
        return new Restore(before);
    }

    private sealed class Restore(TileWindow? before) : IDisposable
    {
        public void Dispose() => CurrentWindow.Value = before;
    }
}
