using FineTune.IO;
using FineTune.IO.Engines;
using Xunit;

namespace FineTune.IO.Tests.Engines;

/// <summary>
/// The contract every <see cref="IIoEngine"/> must meet; one subclass per engine runs the identical suite, so the
/// fallback is held to the same standard as io_uring. Data is checked byte for byte against a seeded reference.
/// </summary>
public abstract class IoEngineContractTests : IDisposable
{
    private const int Sector = 4096;
    protected readonly TempDirectory Directory = new();

    protected abstract IIoEngine CreateEngine(int queueDepth = 8, int maxRequestByteCount = 64 * 1024);

    public void Dispose() => Directory.Dispose();

    private static void Fill(Span<byte> span, int seed) => new Random(seed).NextBytes(span);

    [Fact]
    public async Task WriteThenReadRoundTripsAcrossManyChunks()
    {
        using IIoEngine engine = CreateEngine();
        using DirectFile file = DirectFile.Open(Directory.File("a.bin"), DirectFileAccess.ReadWrite, create: true);
        const int byteCount = 1_000 * Sector; // 62.5 chunks of 64 KiB: the last chunk is partial
        using var source = new AlignedBuffer(byteCount);
        using var target = new AlignedBuffer(byteCount);
        Fill(source.Span, 1);
        await engine.WriteAsync(file, 0, source, 0, byteCount);
        await engine.ReadAsync(file, 0, target, 0, byteCount);
        Assert.True(source.Span.SequenceEqual(target.Span));
        Assert.Equal(byteCount, engine.BytesWritten);
        Assert.Equal(byteCount, engine.BytesRead);
        Assert.Equal(2, engine.CompletedRequestCount);
        Assert.True(engine.SubmissionCount >= 2 * 63);
        Assert.Equal(0, source.InFlightCount);
    }

    [Fact]
    public async Task RandomAlignedOffsetsAndSizesMatchAReferenceModel()
    {
        // Property: after any seeded sequence of aligned writes, every aligned read equals the reference array.
        using IIoEngine engine = CreateEngine(queueDepth: 4, maxRequestByteCount: 3 * Sector);
        using DirectFile file = DirectFile.Open(Directory.File("p.bin"), DirectFileAccess.ReadWrite, create: true);
        const int fileSectors = 256;
        file.Preallocate(fileSectors * Sector);
        byte[] model = new byte[fileSectors * Sector];
        using var buffer = new AlignedBuffer(64 * Sector);
        for (int seed = 0; seed < 40; seed++)
        {
            var random = new Random(seed);
            int sectors = random.Next(1, 33);
            int fileSector = random.Next(0, fileSectors - sectors + 1);
            int bufferSector = random.Next(0, 64 - sectors + 1);
            random.NextBytes(buffer.GetSpan((long)bufferSector * Sector, sectors * Sector));
            await engine.WriteAsync(file, (long)fileSector * Sector, buffer, (long)bufferSector * Sector, sectors * Sector);
            buffer.GetSpan((long)bufferSector * Sector, sectors * Sector).CopyTo(model.AsSpan(fileSector * Sector));

            int readSectors = random.Next(1, 33);
            int readSector = random.Next(0, fileSectors - readSectors + 1);
            buffer.Span.Clear();
            await engine.ReadAsync(file, (long)readSector * Sector, buffer, 0, readSectors * Sector);
            Assert.True(buffer.GetSpan(0, readSectors * Sector).SequenceEqual(model.AsSpan(readSector * Sector, readSectors * Sector)), $"seed {seed}");
        }
    }

    [Fact]
    public async Task ConcurrentRequestsFromSeveralThreadsAllLand()
    {
        using IIoEngine engine = CreateEngine(queueDepth: 4, maxRequestByteCount: 2 * Sector);
        using DirectFile file = DirectFile.Open(Directory.File("c.bin"), DirectFileAccess.ReadWrite, create: true);
        const int threadCount = 6, blocksPerThread = 20, blockBytes = 4 * Sector;
        file.Preallocate((long)threadCount * blocksPerThread * blockBytes);
        await Task.WhenAll(Enumerable.Range(0, threadCount).Select(thread => Task.Run(async () =>
        {
            using var buffer = new AlignedBuffer(blockBytes);
            for (int block = 0; block < blocksPerThread; block++)
            {
                Fill(buffer.Span, thread * 1000 + block);
                await engine.WriteAsync(file, ((long)thread * blocksPerThread + block) * blockBytes, buffer, 0, blockBytes);
            }
        })));
        using var check = new AlignedBuffer(blockBytes);
        byte[] expected = new byte[blockBytes];
        for (int thread = 0; thread < threadCount; thread++)
        for (int block = 0; block < blocksPerThread; block++)
        {
            await engine.ReadAsync(file, ((long)thread * blocksPerThread + block) * blockBytes, check, 0, blockBytes);
            Fill(expected, thread * 1000 + block);
            Assert.True(check.Span.SequenceEqual(expected));
        }
    }

