using System.Runtime.InteropServices;
using FineTune.Offload.Memory;
using Xunit;

namespace FineTune.Offload.Tests.Memory;

/// <summary>
/// ReturnFreedHeapMemory gives freed heap pages back: 256 MiB of 64 KiB malloc blocks (below glibc's mmap threshold,
/// so on the heap), all freed but the last, which pins the heap's top so free alone cannot shrink it.
/// </summary>
public sealed class ProcessMemoryTests
{
    [Fact]
    public unsafe void FreedHeapPagesLeaveTheResidentSetAfterATrim()
    {
        const int blockBytes = 64 << 10, blockCount = 4096;
        var blocks = new nint[blockCount];
        for (int i = 0; i < blockCount; i++)
        {
            blocks[i] = (nint)NativeMemory.Alloc(blockBytes);
            new Span<byte>((void*)blocks[i], blockBytes).Fill(1); // resident
        }
        long filled = ProcessMemory.ResidentByteCount();
        for (int i = 0; i < blockCount - 1; i++)
            NativeMemory.Free((void*)blocks[i]);
        try
        {
            if (!ProcessMemory.ReturnFreedHeapMemory())
                return; // not glibc: nothing to trim, nothing to check
            long trimmed = ProcessMemory.ResidentByteCount();
            Assert.True(filled - trimmed > 200L << 20, $"resident {filled >> 20} MiB before the trim, {trimmed >> 20} MiB after");
        }
        finally
        {
            NativeMemory.Free((void*)blocks[^1]);
        }
    }
}
