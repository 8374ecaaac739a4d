using System.Runtime.InteropServices;
using FineTune.IO.Native;

namespace FineTune.IO.Engines;

/// <summary>
/// Asynchronous O_DIRECT I/O through io_uring, driven by raw syscalls from C#.
///
/// Why no native helper (liburing): the ABI we need is small and stable (io_uring_setup, io_uring_enter, three mmaps,
/// 64-byte SQEs, 16-byte CQEs), calling syscall(2) through libc needs no build step for io/, and keeping all ring
/// logic in one C# file lets the tests and the fault-injection seam reach it. What liburing would add (SQPOLL,
/// registered buffers, multishot) we do not use. Linux x86_64 only (syscall numbers 425/426).
///
/// Threading: any thread may submit; submission (filling SQEs, advancing the SQ tail, io_uring_enter) happens under
/// <see cref="_submitLock"/>. One dedicated completion thread waits in io_uring_enter(GETEVENTS), reaps CQEs,
/// resubmits short transfers and EAGAIN, refills the ring from the pending queue in one batch, and completes
/// requests. The kernel allows one submitter and one reaper concurrently because the SQ and CQ are independent.
///
/// Invariants: at most <see cref="IIoEngine.QueueDepth"/> chunks are in the kernel (one per slot; user_data is the
/// slot index), the SQ has room for them plus the wake-up NOP, and the CQ (twice the SQ) can never overflow.
/// Memory ordering: SQE contents are written before the SQ tail is published with a release store (Volatile.Write);
/// the CQ tail is read with an acquire load before reading CQEs, and the CQ head is published with a release store
/// after they were consumed. (reference: io_uring(7), "Submission queue polling" and the liburing barriers.)
/// </summary>
internal sealed unsafe class IoUringEngine : IoEngineBase
{
    private const ulong WakeUserData = ulong.MaxValue;

    private readonly int _ringFd;
    private readonly IntPtr _sqRingMap;
    private readonly nuint _sqRingByteCount;
    private readonly IntPtr _cqRingMap; // equals _sqRingMap with IORING_FEAT_SINGLE_MMAP
    private readonly nuint _cqRingByteCount;
    private readonly IntPtr _sqesMap;
    private readonly nuint _sqesByteCount;

    private readonly uint* _sqHead;
    private readonly uint* _sqTail;
    private readonly uint* _sqArray;
    private readonly uint _sqMask;
    private readonly uint _sqEntryCount;
    private readonly IoUringSqe* _sqes;
    private readonly uint* _cqHead;
    private readonly uint* _cqTail;
    private readonly uint _cqMask;
    private readonly IoUringCqe* _cqes;

    private readonly object _submitLock = new();
    private readonly Queue<IoChunk> _pending = new();   // guarded by _submitLock
    private readonly Stack<int> _freeSlots = new();     // guarded by _submitLock
    private readonly IoChunk?[] _slots;                 // slot i written under the lock, cleared by the reaper
    private readonly Thread _completionThread;