    [Fact]
    public async Task FileLargerThanTheBufferIsStreamedThroughIt()
    {
        // 16 MiB file through a 256 KiB buffer, many requests queued at once on different buffers.
        using IIoEngine engine = CreateEngine(queueDepth: 16, maxRequestByteCount: 64 * 1024);
        using DirectFile file = DirectFile.Open(Directory.File("big.bin"), DirectFileAccess.ReadWrite, create: true);
        const int bufferBytes = 256 * 1024, bufferCount = 64;
        var buffers = Enumerable.Range(0, 4).Select(_ => new AlignedBuffer(bufferBytes)).ToArray();
        try
        {
            for (int index = 0; index < bufferCount; index += buffers.Length)
            {
                var writes = new List<Task>();
                for (int slot = 0; slot < buffers.Length; slot++)
                {
                    Fill(buffers[slot].Span, index + slot);
                    writes.Add(engine.WriteAsync(file, (long)(index + slot) * bufferBytes, buffers[slot], 0, bufferBytes).AsTask());
                }
                await Task.WhenAll(writes);
            }
            Assert.Equal((long)bufferBytes * bufferCount, file.Length);
            byte[] expected = new byte[bufferBytes];
            for (int index = 0; index < bufferCount; index++)
            {
                await engine.ReadAsync(file, (long)index * bufferBytes, buffers[0], 0, bufferBytes);
                Fill(expected, index);
                Assert.True(buffers[0].Span.SequenceEqual(expected), $"block {index}");
            }
        }
        finally
        {
            foreach (AlignedBuffer buffer in buffers)
                buffer.Dispose();
        }
    }

    [Theory]
    [InlineData(100, 0, 4096)]
    [InlineData(0, 512, 4096)]
    [InlineData(0, 0, 4000)]
    [InlineData(-4096, 0, 4096)]
    public void MisalignedRequestsAreRejectedBeforeSubmission(long fileOffset, long bufferOffset, long byteCount)
    {
        using IIoEngine engine = CreateEngine();
        using DirectFile file = DirectFile.Open(Directory.File("m.bin"), DirectFileAccess.ReadWrite, create: true);
        using var buffer = new AlignedBuffer(2 * Sector);
        var error = Assert.Throws<ArgumentException>(() => { _ = engine.WriteAsync(file, fileOffset, buffer, bufferOffset, byteCount); });
        Assert.Contains("multiple of 4096", error.Message);
        Assert.Equal(0, engine.SubmissionCount);
        Assert.Equal(0, buffer.InFlightCount);
    }

    [Fact]
    public void RangeBeyondTheBufferIsRejected()
    {
        using IIoEngine engine = CreateEngine();
        using DirectFile file = DirectFile.Open(Directory.File("r.bin"), DirectFileAccess.ReadWrite, create: true);
        using var buffer = new AlignedBuffer(Sector + 1); // capacity 8192
        Assert.Equal(2 * Sector, buffer.CapacityByteCount);
        Assert.Throws<ArgumentException>(() => { _ = engine.ReadAsync(file, 0, buffer, Sector, 2 * Sector); });
    }

    [Fact]
    public async Task ReadPastEndOfFileFailsWithAnExceptionNamingTheRequest()
    {
        using IIoEngine engine = CreateEngine();
        string path = Directory.File("short.bin");
        using DirectFile file = DirectFile.Open(path, DirectFileAccess.ReadWrite, create: true);
        file.Preallocate(2 * Sector);
        using var buffer = new AlignedBuffer(4 * Sector);
        var error = await Assert.ThrowsAsync<DirectIoException>(async () => await engine.ReadAsync(file, 0, buffer, 0, 4 * Sector));
        Assert.Equal("read", error.Operation);
        Assert.Equal(file.Path, error.Path);
        Assert.Contains(file.Path, error.Message);
        Assert.Contains("end of file", error.Message);
        Assert.Equal(0, buffer.InFlightCount);
    }

