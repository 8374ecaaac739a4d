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
    private bool _closed;

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

    /// <summary>Closes the files; the tensors read so far then belong to the model (handles still open no longer evict).</summary>
    public void Dispose()
    {
        _closed = true;
        foreach (SafetensorsFile file in _files)
            file.Dispose();
        _files.Clear();
    }

    /// <summary>Reads the parameters not yet resident; the handle evicts exactly those, if they still hold what it read.</summary>
    private Handle Load(IReadOnlyList<NamedParameter> parameters)
    {
        var loaded = new List<(NamedParameter, Tensor)>();
        try
        {
            foreach (NamedParameter parameter in parameters.Where(p => !p.IsResident))
            {
                Tensor tensor = LlamaCheckpointReader.ReadTensor(_byTensor[parameter.Name], parameter.Spec, _model.DType, _model.Device);
                tensor = TensorScope.Current?.Detach(tensor) ?? tensor;
                parameter.Tensor = tensor;
                loaded.Add((parameter, tensor));
            }
        }
        catch
        {
            Handle.Evict(loaded);
            throw;
        }
        return new Handle(this, loaded);
    }

    private sealed class Handle(CheckpointWeights owner, List<(NamedParameter Parameter, Tensor Tensor)> loaded) : IDisposable
    {
        public void Dispose()
        {
            if (!owner._closed) // once closed, an engine has taken the model over (ReleaseCheckpoint): the tensors are the model's
                Evict(loaded);
        }

        /// <summary>A parameter given another tensor meanwhile (an engine took the model over) keeps it.</summary>
        public static void Evict(List<(NamedParameter Parameter, Tensor Tensor)> loaded)
        {
            foreach (var (parameter, tensor) in loaded)
                if (parameter.IsResident && ReferenceEquals(parameter.Tensor, tensor))
                    parameter.Evict();
            loaded.Clear();
        }
    }
}
