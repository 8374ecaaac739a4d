using System.Runtime.InteropServices;

namespace FineTune.IO.Engines;

// The io_uring ABI structures, laid out exactly as include/uapi/linux/io_uring.h (Linux 5.6+; x86_64).
// reference: https://github.com/torvalds/linux/blob/master/include/uapi/linux/io_uring.h

/// <summary>io_uring constants used by <see cref="IoUringEngine"/>.</summary>
internal static class IoUringConstants
{
    public const byte OpNop = 0;        // IORING_OP_NOP
    public const byte OpRead = 22;      // IORING_OP_READ (5.6)
    public const byte OpWrite = 23;     // IORING_OP_WRITE (5.6)
    public const uint EnterGetEvents = 1;       // IORING_ENTER_GETEVENTS
    public const uint SetupCoopTaskRun = 1u << 8;       // IORING_SETUP_COOP_TASKRUN (5.19)
    public const uint SetupSingleIssuer = 1u << 12;     // IORING_SETUP_SINGLE_ISSUER (6.0)
    public const uint SetupDeferTaskRun = 1u << 13;     // IORING_SETUP_DEFER_TASKRUN (6.1)
    public const uint FeatureSingleMmap = 1;    // IORING_FEAT_SINGLE_MMAP
    public const long OffsetSqRing = 0;             // IORING_OFF_SQ_RING
    public const long OffsetCqRing = 0x8000000;     // IORING_OFF_CQ_RING
    public const long OffsetSqes = 0x10000000;      // IORING_OFF_SQES
}

/// <summary>struct io_sqring_offsets (40 bytes).</summary>
[StructLayout(LayoutKind.Sequential)]
internal struct IoSqringOffsets
{
    public uint Head;
    public uint Tail;
    public uint RingMask;
    public uint RingEntries;
    public uint Flags;
    public uint Dropped;
    public uint Array;
    public uint Reserved1;
    public ulong UserAddress;
}

/// <summary>struct io_cqring_offsets (40 bytes).</summary>
[StructLayout(LayoutKind.Sequential)]
internal struct IoCqringOffsets
{
    public uint Head;
    public uint Tail;
    public uint RingMask;
    public uint RingEntries;
    public uint Overflow;
    public uint Cqes;
    public uint Flags;
    public uint Reserved1;
    public ulong UserAddress;
}

/// <summary>struct io_uring_params (120 bytes), filled in by io_uring_setup.</summary>
[StructLayout(LayoutKind.Sequential)]
internal unsafe struct IoUringParams
{
    public uint SqEntries;
    public uint CqEntries;
    public uint Flags;
    public uint SqThreadCpu;
    public uint SqThreadIdle;
    public uint Features;
    public uint WqFd;
    public fixed uint Reserved[3];
    public IoSqringOffsets SqOffsets;
    public IoCqringOffsets CqOffsets;
}

/// <summary>struct io_uring_sqe (64 bytes), the fields a read/write/nop uses.</summary>
[StructLayout(LayoutKind.Explicit, Size = 64)]
internal struct IoUringSqe
{
    [FieldOffset(0)] public byte Opcode;
    [FieldOffset(1)] public byte Flags;
    [FieldOffset(2)] public ushort IoPriority;
    [FieldOffset(4)] public int Fd;
    [FieldOffset(8)] public ulong FileOffset;
    [FieldOffset(16)] public ulong Address;
    [FieldOffset(24)] public uint Length;
    [FieldOffset(28)] public uint RwFlags;
    [FieldOffset(32)] public ulong UserData;
    [FieldOffset(40)] public ushort BufferIndex;
    [FieldOffset(42)] public ushort Personality;
    [FieldOffset(44)] public int SpliceFdIn;
    [FieldOffset(48)] public ulong Address3;
    [FieldOffset(56)] public ulong Padding;
}

/// <summary>struct io_uring_cqe (16 bytes).</summary>
[StructLayout(LayoutKind.Sequential)]
internal struct IoUringCqe
{
    public ulong UserData;
    public int Result;
    public uint Flags;
}
