namespace StyleTransfer.Networks;

/// <summary>Pooling between blocks: the paper replaces VGG's max pooling with average pooling.</summary>
public enum PoolingMode
{
    /// <summary>Average pooling (the paper's choice for image synthesis).</summary>
    Avg,

    /// <summary>Max pooling, as VGG was trained.</summary>
    Max,
}
