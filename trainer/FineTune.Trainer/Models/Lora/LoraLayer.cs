using FineTune.Torch;

namespace FineTune.Trainer.Models.Lora;

/// <summary>
/// The adapters of one decoder layer, as the layer sees them: <see cref="DecoderLayer"/> hands every projection's
/// input and base output to <see cref="Apply"/>, which adds the adapter of that projection if there is one. The
/// dropout mask seed comes from the owning <see cref="LoraAdapters"/> (training seed and current position).
/// Owns nothing: the adapters belong to the <see cref="LoraAdapters"/> that attached this.
/// </summary>
public sealed class LoraLayer
{
    private readonly LoraAdapters _owner;
    private readonly Dictionary<string, LoraAdapter> _byLocalPath;

    internal LoraLayer(LoraAdapters owner, int index, IReadOnlyList<LoraAdapter> adapters)
    {
        _owner = owner;
        Index = index;
        Adapters = adapters;
        _byLocalPath = adapters.ToDictionary(a => LoraTargets.LocalPath(a.Module), StringComparer.Ordinal);
    }

    public int Index { get; }

    /// <summary>This layer's adapters in canonical projection order.</summary>
    public IReadOnlyList<LoraAdapter> Adapters { get; }

    /// <summary>
    /// x (B, T, in) and y = W x + b (B, T, out) of the projection at <paramref name="localPath"/> ("self_attn.q_proj")
    /// -> y plus that projection's adapter update, or y itself when it has no adapter.
    /// </summary>
    internal Tensor Apply(string localPath, Tensor x, Tensor y) =>
        _byLocalPath.TryGetValue(localPath, out LoraAdapter? adapter) ? adapter.Apply(x, y, _owner.DropoutFor(adapter)) : y;
}
