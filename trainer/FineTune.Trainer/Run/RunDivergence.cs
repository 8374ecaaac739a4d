using System.Globalization;
using FineTune.Trainer.Recipes;
using FineTune.Trainer.Training;

namespace FineTune.Trainer.Runs;

/// <summary>
/// A loss that became NaN or infinite means training diverged: the weights after that step are not worth a
/// checkpoint, and every later step would only repeat it. The run stops with one sentence (exit 2) that names
/// the step and the last good checkpoint. fp16 is the exception: its dynamic loss scaler skips steps whose
/// gradients overflow and lowers the scale, which is the expected way for it to recover.
/// The step's metrics are already in metrics.jsonl (non-finite values as the strings "NaN", "Infinity").
/// </summary>
public static class RunDivergence
{
    public static void Check(StepMetrics metrics, Recipe recipe, string? lastCheckpoint)
    {
        if (double.IsFinite(metrics.Loss) || recipe.Training.Precision == Precision.Fp16)
            return;
        string resume = lastCheckpoint is null ? "start again in a new output_dir" : $"continue from {lastCheckpoint} (finetune resume {recipe.OutputDir})";
        throw new UserErrorException(string.Create(CultureInfo.InvariantCulture,
            $"The loss became {metrics.Loss} at step {metrics.Step} (lr {metrics.LearningRate:0.###e+0}, gradient norm {metrics.GradientNorm}): training diverged and this step is not checkpointed; {resume} with a lower optimizer.lr or a training.clip_grad_norm."));
    }
}
