namespace FineTune.Trainer.Recipes;

/// <summary>
/// A rough feasibility check of the memory budgets before any planning: it refuses recipes that cannot fit by
/// a wide margin, and leaves the precise decision to the planner. Needs:
/// - the training state a step cannot do without, across device + host + NVMe: the weights and the optimizer states
///   (fp32 master, Adam m and v), 4 + 12 = 16 bytes per parameter in fp32, 2 + 12 = 14 in fp16, and 2 + 10 = 12 in bf16,
///   whose masters can be stored as 16-bit residuals over the weights; the gradients are consumed as backward makes
///   them (reference: DESIGN.md "The problem, in numbers");
/// - optimizer states on an explicit tier: 12 bytes per parameter there;
/// - host: room to stage the largest tensor in fp32, double-buffered (2 × 4 bytes per element).
/// A budget left null ("auto") is unknown here, so checks that need it are skipped.
/// </summary>
internal static class RecipeBudgetCheck
{
    public const double OptimizerBytesPerParameter = 12;

    public static void Check(Recipe recipe, RecipeValues v, ModelShape shape, double? nvmeFreeGb)
    {
        OffloadSection o = recipe.Offload;
        double parameters = shape.ParameterCount;
        string model = $"this {FormatCount(parameters)}-parameter model";

        double? deviceGb = recipe.Training.Device == ComputeDevice.Cpu ? 0 : o.DeviceGb;
        double? nvmeGb = o.NvmeDir is null ? 0 : o.NvmeGb ?? nvmeFreeGb * 0.9;
        int stateBytes = recipe.Training.Precision switch { Precision.Fp32 => 16, Precision.Fp16 => 14, _ => 12 };
        double needGb = parameters * stateBytes / OffloadSection.BytesPerGb;
        if (deviceGb is double d && o.HostGb is double h && nvmeGb is double n && d + h + n < needGb)
            throw new UserErrorException(
                $"The offload budgets hold {Gb(d + h + n)} GiB (device_gb {Gb(d)} + host_gb {Gb(h)} + nvme_gb {Gb(n)}) but training {model} needs about {Gb(needGb)} GiB " +
                $"({stateBytes} bytes per parameter at the least, for the weights, the fp32 master weights and two Adam moments); raise offload.{(o.NvmeDir is null ? "host_gb or set offload.nvme_dir" : "nvme_gb")}.");

        double optimizerGb = parameters * OptimizerBytesPerParameter / OffloadSection.BytesPerGb;
        double? tierGb = o.OptimizerStates switch
        {
            StorageTier.Device => deviceGb,
            StorageTier.Host => o.HostGb,
            StorageTier.Nvme => nvmeGb,
            _ => null,
        };
        string tierKey = o.OptimizerStates switch { StorageTier.Device => "device_gb", StorageTier.Host => "host_gb", _ => "nvme_gb" };
        if (tierGb is double tier && tier < optimizerGb)
            throw new UserErrorException(
                $"offload.optimizer_states is {v.String("offload.optimizer_states")} but offload.{tierKey} {Gb(tier)} GiB cannot hold the {Gb(optimizerGb)} GiB of fp32 master weights and Adam moments of {model}; raise offload.{tierKey} or choose another tier.");

        double stagingGb = shape.LargestTensorElements * 2.0 * 4 / OffloadSection.BytesPerGb;
        if (o.HostGb is double host && host < stagingGb)
            throw new UserErrorException(
                $"offload.host_gb {Gb(host)}{v.Where("offload.host_gb")} is below the {Gb(stagingGb)} GiB needed to stage the largest tensor of {model} ({FormatCount(shape.LargestTensorElements)} elements, fp32, double-buffered); raise offload.host_gb.");
    }

    /// <summary>Three significant digits (0.00207, 18.4), whole GiB from 100 up, so small test budgets still read sensibly.</summary>
    private static string Gb(double gb) => gb >= 100
        ? RecipeValues.Format(Math.Round(gb))
        : RecipeValues.Format(double.Parse(gb.ToString("G3", System.Globalization.CultureInfo.InvariantCulture), System.Globalization.CultureInfo.InvariantCulture));

    private static string FormatCount(double count) => count switch
    {
        >= 1e9 => $"{RecipeValues.Format(Math.Round(count / 1e9, 2))}B",
        >= 1e6 => $"{RecipeValues.Format(Math.Round(count / 1e6, 2))}M",
        >= 1e3 => $"{RecipeValues.Format(Math.Round(count / 1e3, 2))}K",
        _ => RecipeValues.Format(count),
    };
}
