using System.Collections.Concurrent;
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
/// Threading: one dedicated ring thread owns the ring. It creates it (so SINGLE_ISSUER holds), and is the only
/// thread that fills SQEs, enters the kernel and reaps CQEs. Callers put chunks on a lock-free queue and, when the
/// ring thread is asleep in io_uring_enter with fewer than 3/4 of the slots in the kernel, wake it by writing to an
/// eventfd on which the ring keeps one read outstanding (with more in flight, the next CQE wakes it anyway). Each loop submits everything pending and waits for completions in one io_uring_enter, as fio does.
/// Why not submit from caller threads: read/write completions run as task_work in the submitting thread, so with
/// many submitters every completion costs an extra wake-up of whichever thread submitted it; with one ring thread
/// (and DEFER_TASKRUN where the kernel has it, 6.1+) completions are processed exactly where they are waited for.
///
/// Invariants: at most <see cref="IIoEngine.QueueDepth"/> chunks are in the kernel (one per slot; user_data is the
/// slot index), plus the eventfd read; the SQ holds them all and the CQ (twice the SQ) cannot overflow.
/// Memory ordering: SQE contents are written before the SQ tail is published with a release store (Volatile.Write);
/// the CQ tail is read with an acquire load before reading CQEs, and the CQ head is published with a release store
/// after they were consumed (reference: io_uring(7) and the liburing barriers). The sleep flag uses the Dekker
/// pattern: the ring thread sets it then re-checks the queue; callers enqueue then check it (both full fences).
/// </summary>
internal sealed unsafe class IoUringEngine : IoEngineBase
{
    private const ulong WakeUserData = ulong.MaxValue;

    private readonly ConcurrentQueue<IoChunk> _incoming = new();
    private readonly Queue<IoChunk> _pending = new();   // ring thread only
    private readonly Stack<int> _freeSlots = new();     // ring thread only
    private readonly IoChunk?[] _slots;                 // ring thread only
    private readonly Thread _ringThread;
    private readonly ManualResetEventSlim _ready = new();
    private Exception? _setupError;

    private int _ringFd = -1;
    private int _eventFd = -1;
    private ulong* _eventBuffer;      // 8 bytes the eventfd read lands in
    private IntPtr _sqRingMap;
    private nuint _sqRingByteCount;
    private IntPtr _cqRingMap;        // equals _sqRingMap with IORING_FEAT_SINGLE_MMAP
    private nuint _cqRingByteCount;
    private IntPtr _sqesMap;
    private nuint _sqesByteCount;
    private uint* _sqHead;
    private uint* _sqTail;
    private uint* _sqArray;
    private uint _sqMask;
    private uint _sqEntryCount;
    private IoUringSqe* _sqes;
    private uint* _cqHead;
    private uint* _cqTail;
    private uint _cqMask;
    private IoUringCqe* _cqes;

    private int _sleeping;            // 1 while the ring thread is (about to be) blocked in io_uring_enter
    private int _inKernelCount;       // occupied slots, published by the ring thread before it sleeps
    private volatile bool _stopping;

    public IoUringEngine(int queueDepth, int maxRequestByteCount)
        : base(queueDepth, maxRequestByteCount)
    {
        if (!OperatingSystem.IsLinux() || Environment.OSVersion.Version < new Version(5, 6))
            throw new IoUringUnavailableException($"io_uring READ/WRITE need Linux 5.6 or newer, this is {Environment.OSVersion}");
        _slots = new IoChunk?[queueDepth];
        for (int slot = queueDepth - 1; slot >= 0; slot--)
            _freeSlots.Push(slot);
        _ringThread = new Thread(RingThread) { IsBackground = true, Name = "FineTune.IO io_uring" };
        _ringThread.Start();
        _ready.Wait();
        if (_setupError is not null)
        {
            _ringThread.Join();
            throw _setupError;
        }
    }

    public override string Name => "io_uring";

    /// <summary>Setup flags in effect (DEFER_TASKRUN etc. when the kernel accepted them); for diagnostics.</summary>
    internal uint SetupFlags { get; private set; }

    protected override void SubmitChunks(IReadOnlyList<IoChunk> chunks)
    {
        foreach (IoChunk chunk in chunks)
            _incoming.Enqueue(chunk);
        Interlocked.MemoryBarrier(); // enqueue before reading the sleep flag (Dekker, see class remarks)
        // No wake-up while at least 3/4 of the slots are in the kernel: the ring thread is then blocked in
        // io_uring_enter waiting for one of those completions, and drains _incoming as soon as it returns. Waking it
        // per request (eventfd write, eventfd CQE, re-arm, extra io_uring_enter) kept the device no busier: in
        // `bench io` (2,304 1 MiB requests) it cut eventfd writes from 2,138 to 120 and io_uring_enter from 4,058 to
        // 1,520 (strace -c -f). Safe: _inKernelCount is written before _sleeping is set and changed only after it is
        // cleared, so a value >= 1 read while the thread sleeps means a CQE will wake it; if the thread is awake it
        // re-checks _incoming after setting _sleeping, and our enqueue came before our read of _sleeping.
        if (Volatile.Read(ref _sleeping) == 1 && Volatile.Read(ref _inKernelCount) * 4 >= QueueDepth * 3)
            return;
        WakeIfSleeping();
    }

