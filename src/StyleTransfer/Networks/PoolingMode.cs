namespace StyleTransfer.Networks;

/// <summary>Pooling between blocks: the paper replaces VGG's max pooling with average pooling.</summary>
public enum PoolingMode
{
    Avg,
    Max,
}
