using Orleans.Runtime;
using StyleTransfer.Jobs;

namespace StyleTransfer.Batch;

[GenerateSerializer]
[Alias("StyleTransfer.Batch.BlobState")]
public sealed class BlobState
{
    [Id(0)]
    public byte[]? Data { get; set; }
}

internal sealed class BlobGrain([PersistentState("blob", BatchHosting.StorageName)] IPersistentState<BlobState> state) : Grain, IBlobGrain
{
    /// <summary>The largest blob accepted (an input image or an output; a 4096 px PNG is well below).</summary>
    public const int MaxBytes = 256 << 20;

    public async Task Put(byte[] data)
    {
        if (data.Length > MaxBytes)
        {
            throw new ArgumentException($"blob of {data.Length} bytes is larger than {MaxBytes}");
        }

        string key = this.GetPrimaryKeyString();
        if (JobJson.Sha256(data) != key)
        {
            throw new ArgumentException($"blob bytes do not hash to {key}");
        }

        if (state.State.Data is null)
        {
            state.State.Data = data;
            await state.WriteStateAsync();
        }
    }

    public Task<bool> Exists() => Task.FromResult(state.State.Data is not null);

    public Task<byte[]?> Get() => Task.FromResult(state.State.Data);

    public async Task Delete()
    {
        if (state.RecordExists)
        {
            await state.ClearStateAsync();
        }

        state.State.Data = null;
        DeactivateOnIdle();
    }
}
