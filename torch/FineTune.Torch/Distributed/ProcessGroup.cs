using System.Diagnostics;
using FineTune.Torch.Native;

namespace FineTune.Torch.Distributed;

/// <summary>
/// One rank's membership of a c10d process group (ProcessGroupGloo for CPU tensors, ProcessGroupNCCL for CUDA
/// tensors) and the collectives a ZeRO-partitioned optimizer needs. Every rank calls the same collectives in the
/// same order; each call returns when its result is in place on this rank, or throws within the group's timeout.
/// Tensors must be contiguous; views over FineTune's own memory (<see cref="Torch.FromPointer"/>) work as they are.
/// A failure throws <see cref="DistributedException"/> naming this rank, the operation and, when the heartbeats
/// tell, the rank that stopped answering; the group is then broken for good (<see cref="IsBroken"/>).
/// Collectives of one group are not meant to be issued from several threads at once (c10d pairs them by order).
/// After a collective timed out, Gloo's worker may still touch the tensors it was given until Gloo's own timeout
/// ends it: keep memory that tensors view (a pool buffer) allocated until the group is disposed.
/// </summary>
public sealed class ProcessGroup : IDisposable
{
    private readonly OpaqueHandle _handle;
    private readonly TcpStore? _ownedStore;
    private readonly PeerWatch? _watch;
    private readonly ProcessGroupOptions _options;
    private string? _brokenBy;

    private ProcessGroup(IntPtr handle, int rank, int worldSize, ProcessGroupOptions options, PeerWatch? watch, TcpStore? ownedStore)
    {
        _handle = new OpaqueHandle(handle, NativeMethods.ft_pg_free);
        Rank = rank;
        WorldSize = worldSize;
        _options = options;
        _watch = watch;
        _ownedStore = ownedStore;
    }

    public int Rank { get; }

    public int WorldSize { get; }

    public DistributedBackend Backend => _options.Backend;

    public TimeSpan Timeout => _options.Timeout;

    /// <summary>True once a collective failed: peers may be mid-operation, so no further call is safe.</summary>
    public bool IsBroken => Volatile.Read(ref _brokenBy) is not null;

    private IntPtr Handle
    {
        get
        {
            ObjectDisposedException.ThrowIf(_handle.IsClosed, this);
            return _handle.DangerousGetHandle();
        }
    }

    /// <summary>Whether this shim was built with <paramref name="backend"/> (Gloo: gloo headers; NCCL: CUDA and nccl.h).</summary>
    public static unsafe bool IsBackendAvailable(DistributedBackend backend)
    {
        int available;
        NativeMethods.Check(NativeMethods.ft_dist_backend_available((int)backend, &available));
        return available != 0;
    }

    /// <summary>
    /// Joins the group of <paramref name="worldSize"/> ranks that rendezvous through <paramref name="store"/>: marks
    /// this rank as joined, waits (up to the timeout) for every other rank and names the ones that never came,
    /// builds the native group and starts this rank's heartbeat. With <paramref name="ownsStore"/> the group
    /// disposes the store with itself.
    /// </summary>
    public static unsafe ProcessGroup Join(TcpStore store, int rank, int worldSize, ProcessGroupOptions? options = null, bool ownsStore = false)
    {
        ArgumentNullException.ThrowIfNull(store);
        options ??= new ProcessGroupOptions();
        if (worldSize < 1 || rank < 0 || rank >= worldSize)
            throw new ArgumentOutOfRangeException(nameof(rank), $"rank {rank} is not in 0..{worldSize - 1}");
        if (!IsBackendAvailable(options.Backend))
            throw new DistributedException(options.Backend == DistributedBackend.Gloo
                ? $"rank {rank} of {worldSize}: this FineTune was built without Gloo; install libgloo-dev and rebuild it with ./build.sh."
                : $"rank {rank} of {worldSize}: this FineTune was built without NCCL; rebuild it with FINETUNE_LIBTORCH=<a CUDA libtorch> ./build.sh, with nccl.h where CMake finds it.", rank, "join");
        if (worldSize > 1)
            GroupJoin.WaitForEveryRank(store, options.KeyPrefix, rank, worldSize, options.Timeout);
        IntPtr handle;
        int status = NativeMethods.ft_pg_new((int)options.Backend, store.Handle, options.KeyPrefix + "c10d/", rank, worldSize,
            options.GlooHostName ?? "", TcpStore.TimeoutMilliseconds(options.Timeout), options.GlooThreads, &handle);
        if (status != 0)
            throw new DistributedException($"rank {rank} of {worldSize}: creating the {options.Backend} group failed ({NativeMethods.LastErrorMessage()}); check that every rank can reach the others' addresses.", rank, "join");
        PeerWatch? watch = null;
        try
        {
            if (worldSize > 1)
                watch = new PeerWatch(store.Host, store.Port, options.KeyPrefix, rank, worldSize, options.HeartbeatInterval);
        }
        catch (TorchException e)
        {
            NativeMethods.ft_pg_free(handle);
            throw new DistributedException($"rank {rank} of {worldSize}: could not open the heartbeat connection to the store at {store.Host}:{store.Port} ({e.Message}).", rank, "join", [0], e);
        }
        GC.KeepAlive(store);
        return new ProcessGroup(handle, rank, worldSize, options, watch, ownsStore ? store : null);
    }

