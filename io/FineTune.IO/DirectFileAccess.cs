namespace FineTune.IO;

/// <summary>How a <see cref="DirectFile"/> is opened.</summary>
public enum DirectFileAccess
{
    Read,
    Write,
    ReadWrite,
}
