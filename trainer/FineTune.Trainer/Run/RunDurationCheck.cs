using System.Globalization;
using FineTune.Trainer.Recipes;

namespace FineTune.Trainer.Runs;

/// <summary>
/// A step count that no one means: the plan's step time (an upper bound: no overlap of compute and I/O) times the
/// run's steps beyond a year is refused with the estimate (a typo such as training.max_steps=10000000000, or an
/// epoch count over a huge dataset), before anything is allocated. Days-long runs are normal and pass.
/// </summary>
public static class RunDurationCheck
{
    public static readonly TimeSpan Limit = TimeSpan.FromDays(365);

    public static void Check(Recipe recipe, RunPlan plan, long totalSteps)
    {
        double seconds = plan.StepSeconds * totalSteps;
        if (double.IsFinite(seconds) && seconds <= Limit.TotalSeconds)
            return;
        string source = recipe.Training.MaxSteps is not null ? "training.max_steps" : "training.epochs";
        throw new UserErrorException(string.Create(CultureInfo.InvariantCulture,
            $"{source} gives {totalSteps:N0} steps, which at the plan's {plan.StepSeconds:0.###} s per step would take about {seconds / 86400 / 365:0.#} years; lower {source}."));
    }
}