    /// <summary>Reduces <paramref name="tensor"/> over all ranks, in place on every rank.</summary>
    public void AllReduce(Tensor tensor, ReduceOp op = ReduceOp.Sum) =>
        Collective("all_reduce", tensor, () => NativeMethods.ft_pg_all_reduce(Handle, tensor.Handle, (int)op));

    /// <summary>Reduces host values (counters, losses) over all ranks, in place; float64 throughout.</summary>
    public void AllReduce(Span<double> values, ReduceOp op = ReduceOp.Sum)
    {
        using Tensor t = Torch.FromArray<double>(values, [values.Length]);
        AllReduce(t, op);
        t.CopyTo(values);
    }

    /// <summary>Reduces <paramref name="tensor"/> into rank <paramref name="root"/>'s copy; the other ranks' copies
    /// may be overwritten with partial results (Gloo uses them as scratch).</summary>
    public void Reduce(Tensor tensor, int root, ReduceOp op = ReduceOp.Sum) =>
        Collective("reduce", tensor, () => NativeMethods.ft_pg_reduce(Handle, tensor.Handle, root, (int)op));

    /// <summary>Copies rank <paramref name="root"/>'s <paramref name="tensor"/> into every other rank's.</summary>
    public void Broadcast(Tensor tensor, int root) =>
        Collective("broadcast", tensor, () => NativeMethods.ft_pg_broadcast(Handle, tensor.Handle, root));

    /// <summary>output (W * n) gets every rank's input (n) at [r * n, (r + 1) * n), same dtype. NCCL does this
    /// natively; Gloo through <paramref name="method"/>, by default <see cref="ProcessGroupOptions.AllGatherMethod"/>.</summary>
    public void AllGather(Tensor input, Tensor output, AllGatherMethod? method = null)
    {
        if (Backend == DistributedBackend.Nccl || (method ?? _options.AllGatherMethod) == AllGatherMethod.GlooAllGather)
        {
            Collective("all_gather", input, () => NativeMethods.ft_pg_all_gather(Handle, input.Handle, output.Handle), output);
            return;
        }
        long n = input.NumElements;
        if (output.NumElements != n * WorldSize || output.DType != input.DType)
            throw new ArgumentException($"all_gather needs an output of {WorldSize} x {n} {input.DType} elements, got {output.NumElements} {output.DType}", nameof(output));
        using Tensor flat = output.View(-1);
        for (int r = 0; r < WorldSize; r++)
        {
            using Tensor shard = flat.Narrow(0, r * n, n);
            if (r == Rank)
            {
                using Tensor mine = input.View(-1);
                shard.CopyFrom(mine);
            }
            Broadcast(shard, r);
        }
    }

    /// <summary>
    /// output (n) gets the reduction over ranks of their input (W * n) at [Rank * n, (Rank + 1) * n). input is
    /// scratch: its contents afterwards are unspecified (the Gloo fallbacks reduce in place). NCCL does this
    /// natively; Gloo through <paramref name="fallback"/>, by default <see cref="ProcessGroupOptions.ReduceScatterFallback"/>.
    /// </summary>
    /// <param name="scratch">W * n elements of the input's dtype for <see cref="ReduceScatterFallback.AllToAllThenSum"/>
    /// (a pool buffer); null allocates one for the call.</param>
    public void ReduceScatter(Tensor input, Tensor output, ReduceOp op = ReduceOp.Sum, ReduceScatterFallback? fallback = null, Tensor? scratch = null)
    {
        long n = output.NumElements;
        if (input.NumElements != n * WorldSize)
            throw new ArgumentException($"reduce_scatter needs an input of {WorldSize} x {n} elements, got {input.NumElements}", nameof(input));
        if (SupportsNativeReduceScatter)
        {
            Collective("reduce_scatter", input, () => NativeMethods.ft_pg_reduce_scatter(Handle, input.Handle, output.Handle, (int)op), output);
            return;
        }
        using Tensor flat = input.View(-1);
        ReduceScatterFallback method = fallback ?? _options.ReduceScatterFallback;
        if (method == ReduceScatterFallback.AllToAllThenSum && op == ReduceOp.Sum)
        {
            SumOfAllToAll(flat, output, n, scratch);
            return;
        }
        if (method != ReduceScatterFallback.ReducePerShard)
        {
            AllReduce(flat, op);
        }
        else
        {
            for (int r = 0; r < WorldSize; r++)
            {
                using Tensor shard = flat.Narrow(0, r * n, n);
                Reduce(shard, r, op);
            }
        }
        using Tensor mine = flat.Narrow(0, Rank * n, n);
        using Tensor target = output.View(-1);
        target.CopyFrom(mine);
    }

