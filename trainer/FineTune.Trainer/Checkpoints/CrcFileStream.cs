namespace FineTune.Trainer.Checkpoints;

/// <summary>
/// A write-only file stream that computes the CRC-32C and byte count of what passes through it, and fsyncs the
/// file when disposed, then reports the finished entry to its <see cref="CheckpointWriter"/>. Sequential only.
/// </summary>
internal sealed class CrcFileStream : Stream
{
    private readonly FileStream _file;
    private readonly string _relativePath;
    private readonly Action<CheckpointFileEntry> _onClosed;
    private uint _crc;
    private long _byteCount;
    private bool _closed;

    public CrcFileStream(string fullPath, string relativePath, Action<CheckpointFileEntry> onClosed)
    {
        _file = new FileStream(fullPath, FileMode.CreateNew, FileAccess.Write, FileShare.None, bufferSize: 1 << 20);
        _relativePath = relativePath;
        _onClosed = onClosed;
    }

    public override bool CanRead => false;
    public override bool CanSeek => false;
    public override bool CanWrite => !_closed;
    public override long Length => _byteCount;
    public override long Position { get => _byteCount; set => throw new NotSupportedException(); }

    public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));

    public override void Write(ReadOnlySpan<byte> buffer)
    {
        _file.Write(buffer);
        _crc = IO.Crc32C.Append(_crc, buffer);
        _byteCount += buffer.Length;
    }

    public override void Flush() => _file.Flush();

    protected override void Dispose(bool disposing)
    {
        if (disposing && !_closed)
        {
            _closed = true;
            try
            {
                _file.Flush(flushToDisk: true);
            }
            finally
            {
                _file.Dispose();
            }
            _onClosed(new CheckpointFileEntry(_relativePath, _byteCount, _crc));
        }
        base.Dispose(disposing);
    }

    public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
    public override void SetLength(long value) => throw new NotSupportedException();
}
