using FineTune.IO.Safetensors;
using FineTune.Torch;

namespace FineTune.Trainer.Models;

/// <summary>
/// The weights of a model opened with <see cref="LlamaModel.Open"/>: the checkpoint's safetensors files stay open
/// (headers checked against the config at open) and a stage's tensors are read when the stage is acquired and freed
/// when the lease is disposed, so evaluation, export and a training engine's setup hold one stage at a time. The
/// tensors read belong to the lease, never to the model's parameters; a parameter the model already holds resident
/// is served from memory. Owned by the model; closed with it, or by
/// <see cref="LlamaModel"/> once a training engine has taken every weight.
/// </summary>
internal sealed class CheckpointWeights : IWeightSource, IDisposable
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

    public bool IsResident => false;

    public StageWeights Acquire(int stageIndex, int direction) => Read(LlamaModel.WeightsOf(_model.Stages[stageIndex]));

    /// <summary>One parameter's tensor, read now (a training engine copying the checkpoint one tensor at a time).</summary>
    public StageWeights Acquire(NamedParameter parameter) => Read([parameter]);

    public void Dispose()
    {
        foreach (SafetensorsFile file in _files)
            file.Dispose();
        _files.Clear();
    }

    private StageWeights Read(IReadOnlyList<NamedParameter> parameters)
    {
        var tensors = new Dictionary<NamedParameter, Tensor>();
        try
        {
            foreach (NamedParameter parameter in parameters.Where(p => !p.IsResident))
            {
                Tensor tensor = LlamaCheckpointReader.ReadTensor(_byTensor[parameter.Name], parameter.Spec, _model.DType, _model.Device);
                tensors[parameter] = TensorScope.Current?.Detach(tensor) ?? tensor;
            }
        }
        catch
        {
            Free(tensors);
            throw;
        }
        // a parameter the model holds in memory (made resident, e.g. a trained extra) is served as it is, not re-read
        return new StageWeights(
            parameter => tensors.TryGetValue(parameter, out Tensor? tensor) ? tensor
                : parameter.IsResident && parameters.Contains(parameter) ? parameter.Tensor
                : throw new ArgumentException($"{parameter.Name} was not read with this stage.", nameof(parameter)),
            new Release(() => Free(tensors)));
    }

    private static void Free(Dictionary<NamedParameter, Tensor> tensors)
    {
        foreach (Tensor tensor in tensors.Values)
            tensor.Dispose();
        tensors.Clear();
    }

    private sealed class Release(Action release) : IDisposable
    {
        public void Dispose() => release();
    }
}