    private void WakeIfSleeping()
    {
        if (Volatile.Read(ref _sleeping) == 0 || Interlocked.Exchange(ref _sleeping, 0) == 0)
            return;
        ulong one = 1;
        while (LibC.Write(_eventFd, (byte*)&one, sizeof(ulong)) < 0 && Marshal.GetLastPInvokeError() == LibC.EINTR)
        {
        }
    }

    private void RingThread()
    {
        try
        {
            Setup();
        }
        catch (Exception exception)
        {
            _setupError = exception;
            Release();
            _ready.Set();
            return;
        }
        _ready.Set();
        Run();
    }

    private void Setup()
    {
        _eventFd = LibC.EventFd(0, LibC.EFD_CLOEXEC);
        if (_eventFd < 0)
            throw new IoUringUnavailableException($"eventfd failed with {LibC.Describe(Marshal.GetLastPInvokeError())}");
        _eventBuffer = (ulong*)NativeMemory.AlignedAlloc(sizeof(ulong), sizeof(ulong));

        // Newest flags first; older kernels reject unknown flags with EINVAL, so retry with fewer.
        IoUringParams parameters = default;
        long fd = -1;
        int errno = 0;
        foreach (uint flags in new[] { IoUringConstants.SetupSingleIssuer | IoUringConstants.SetupDeferTaskRun, IoUringConstants.SetupCoopTaskRun, 0u })
        {
            parameters = default;
            parameters.Flags = flags;
            fd = LibC.Syscall(LibC.SYS_io_uring_setup, QueueDepth + 2, (long)&parameters, 0, 0, 0, 0);
            errno = fd < 0 ? Marshal.GetLastPInvokeError() : 0;
            if (fd >= 0 || errno != LibC.EINVAL)
                break;
        }
        if (fd < 0)
            throw new IoUringUnavailableException($"io_uring_setup failed with {LibC.Describe(errno)}");
        _ringFd = (int)fd;
        SetupFlags = parameters.Flags;

        bool singleMap = (parameters.Features & IoUringConstants.FeatureSingleMmap) != 0;
        _sqRingByteCount = parameters.SqOffsets.Array + parameters.SqEntries * sizeof(uint);
        _cqRingByteCount = parameters.CqOffsets.Cqes + parameters.CqEntries * (uint)sizeof(IoUringCqe);
        if (singleMap)
            _sqRingByteCount = _cqRingByteCount = Math.Max(_sqRingByteCount, _cqRingByteCount);
        _sqRingMap = Map(_sqRingByteCount, IoUringConstants.OffsetSqRing);
        _cqRingMap = singleMap ? _sqRingMap : Map(_cqRingByteCount, IoUringConstants.OffsetCqRing);
        _sqesByteCount = parameters.SqEntries * (uint)sizeof(IoUringSqe);
        _sqesMap = Map(_sqesByteCount, IoUringConstants.OffsetSqes);

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
    }

    /// <summary>The ring thread's loop: queue, fill SQEs, submit-and-wait in one syscall, reap, complete.</summary>
    private void Run()
    {
        var finished = new List<(IoChunk Chunk, Exception? Error)>();
        bool wakeArmed = false;
        int prepared = 0;
        while (true)
        {
            while (_incoming.TryDequeue(out IoChunk? chunk))
                _pending.Enqueue(chunk);
            if (!wakeArmed)
            {
                // Offset -1: "current position", the form every file type accepts (eventfds are not seekable).
                PrepareSqe(IoUringConstants.OpRead, _eventFd, ulong.MaxValue, (ulong)_eventBuffer, sizeof(ulong), WakeUserData);
                prepared++;
                wakeArmed = true;
            }
            while (_pending.Count > 0 && _freeSlots.Count > 0)
            {
                IoChunk chunk = _pending.Dequeue();
                int slot = _freeSlots.Pop();
                _slots[slot] = chunk;
                IoOperation operation = chunk.Request.Operation;
                PrepareSqe(operation == IoOperation.Read ? IoUringConstants.OpRead : IoUringConstants.OpWrite, chunk.Request.Descriptor,
                    (ulong)chunk.NextFileOffset, (ulong)chunk.NextAddress, (uint)NextSubmissionLength(chunk), (ulong)slot);
                prepared++;
            }

            // Sleep protocol: announce, then re-check the queue so no caller's wake-up can be missed.
            Volatile.Write(ref _inKernelCount, QueueDepth - _freeSlots.Count);
            Interlocked.Exchange(ref _sleeping, 1);
            bool work = !_incoming.IsEmpty || (_stopping && _freeSlots.Count == QueueDepth && _pending.Count == 0);
            uint minComplete = work ? 0u : 1u;
            Enter(prepared, minComplete);
            Interlocked.Exchange(ref _sleeping, 0);
            prepared = (int)(Volatile.Read(ref *_sqTail) - Volatile.Read(ref *_sqHead)); // SQEs the kernel has not consumed yet

            uint head = *_cqHead;
            uint tail = Volatile.Read(ref *_cqTail);
            for (; head != tail; head++)
            {
                IoUringCqe cqe = _cqes[head & _cqMask];
                if (cqe.UserData == WakeUserData)
                {
                    wakeArmed = false; // the eventfd read completed (or failed); re-armed on the next loop
                    continue;
                }
                int slot = (int)cqe.UserData;
                IoChunk chunk = _slots[slot] ?? throw new InvalidOperationException($"io_uring completion for empty slot {slot} (engine bug).");
                _slots[slot] = null;
                _freeSlots.Push(slot);
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
                    _pending.Enqueue(chunk);
                else
                    finished.Add((chunk, error));
            }
            Volatile.Write(ref *_cqHead, head);

            foreach ((IoChunk chunk, Exception? error) in finished)
                FinishChunk(chunk, error);
            finished.Clear();

            // Base Dispose sets _stopping only after every request completed; the eventfd read may stay armed.
            if (_stopping && _freeSlots.Count == QueueDepth && _pending.Count == 0 && _incoming.IsEmpty)
                return;
        }
    }