    /// <summary>input and output (W * n): rank r's input [s * n, (s + 1) * n) lands in rank s's output at
    /// [r * n, (r + 1) * n) (torch.distributed.all_to_all_single with equal splits).</summary>
    public void AllToAll(Tensor input, Tensor output) =>
        Collective("all_to_all", input, () => NativeMethods.ft_pg_all_to_all(Handle, input.Handle, output.Handle), output);

    private void SumOfAllToAll(Tensor flatInput, Tensor output, long n, Tensor? scratch)
    {
        if (scratch is not null && (scratch.NumElements != flatInput.NumElements || scratch.DType != flatInput.DType))
            throw new ArgumentException($"reduce_scatter's scratch must hold {flatInput.NumElements} {flatInput.DType} elements", nameof(scratch));
        Tensor received = scratch ?? Torch.Empty([flatInput.NumElements], flatInput.DType);
        try
        {
            using Tensor flatReceived = received.View(-1);
            AllToAll(flatInput, flatReceived);
            // (W, n): row s is rank s's contribution to this rank's shard, summed in rank order on every rank.
            using Tensor target = output.View(-1);
            for (int s = 0; s < WorldSize; s++)
            {
                using Tensor piece = flatReceived.Narrow(0, s * n, n);
                if (s == 0)
                    target.CopyFrom(piece);
                else
                    target.AddInPlace(piece);
            }
        }
        finally
        {
            if (scratch is null)
                received.Dispose();
        }
    }

    /// <summary>Whether <see cref="ReduceScatter"/> is one native call here (NCCL) rather than a fallback (Gloo).</summary>
    public unsafe bool SupportsNativeReduceScatter
    {
        get
        {
            int supported;
            NativeMethods.Check(NativeMethods.ft_pg_supports_reduce_scatter(Handle, &supported));
            return supported != 0;
        }
    }

    /// <summary>Returns when every rank has called it (and, on Gloo, every earlier collective has completed).</summary>
    public void Barrier() => Collective("barrier", null, () => NativeMethods.ft_pg_barrier(Handle));

    /// <summary>Stops the heartbeat and leaves the group. Call <see cref="Barrier"/> first when peers may still be
    /// reading from this rank: leaving closes its connections.</summary>
    public void Dispose()
    {
        _watch?.Dispose();
        _handle.Dispose();
        _ownedStore?.Dispose();
    }

    private unsafe void Collective(string operation, Tensor? tensor, Func<int> call, Tensor? second = null)
    {
        if (Volatile.Read(ref _brokenBy) is string earlier)
            throw new DistributedException($"rank {Rank} of {WorldSize}: {operation} refused because the group failed earlier ({earlier}); end the run (the last complete checkpoint is still good).", Rank, operation);
        string what = tensor is null ? "" : $" of {tensor.NumElements:N0} {tensor.DType.ToString().ToLowerInvariant()}";
        long start = Stopwatch.GetTimestamp();
        int status = call();
        GC.KeepAlive(tensor);
        GC.KeepAlive(second);
        if (status == 0)
            return;
        string native = NativeMethods.LastErrorMessage();
        int broken;
        NativeMethods.Check(NativeMethods.ft_pg_is_broken(Handle, &broken));
        if (broken == 0)
            throw new TorchException(native);  // a bad argument (device, layout, size): the caller's bug
        double seconds = Stopwatch.GetElapsedTime(start).TotalSeconds;
        (string reason, IReadOnlyList<int> suspects) = _watch?.Diagnose(Timeout) ?? ("the group failed", []);
        Volatile.Write(ref _brokenBy, $"{operation} failed: {reason}");
        throw new DistributedException(
            $"rank {Rank} of {WorldSize}: {operation}{what} failed after {seconds:0.0} s because {reason} ({Backend.ToString().ToLowerInvariant()}: {NativeCause(native)}).",
            Rank, operation, suspects, new TorchException(native));
    }

    /// <summary>The backend's own words from "rank R of W (gloo): OP failed: [pair.cc:598] Connection closed ...":
    /// the part after "failed: ", without Gloo's source location, first line only.</summary>
    internal static string NativeCause(string native)
    {
        const string marker = " failed: ";
        int at = native.IndexOf(marker, StringComparison.Ordinal);
        string cause = at >= 0 ? native[(at + marker.Length)..] : native;
        if (cause.StartsWith('[') && cause.IndexOf("] ", StringComparison.Ordinal) is int close and > 0)
            cause = cause[(close + 2)..];
        int newline = cause.IndexOf('\n');
        return (newline >= 0 ? cause[..newline] : cause).Trim().TrimEnd('.');
    }
}
