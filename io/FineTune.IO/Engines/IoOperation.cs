namespace FineTune.IO.Engines;

/// <summary>The direction of one request.</summary>
internal enum IoOperation
{
    Read,
    Write,
}
