using System.Net;
using System.Net.Sockets;
using FineTune.Torch.Distributed;
using Xunit;

namespace FineTune.Torch.Tests.Distributed;

/// <summary>
/// What a rank sees when a peer never comes, stops answering, or is slow: a <see cref="DistributedException"/>
/// within the timeout whose one sentence names this rank, the operation and, where it can be told, the peer.
/// Short timeouts keep these to seconds; <see cref="LoopbackRanks"/> fails the test if any call is unbounded.
/// </summary>
public sealed class FailureTests
{
    private static readonly ProcessGroupOptions s_short = LoopbackRanks.Options(TimeSpan.FromSeconds(2));

    [Fact]
    public void ACollectiveWithADeadPeerNamesThatRank()
    {
        using var peerLeft = new ManualResetEventSlim();
        Exception?[] failures = LoopbackRanks.Run(2, s_short, group =>
        {
            if (group.Rank == 1)
            {
                // What a killed process does to its peers: its connections close and its heartbeat stops.
                group.Dispose();
                peerLeft.Set();
                return;
            }
            peerLeft.Wait();
            using Tensor t = Torch.Ones([1 << 16], DType.Float32);
            var e = Assert.Throws<DistributedException>(() => group.AllReduce(t));
            Assert.StartsWith("rank 0 of 2: all_reduce of 65,536 float32 failed after", e.Message);
            Assert.Contains("because rank 1 stopped answering", e.Message);
            Assert.Equal([1], e.SuspectRanks);
            Assert.Equal("all_reduce", e.Operation);
            Assert.True(group.IsBroken);
            // The next call must not pair with whatever the peers do next.
            var refused = Assert.Throws<DistributedException>(group.Barrier);
            Assert.StartsWith("rank 0 of 2: barrier refused because the group failed earlier (all_reduce failed: rank 1 stopped answering", refused.Message);
        });
        Assert.All(failures, Assert.Null);
    }

    [Fact]
    public void ASlowPeerEndsTheCollectiveAtTheTimeoutAndIsNotBlamed()
    {
        using var rank0Failed = new ManualResetEventSlim();
        Exception?[] failures = LoopbackRanks.Run(2, s_short, group =>
        {
            if (group.Rank == 1)
            {
                // Alive (its heartbeat goes on) but never reaches the collective while rank 0 waits.
                rank0Failed.Wait();
                return;
            }
            using Tensor t = Torch.Ones([16], DType.Float32);
            var e = Assert.Throws<DistributedException>(() => group.AllReduce(t));
            rank0Failed.Set();
            Assert.StartsWith("rank 0 of 2: all_reduce of 16 float32 failed after", e.Message);
            Assert.Contains("every other rank is still alive, so one of them is slower than the 2 s timeout", e.Message);
            Assert.Empty(e.SuspectRanks);
        });
        Assert.All(failures, Assert.Null);
    }

    [Fact]
    public void ARankThatNeverJoinsIsNamed()
    {
        var options = LoopbackRanks.Options(TimeSpan.FromSeconds(1));
        using TcpStore server = TcpStore.Serve("127.0.0.1", 0, 3, options.Timeout);
        using TcpStore second = TcpStore.Connect("127.0.0.1", server.Port, 3, options.Timeout);
        // Ranks 0 and 1 come; rank 2 never does.
        DistributedException? rank1Failure = null;
        var rank1 = new Thread(() => rank1Failure = Assert.Throws<DistributedException>(() => ProcessGroup.Join(second, 1, 3, options)));
        rank1.Start();
        var e = Assert.Throws<DistributedException>(() => ProcessGroup.Join(server, 0, 3, options));
        Assert.Equal($"rank 0 of 3: rank 2 did not join the group at 127.0.0.1:{server.Port} within 1 s; start every rank with the same MASTER_ADDR, MASTER_PORT and WORLD_SIZE, or raise the timeout.", e.Message);
        Assert.Equal([2], e.SuspectRanks);
        Assert.True(rank1.Join(TimeSpan.FromSeconds(30)));
        Assert.Equal([2], rank1Failure?.SuspectRanks);
    }

    [Fact]
    public void ARankThatCannotReachTheStoreSaysWhereItLooked()
    {
        int port = FreePort();
        var env = DistributedEnvironment.Parse(new Dictionary<string, string?>
        {
            ["RANK"] = "1", ["WORLD_SIZE"] = "2", ["MASTER_ADDR"] = "127.0.0.1", ["MASTER_PORT"] = port.ToString(), ["FINETUNE_DIST_TIMEOUT"] = "1",
        }.GetValueOrDefault);
        var e = Assert.Throws<DistributedException>(() => env.JoinGroup());
        Assert.StartsWith($"rank 1 of 2 could not reach the rendezvous store at 127.0.0.1:{port} within 1 s (", e.Message);
        Assert.EndsWith("; rank 0 serves it: start it, or check MASTER_ADDR and MASTER_PORT.", e.Message);
    }

    [Fact]
    public void TheNativeCauseLosesGloosSourceLocation()
    {
        Assert.Equal("Connection closed by peer [127.0.0.1]:40213",
            ProcessGroup.NativeCause("rank 0 of 2 (gloo): all_reduce failed: [/build/gloo/transport/tcp/pair.cc:598] Connection closed by peer [127.0.0.1]:40213\nmore"));
        Assert.Equal("Timed out waiting 2000ms for recv operation to complete",
            ProcessGroup.NativeCause("rank 0 of 2 (gloo): all_reduce failed: Timed out waiting 2000ms for recv operation to complete."));
    }

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }
}
