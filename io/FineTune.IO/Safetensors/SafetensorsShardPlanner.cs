namespace FineTune.IO.Safetensors;

/// <summary>
/// Splits tensors into shards the way huggingface_hub's split_state_dict_into_shards_factory does: tensors in the
/// given order fill the current shard until the next one would exceed the limit; a tensor larger than the limit
/// gets a shard of its own. Returns one list of names per shard; name the files with
/// <see cref="SafetensorsIndex.ShardFileName"/>.
/// </summary>
public static class SafetensorsShardPlanner
{
    public static IReadOnlyList<IReadOnlyList<string>> Plan(IEnumerable<(string Name, long ByteCount)> tensors, long maxShardByteCount = SafetensorsIndex.DefaultMaxShardByteCount)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(maxShardByteCount);
        var shards = new List<IReadOnlyList<string>>();
        var current = new List<string>();
        long currentByteCount = 0;
        foreach ((string name, long byteCount) in tensors)
        {
            if (byteCount > maxShardByteCount)
            {
                shards.Add(new[] { name });
                continue;
            }
            if (currentByteCount + byteCount > maxShardByteCount)
            {
                shards.Add(current);
                current = new List<string>();
                currentByteCount = 0;
            }
            current.Add(name);
            currentByteCount += byteCount;
        }
        if (current.Count > 0 || shards.Count == 0)
            shards.Add(current);
        return shards;
    }
}