    private void PrepareSqe(byte opcode, int fd, ulong fileOffset, ulong address, uint length, ulong userData)
    {
        uint tail = *_sqTail; // only the ring thread writes the tail
        if (tail - Volatile.Read(ref *_sqHead) >= _sqEntryCount)
            throw new InvalidOperationException("io_uring submission queue overflow (engine bug).");
        uint index = tail & _sqMask;
        IoUringSqe* sqe = _sqes + index;
        *sqe = default;
        sqe->Opcode = opcode;
        sqe->Fd = fd;
        sqe->FileOffset = fileOffset;
        sqe->Address = address;
        sqe->Length = length;
        sqe->UserData = userData;
        _sqArray[index] = index;
        Volatile.Write(ref *_sqTail, tail + 1);
    }

    /// <summary>
    /// Submits up to <paramref name="toSubmit"/> SQEs and waits for <paramref name="minComplete"/> CQEs. Transient
    /// failures (EINTR, EAGAIN, EBUSY) just return: the caller recomputes what is unsubmitted from the ring and loops.
    /// </summary>
    private void Enter(int toSubmit, uint minComplete)
    {
        long result = LibC.Syscall(LibC.SYS_io_uring_enter, _ringFd, toSubmit, minComplete, IoUringConstants.EnterGetEvents, 0, 0);
        if (result >= 0)
            return;
        int errno = Marshal.GetLastPInvokeError();
        if (errno is LibC.EINTR)
            return;
        if (errno is LibC.EAGAIN or LibC.EBUSY)
        {
            Thread.Yield();
            return;
        }
        // Ring-level failure (per-request errors arrive as CQEs): the ring is unusable.
        Environment.FailFast($"io_uring_enter failed with {LibC.Describe(errno)}; the io_uring instance is broken.");
    }

    private IntPtr Map(nuint byteCount, long offset)
    {
        IntPtr address = LibC.MMap(IntPtr.Zero, byteCount, LibC.PROT_READ | LibC.PROT_WRITE, LibC.MAP_SHARED | LibC.MAP_POPULATE, _ringFd, offset);
        if (address == LibC.MapFailed)
            throw new IoUringUnavailableException($"mmap of the io_uring ring failed with {LibC.Describe(Marshal.GetLastPInvokeError())}");
        return address;
    }

    private void Release()
    {
        if (_sqesMap != IntPtr.Zero)
            LibC.MUnmap(_sqesMap, _sqesByteCount);
        if (_cqRingMap != IntPtr.Zero && _cqRingMap != _sqRingMap)
            LibC.MUnmap(_cqRingMap, _cqRingByteCount);
        if (_sqRingMap != IntPtr.Zero)
            LibC.MUnmap(_sqRingMap, _sqRingByteCount);
        _sqesMap = _cqRingMap = _sqRingMap = IntPtr.Zero;
        if (_ringFd >= 0)
            LibC.Close(_ringFd);
        if (_eventFd >= 0)
            LibC.Close(_eventFd);
        _ringFd = _eventFd = -1;
        if (_eventBuffer != null)
            NativeMemory.AlignedFree(_eventBuffer);
        _eventBuffer = null;
    }

    /// <summary>Every request has completed (base Dispose waited): stop the ring thread, then free the ring.</summary>
    protected override void ReleaseResources()
    {
        _stopping = true;
        Interlocked.Exchange(ref _sleeping, 1); // force the eventfd write even if the ring thread is between checks
        WakeIfSleeping();
        _ringThread.Join();
        Release(); // closing the ring cancels the still-armed eventfd read
        _ready.Dispose();
    }
}
