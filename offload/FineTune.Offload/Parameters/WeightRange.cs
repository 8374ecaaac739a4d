namespace FineTune.Offload.Parameters;

/// <summary>
/// Elements [First, First + Count) of a <see cref="WeightFile"/> that are used together (a model stage's weights),
/// held by a slot of class <see cref="SlotClass"/> (an index into the classes given to <see cref="WeightSlots"/>).
/// </summary>
public readonly record struct WeightRange(long First, long Count, int SlotClass);
