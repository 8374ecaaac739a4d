namespace FineTune.Trainer.Data;

/// <summary>
/// The exact place of a <see cref="DataLoader"/> in its endless stream of samples: the epoch, the index into that
/// epoch's permutation of the next sample, and how many of that sample's training positions were already consumed
/// (the packing carry-over: the rest of a sample that did not fit in the previous row). <see cref="SampleCount"/> and
/// <see cref="Seed"/> are checked on resume, so a position is never applied to different data or a different order.
/// A plain record of numbers: System.Text.Json writes and reads it as is (checkpoints store it as JSON).
/// </summary>
public sealed record DataPosition(int Epoch, int SampleIndex, int TokenOffset, int SampleCount, ulong Seed)
{
    /// <summary>Fractional epochs completed (for logs), ignoring the partly consumed sample.</summary>
    public double EpochProgress => Epoch + (SampleCount == 0 ? 0 : (double)SampleIndex / SampleCount);
}