    [Fact]
    public async Task ReadingAWriteOnlyFileSurfacesEbadf()
    {
        using IIoEngine engine = CreateEngine();
        using DirectFile file = DirectFile.Open(Directory.File("w.bin"), DirectFileAccess.Write, create: true);
        file.Preallocate(Sector);
        using var buffer = new AlignedBuffer(Sector);
        var error = await Assert.ThrowsAsync<DirectIoException>(async () => await engine.ReadAsync(file, 0, buffer, 0, Sector));
        Assert.Equal(9, error.Errno); // EBADF
        Assert.Contains("EBADF", error.Message);
        Assert.Contains("offset 0", error.Message);
        Assert.Contains("4096 bytes", error.Message);
    }

    [Fact]
    public async Task BufferCannotBeFreedWhileAnIoIsInFlight()
    {
        using IIoEngine engine = CreateEngine(queueDepth: 1, maxRequestByteCount: Sector);
        using DirectFile file = DirectFile.Open(Directory.File("f.bin"), DirectFileAccess.ReadWrite, create: true);
        using var buffer = new AlignedBuffer(4 << 20);
        ValueTask write = engine.WriteAsync(file, 0, buffer, 0, buffer.CapacityByteCount); // 1024 sequential 4 KiB chunks
        if (!write.IsCompleted)
            Assert.Throws<InvalidOperationException>(() => buffer.Dispose());
        await write;
        Assert.Equal(0, buffer.InFlightCount);
        buffer.Dispose();
        Assert.True(buffer.IsDisposed);
        Assert.Throws<ObjectDisposedException>(() => { _ = engine.ReadAsync(file, 0, buffer, 0, Sector); });
    }

    [Fact]
    public async Task CancelledTokenIsObservedBeforeSubmission()
    {
        using IIoEngine engine = CreateEngine();
        using DirectFile file = DirectFile.Open(Directory.File("x.bin"), DirectFileAccess.ReadWrite, create: true);
        using var buffer = new AlignedBuffer(Sector);
        using var cancellation = new CancellationTokenSource();
        cancellation.Cancel();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(async () => await engine.WriteAsync(file, 0, buffer, 0, Sector, cancellation.Token));
        Assert.Equal(0, engine.SubmissionCount);
    }

    [Fact]
    public async Task DisposeWaitsForRequestsInFlight()
    {
        IIoEngine engine = CreateEngine(queueDepth: 2, maxRequestByteCount: Sector);
        using DirectFile file = DirectFile.Open(Directory.File("d.bin"), DirectFileAccess.ReadWrite, create: true);
        using var buffer = new AlignedBuffer(1 << 20);
        ValueTask write = engine.WriteAsync(file, 0, buffer, 0, 1 << 20);
        engine.Dispose();
        Assert.True(write.IsCompleted);
        await write;
        Assert.Equal(1 << 20, file.Length);
        Assert.Throws<ObjectDisposedException>(() => { _ = engine.WriteAsync(file, 0, buffer, 0, Sector); });
    }

    [Fact]
    public async Task ShortTransfersAndEagainAreResubmittedUntilComplete()
    {
        var options = new FaultInjectionOptions { Seed = 11, ShortTransferProbability = 0.5, TransientErrorProbability = 0.2, DelayProbability = 0.3 };
        using var engine = new FaultInjectingIoEngine(CreateEngine(queueDepth: 4, maxRequestByteCount: 16 * Sector), options);
        using DirectFile file = DirectFile.Open(Directory.File("s.bin"), DirectFileAccess.ReadWrite, create: true);
        const int requestCount = 24, requestBytes = 40 * Sector;
        using var source = new AlignedBuffer((long)requestCount * requestBytes);
        using var target = new AlignedBuffer((long)requestCount * requestBytes);
        Fill(source.GetSpan(0, requestCount * requestBytes), 5);
        await Task.WhenAll(Enumerable.Range(0, requestCount).Select(index =>
            engine.WriteAsync(file, (long)index * requestBytes, source, (long)index * requestBytes, requestBytes).AsTask()));
        await Task.WhenAll(Enumerable.Range(0, requestCount).Select(index =>
            engine.ReadAsync(file, (long)index * requestBytes, target, (long)index * requestBytes, requestBytes).AsTask()));
        Assert.True(source.GetSpan(0, requestCount * requestBytes).SequenceEqual(target.GetSpan(0, requestCount * requestBytes)));
        Assert.True(engine.InjectedShortTransferCount > 10, $"{engine.InjectedShortTransferCount} short transfers injected");
        Assert.True(engine.InjectedTransientErrorCount > 10, $"{engine.InjectedTransientErrorCount} EAGAINs injected");
        Assert.True(engine.InjectedDelayCount > 0);
        Assert.Equal(2 * requestCount, engine.IssuedRequestCount);
        Assert.Equal(2 * requestCount, engine.ObservedCompletionCount);
        Assert.Equal(2 * requestCount, engine.CompletedRequestCount);
        Assert.Equal((long)requestCount * requestBytes, engine.BytesRead);
        Assert.True(engine.SubmissionCount > 2 * requestCount * 3 + engine.InjectedShortTransferCount);
        Assert.Equal(0, source.InFlightCount);
    }

