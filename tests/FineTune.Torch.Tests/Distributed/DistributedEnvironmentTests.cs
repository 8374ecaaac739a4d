using FineTune.Torch.Distributed;
using Xunit;

namespace FineTune.Torch.Tests.Distributed;

/// <summary>The torchrun variables, parsed as torchrun and srun wrappers set them, and refused when they are not.</summary>
public sealed class DistributedEnvironmentTests
{
    private static DistributedEnvironment Parse(params (string Name, string Value)[] variables)
    {
        var map = variables.ToDictionary(v => v.Name, v => (string?)v.Value);
        return DistributedEnvironment.Parse(map.GetValueOrDefault);
    }

    [Fact]
    public void NoVariablesMeanOneProcess()
    {
        DistributedEnvironment env = Parse();
        Assert.Equal(DistributedEnvironment.Single, env);
        Assert.False(env.IsDistributed);
        Assert.Equal(TimeSpan.FromMinutes(5), env.Timeout);
    }

    [Fact]
    public void TorchrunsVariablesAreRead()
    {
        DistributedEnvironment env = Parse(("RANK", "5"), ("WORLD_SIZE", "8"), ("LOCAL_RANK", "1"), ("LOCAL_WORLD_SIZE", "4"),
            ("MASTER_ADDR", "node0.cluster"), ("MASTER_PORT", "29400"), ("FINETUNE_DIST_TIMEOUT", "45"));
        Assert.Equal(new DistributedEnvironment(5, 8, 1, 4, "node0.cluster", 29400, TimeSpan.FromSeconds(45)), env);
        Assert.True(env.IsDistributed);
    }

    [Fact]
    public void LocalRankDefaultsFromTheRankAndTheLocalWorldSize()
    {
        DistributedEnvironment env = Parse(("RANK", "5"), ("WORLD_SIZE", "8"), ("LOCAL_WORLD_SIZE", "4"), ("MASTER_ADDR", "a"), ("MASTER_PORT", "1"));
        Assert.Equal(1, env.LocalRank);
        Assert.Equal(5, Parse(("RANK", "5"), ("WORLD_SIZE", "8"), ("MASTER_ADDR", "a"), ("MASTER_PORT", "1")).LocalRank);
    }

    [Fact]
    public void TheVariablesALauncherSetsParseBackToTheSameRank()
    {
        var env = new DistributedEnvironment(2, 4, 2, 4, "127.0.0.1", 31000, TimeSpan.FromSeconds(12));
        Assert.Equal(env, DistributedEnvironment.Parse(env.ToVariables().GetValueOrDefault));
    }

    [Theory]
    [InlineData("RANK", "0", null, null, "RANK is set but WORLD_SIZE is not; set both (torchrun sets RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR and MASTER_PORT), or neither for a single process.")]
    [InlineData("WORLD_SIZE", "2", null, null, "WORLD_SIZE is set but RANK is not; set both (torchrun sets RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR and MASTER_PORT), or neither for a single process.")]
    [InlineData("RANK", "2", "WORLD_SIZE", "2", "RANK=2 is not a whole number in 0..1; set it as torchrun does.")]
    [InlineData("RANK", "one", "WORLD_SIZE", "2", "RANK=one is not a whole number in 0..1; set it as torchrun does.")]
    [InlineData("RANK", "0", "WORLD_SIZE", "0", "WORLD_SIZE=0 is not a whole number in 1..65536; set it as torchrun does.")]
    [InlineData("RANK", "1", "WORLD_SIZE", "2", "WORLD_SIZE is 2 but MASTER_ADDR is not set; give every rank the address and port where rank 0 serves the rendezvous store (e.g. MASTER_ADDR=127.0.0.1 MASTER_PORT=29500).")]
    public void APartialOrMalformedSetIsRefusedWithOneSentence(string name1, string value1, string? name2, string? value2, string message)
    {
        var variables = new List<(string, string)> { (name1, value1) };
        if (name2 is not null)
            variables.Add((name2, value2!));
        var e = Assert.Throws<DistributedException>(() => Parse([.. variables]));
        Assert.Equal(message, e.Message);
        Assert.Equal("environment", e.Operation);
    }

    [Fact]
    public void ABadPortOrTimeoutIsRefused()
    {
        var e = Assert.Throws<DistributedException>(() => Parse(("RANK", "1"), ("WORLD_SIZE", "2"), ("MASTER_ADDR", "h"), ("MASTER_PORT", "70000")));
        Assert.Equal("MASTER_PORT=70000 is not a whole number in 1..65535; set it as torchrun does.", e.Message);
        Assert.Equal(1, e.Rank);
        e = Assert.Throws<DistributedException>(() => Parse(("FINETUNE_DIST_TIMEOUT", "-3")));
        Assert.Equal("FINETUNE_DIST_TIMEOUT=-3 is not a whole number in 1..86400; give the timeout of joining and of each collective in whole seconds.", e.Message);
    }

    [Fact]
    public void OneRankJoinsItsOwnGroupWithoutPeers()
    {
        using ProcessGroup group = Parse(("RANK", "0"), ("WORLD_SIZE", "1")).JoinGroup();
        Assert.Equal((0, 1), (group.Rank, group.WorldSize));
        using Tensor t = Torch.FromArray<float>([1, 2, 3], [3]);
        group.AllReduce(t);
        Assert.Equal([1f, 2f, 3f], t.ToArray<float>());
    }
}
