using FineTune.Offload.Parameters;
using FineTune.Trainer.Models;

namespace FineTune.Trainer.Training.Adapters;

/// <summary>
/// Where an <see cref="AdapterEngine"/> reads the frozen base from while it fills its read-only parameter store,
/// once, one tensor or chunk at a time in the layout's order, so the whole base is never in host memory:
/// <list type="bullet">
/// <item><see cref="Of"/>: what the model itself serves (its resident tensors, or a folder it was opened from with
/// <see cref="LlamaModel.Open"/>); no fingerprint.</item>
/// <item><see cref="FromFolder"/>: an HF folder's safetensors read directly, each file's CRC-32C assembled from the
/// parts as they are read; the fingerprint names the folder and its files.</item>
/// <item><see cref="Generated"/>: LlamaInitializer's seeded weights drawn chunk by chunk (a random base larger than
/// memory, created straight into the NVMe store; give the engine a model from <see cref="LlamaModel.CreateStreamed"/>);
/// the fingerprint is the CRC-32C of the weights as stored.</item>
/// </list>
/// A source is used by one engine, once.
/// </summary>
public abstract class BaseWeights
{
    private protected BaseWeights() { }

    /// <summary>The weights <paramref name="model"/> serves through <see cref="LlamaModel.UseWeights"/>.</summary>
    public static BaseWeights Of(LlamaModel model) => new ModelBaseWeights(model);

    /// <summary>The safetensors weights of the HF folder <paramref name="folder"/> (that of the engine's model), hashed as they are read.</summary>
    public static BaseWeights FromFolder(string folder) => new FolderBaseWeights(folder);

    /// <summary>LlamaModel.Create's weights for <paramref name="seed"/>, generated one chunk at a time.</summary>
    public static BaseWeights Generated(long seed) => new GeneratedBaseWeights(seed);

    /// <summary>Fills every parameter of <paramref name="store"/> (layout order, then CompleteFill); returns the base's fingerprint, or null.</summary>
    internal abstract BaseFingerprint? FillInto(ParameterStore store, LlamaModel model);
}
