using FineTune.IO.Safetensors;
using FineTune.Torch;

namespace FineTune.Trainer.Models;

/// <summary>
/// The weights of a model opened with <see cref="LlamaModel.Open"/>: the checkpoint's safetensors files stay open
/// (headers checked against the config at open) and each stage's tensors are read when the stage is used and freed
/// when the handle is disposed, so evaluation, export and a training engine's setup hold one stage at a time.
/// Owned by the model; a training engine takes over the residency while it holds the model.
/// </summary>
internal sealed class CheckpointWeights : IWeightResidency, IDisposable
{
    private readonly LlamaModel _model;
    private readonly List<SafetensorsFile> _files = [];
    private readonly Dictionary<string, SafetensorsFile> _byTensor;

    public CheckpointWeights(LlamaModel model, string folder)
    {
        _model = model;
        try
        {
            _byTensor = LlamaCheckpointReader.OpenChecked(folder, model.Config, _files);
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    public IDisposable Use(int stageIndex, int direction) => Load(LlamaModel.StageWeights(_model.Stages[stageIndex]));

    public IDisposable Use(NamedParameter parameter) => Load([parameter]);

    public void Dispose()
    {
        foreach (SafetensorsFile file in _files)
            file.Dispose();
        _files.Clear();
    }

    /// <summary>Reads the parameters not yet resident; the handle evicts exactly those.</summary>
    private Handle Load(IReadOnlyList<NamedParameter> parameters)
    {
        var loaded = new List<NamedParameter>();
        try
        {
            foreach (NamedParameter parameter in parameters.Where(p => !p.IsResident))
            {
                Tensor tensor = LlamaCheckpointReader.ReadTensor(_byTensor[parameter.Name], parameter.Spec, _model.DType, _model.Device);
                parameter.Tensor = TensorScope.Current?.Detach(tensor) ?? tensor;
                loaded.Add(parameter);
            }
        }
        catch
        {
            foreach (NamedParameter parameter in loaded)
                parameter.Evict();
            throw;
        }
        return new Handle(loaded);
    }

    private sealed class Handle(List<NamedParameter> loaded) : IDisposable
    {
        public void Dispose()
        {
            foreach (NamedParameter parameter in loaded)
                parameter.Evict();
            loaded.Clear();
        }
    }
}