    [Theory]
    [InlineData(5, "EIO")]
    [InlineData(28, "ENOSPC")]
    public async Task InjectedErrorsSurfaceAsTheRightExceptionsAndEveryRequestCompletesOnce(int errno, string errnoName)
    {
        var options = new FaultInjectionOptions { Seed = errno, ErrorProbability = 0.15, ErrorErrno = errno, ShortTransferProbability = 0.3, DelayProbability = 0.2 };
        using var engine = new FaultInjectingIoEngine(CreateEngine(queueDepth: 3, maxRequestByteCount: 4 * Sector), options);
        using DirectFile file = DirectFile.Open(Directory.File("e.bin"), DirectFileAccess.ReadWrite, create: true);
        const int requestCount = 40, requestBytes = 8 * Sector;
        file.Preallocate((long)requestCount * requestBytes);
        using var buffer = new AlignedBuffer((long)requestCount * requestBytes);
        var tasks = Enumerable.Range(0, requestCount).Select(index =>
            engine.WriteAsync(file, (long)index * requestBytes, buffer, (long)index * requestBytes, requestBytes).AsTask()).ToArray();
        int succeeded = 0, failed = 0;
        foreach (Task task in tasks)
        {
            try
            {
                await task;
                succeeded++;
            }
            catch (DirectIoException error)
            {
                failed++;
                Assert.Equal(errno, error.Errno);
                Assert.Equal(errno == 28, error is DiskFullException);
                Assert.Contains(errnoName, error.Message);
                Assert.Contains(file.Path, error.Message);
                Assert.Equal("write", error.Operation);
                Assert.True(error.FileOffset % Sector == 0 && error.ByteCount > 0);
            }
        }
        Assert.True(failed > 0 && succeeded > 0, $"{failed} failed, {succeeded} succeeded");
        Assert.Equal(requestCount, engine.ObservedCompletionCount);
        Assert.Equal(requestCount, engine.CompletedRequestCount);
        Assert.Equal(0, buffer.InFlightCount);
        Assert.Equal((long)succeeded * requestBytes, engine.BytesWritten);
    }

    [Fact]
    public async Task ManySmallRequestsArrivingWhileTheEngineIdlesAreNeverLost()
    {
        // Requests trickle in from several threads with pauses, so the engine keeps going idle and being woken:
        // a lost wake-up would hang here (bounded by WaitAsync instead of hanging the run).
        using IIoEngine engine = CreateEngine(queueDepth: 2, maxRequestByteCount: Sector);
        using DirectFile file = DirectFile.Open(Directory.File("t.bin"), DirectFileAccess.ReadWrite, create: true);
        const int threadCount = 8, requestsPerThread = 150;
        file.Preallocate((long)threadCount * Sector);
        Task all = Task.WhenAll(Enumerable.Range(0, threadCount).Select(thread => Task.Run(async () =>
        {
            var random = new Random(thread);
            using var buffer = new AlignedBuffer(Sector);
            for (int index = 0; index < requestsPerThread; index++)
            {
                buffer.Span.Fill((byte)index);
                await engine.WriteAsync(file, (long)thread * Sector, buffer, 0, Sector);
                await engine.ReadAsync(file, (long)thread * Sector, buffer, 0, Sector);
                Assert.Equal((byte)index, buffer.Span[Sector - 1]);
                if (random.Next(10) == 0)
                    Thread.Sleep(1);
            }
        })));
        await all.WaitAsync(TimeSpan.FromMinutes(2));
        Assert.Equal(2L * threadCount * requestsPerThread, engine.CompletedRequestCount);
    }
}

public sealed class ThreadIoEngineContractTests : IoEngineContractTests
{
    protected override IIoEngine CreateEngine(int queueDepth = 8, int maxRequestByteCount = 64 * 1024) =>
        IoEngineFactory.Create(IoEngineKind.Threads, queueDepth, maxRequestByteCount);
}

public sealed class IoUringEngineContractTests : IoEngineContractTests
{
    protected override IIoEngine CreateEngine(int queueDepth = 8, int maxRequestByteCount = 64 * 1024) =>
        IoEngineFactory.Create(IoEngineKind.IoUring, queueDepth, maxRequestByteCount);
}