    public IoUringEngine(int queueDepth, int maxRequestByteCount)
        : base(queueDepth, maxRequestByteCount)
    {
        if (!OperatingSystem.IsLinux() || Environment.OSVersion.Version < new Version(5, 6))
            throw new IoUringUnavailableException($"io_uring READ/WRITE need Linux 5.6 or newer, this is {Environment.OSVersion}");

        IoUringParams parameters = default;
        long fd = LibC.Syscall(LibC.SYS_io_uring_setup, queueDepth + 1, (long)&parameters, 0, 0, 0, 0);
        if (fd < 0)
            throw new IoUringUnavailableException($"io_uring_setup failed with {LibC.Describe(Marshal.GetLastPInvokeError())}");
        _ringFd = (int)fd;

        try
        {
            bool singleMap = (parameters.Features & IoUringConstants.FeatureSingleMmap) != 0;
            _sqRingByteCount = parameters.SqOffsets.Array + parameters.SqEntries * sizeof(uint);
            _cqRingByteCount = parameters.CqOffsets.Cqes + parameters.CqEntries * (uint)sizeof(IoUringCqe);
            if (singleMap)
                _sqRingByteCount = _cqRingByteCount = Math.Max(_sqRingByteCount, _cqRingByteCount);
            _sqRingMap = Map(_sqRingByteCount, IoUringConstants.OffsetSqRing);
            _cqRingMap = singleMap ? _sqRingMap : Map(_cqRingByteCount, IoUringConstants.OffsetCqRing);
            _sqesByteCount = parameters.SqEntries * (uint)sizeof(IoUringSqe);
            _sqesMap = Map(_sqesByteCount, IoUringConstants.OffsetSqes);
        }
        catch
        {
            Unmap();
            LibC.Close(_ringFd);
            throw;
        }

        byte* sq = (byte*)_sqRingMap;
        byte* cq = (byte*)_cqRingMap;
        _sqHead = (uint*)(sq + parameters.SqOffsets.Head);
        _sqTail = (uint*)(sq + parameters.SqOffsets.Tail);
        _sqArray = (uint*)(sq + parameters.SqOffsets.Array);
        _sqMask = *(uint*)(sq + parameters.SqOffsets.RingMask);
        _sqEntryCount = *(uint*)(sq + parameters.SqOffsets.RingEntries);
        _sqes = (IoUringSqe*)_sqesMap;
        _cqHead = (uint*)(cq + parameters.CqOffsets.Head);
        _cqTail = (uint*)(cq + parameters.CqOffsets.Tail);
        _cqMask = *(uint*)(cq + parameters.CqOffsets.RingMask);
        _cqes = (IoUringCqe*)(cq + parameters.CqOffsets.Cqes);

        _slots = new IoChunk?[queueDepth];
        for (int slot = queueDepth - 1; slot >= 0; slot--)
            _freeSlots.Push(slot);
        _completionThread = new Thread(CompletionLoop) { IsBackground = true, Name = "FineTune.IO io_uring completions" };
        _completionThread.Start();
    }

    public override string Name => "io_uring";

    protected override void SubmitChunks(IReadOnlyList<IoChunk> chunks)
    {
        lock (_submitLock)
        {
            foreach (IoChunk chunk in chunks)
                _pending.Enqueue(chunk);
            SubmitPendingLocked();
        }
    }

    /// <summary>Moves pending chunks into free slots and SQEs, publishes the tail once, and enters the kernel once.</summary>
    private void SubmitPendingLocked()
    {
        uint tail = *_sqTail; // only we write the tail
        uint head = Volatile.Read(ref *_sqHead);
        int prepared = 0;
        while (_pending.Count > 0 && _freeSlots.Count > 0 && tail - head < _sqEntryCount)
        {
            IoChunk chunk = _pending.Dequeue();
            int slot = _freeSlots.Pop();
            _slots[slot] = chunk;
            uint index = tail & _sqMask;
            IoUringSqe* sqe = _sqes + index;
            *sqe = default;
            sqe->Opcode = chunk.Request.Operation == IoOperation.Read ? IoUringConstants.OpRead : IoUringConstants.OpWrite;
            sqe->Fd = chunk.Request.Descriptor;
            sqe->FileOffset = (ulong)chunk.NextFileOffset;
            sqe->Address = (ulong)chunk.NextAddress;
            sqe->Length = (uint)NextSubmissionLength(chunk);
            sqe->UserData = (ulong)slot;
            _sqArray[index] = index;
            tail++;
            prepared++;
        }
        if (prepared == 0)
            return;
        Volatile.Write(ref *_sqTail, tail);
        EnterSubmit(prepared);
    }

    private void EnterSubmit(int count)
    {
        while (count > 0)
        {
            long submitted = LibC.Syscall(LibC.SYS_io_uring_enter, _ringFd, count, 0, 0, 0, 0);
            if (submitted > 0)
            {
                count -= (int)submitted;
                continue;
            }
            int errno = submitted < 0 ? Marshal.GetLastPInvokeError() : LibC.EAGAIN;
            if (errno is LibC.EINTR or LibC.EAGAIN or LibC.EBUSY)
            {
                Thread.Yield();
                continue;
            }
            // Ring-level failure (not a per-request error, which arrives as a CQE): the ring is unusable.
            Environment.FailFast($"io_uring_enter(submit) failed with {LibC.Describe(errno)}; the io_uring instance is broken.");
        }
    }

