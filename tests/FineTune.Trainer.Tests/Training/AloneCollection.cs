using Xunit;

namespace FineTune.Trainer.Tests.Training;

/// <summary>
/// Tests that compare bits across runs whose libtorch calls happen on several threads at once (data-parallel ranks as
/// threads of one process): run alone, so that no other test's kernels share OpenMP's threads with them. With other
/// tests running, a rank's reductions can get another thread count, hence another summation order, and the bit-for-bit
/// comparison with the 1-process run fails although both are right (seen in full suites). Running alone keeps the
/// tests' own thread setting (DataParallelTests: one libtorch thread) from leaking into other tests.
/// </summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class AloneCollection
{
    public const string Name = "alone: threads of ranks compared bit for bit";
}