    private void CompletionLoop()
    {
        var finished = new List<(IoChunk Chunk, Exception? Error)>();
        var freedSlots = new List<int>();
        var resubmit = new List<IoChunk>();
        while (true)
        {
            long waited = LibC.Syscall(LibC.SYS_io_uring_enter, _ringFd, 0, 1, IoUringConstants.EnterGetEvents, 0, 0);
            if (waited < 0)
            {
                int errno = Marshal.GetLastPInvokeError();
                if (errno is LibC.EINTR or LibC.EAGAIN or LibC.EBUSY)
                    continue;
                Environment.FailFast($"io_uring_enter(wait) failed with {LibC.Describe(errno)}; the io_uring instance is broken.");
            }

            bool wake = false;
            uint head = *_cqHead;
            uint tail = Volatile.Read(ref *_cqTail);
            for (; head != tail; head++)
            {
                IoUringCqe cqe = _cqes[head & _cqMask];
                if (cqe.UserData == WakeUserData)
                {
                    wake = true;
                    continue;
                }
                int slot = (int)cqe.UserData;
                IoChunk chunk = _slots[slot] ?? throw new InvalidOperationException($"io_uring completion for empty slot {slot} (engine bug).");
                _slots[slot] = null;
                freedSlots.Add(slot);
                Exception? error = null;
                bool again;
                try
                {
                    again = ProcessResult(chunk, cqe.Result, out error);
                }
                catch (Exception exception)
                {
                    again = false;
                    error = exception;
                }
                if (again)
                    resubmit.Add(chunk);
                else
                    finished.Add((chunk, error));
            }
            Volatile.Write(ref *_cqHead, head);

            if (freedSlots.Count > 0)
            {
                lock (_submitLock)
                {
                    foreach (int slot in freedSlots)
                        _freeSlots.Push(slot);
                    foreach (IoChunk chunk in resubmit)
                        _pending.Enqueue(chunk);
                    SubmitPendingLocked();
                }
                freedSlots.Clear();
                resubmit.Clear();
            }
            foreach ((IoChunk chunk, Exception? error) in finished)
                FinishChunk(chunk, error);
            finished.Clear();
            if (wake)
                return;
        }
    }

    private IntPtr Map(nuint byteCount, long offset)
    {
        IntPtr address = LibC.MMap(IntPtr.Zero, byteCount, LibC.PROT_READ | LibC.PROT_WRITE, LibC.MAP_SHARED | LibC.MAP_POPULATE, _ringFd, offset);
        if (address == LibC.MapFailed)
            throw new IoUringUnavailableException($"mmap of the io_uring ring failed with {LibC.Describe(Marshal.GetLastPInvokeError())}");
        return address;
    }

    private void Unmap()
    {
        if (_sqesMap != IntPtr.Zero && _sqesMap != LibC.MapFailed)
            LibC.MUnmap(_sqesMap, _sqesByteCount);
        if (_cqRingMap != IntPtr.Zero && _cqRingMap != _sqRingMap && _cqRingMap != LibC.MapFailed)
            LibC.MUnmap(_cqRingMap, _cqRingByteCount);
        if (_sqRingMap != IntPtr.Zero && _sqRingMap != LibC.MapFailed)
            LibC.MUnmap(_sqRingMap, _sqRingByteCount);
    }

    /// <summary>Every request has completed (base Dispose waited): wake the reaper with a NOP, join it, free the ring.</summary>
    protected override void ReleaseResources()
    {
        lock (_submitLock)
        {
            uint tail = *_sqTail;
            uint index = tail & _sqMask;
            IoUringSqe* sqe = _sqes + index;
            *sqe = default;
            sqe->Opcode = IoUringConstants.OpNop;
            sqe->UserData = WakeUserData;
            _sqArray[index] = index;
            Volatile.Write(ref *_sqTail, tail + 1);
            EnterSubmit(1);
        }
        _completionThread.Join();
        Unmap();
        LibC.Close(_ringFd);
    }
}
