namespace FineTune.Torch;

/// <summary>
/// Deterministic disposal of tensors: `using var scope = TensorScope.Enter();` makes a scope current on this
/// thread; every <see cref="Tensor"/> created on this thread until the scope ends is registered and disposed
/// with it, except those moved out with <see cref="Tensor.MoveToOuterScope"/> or <see cref="Detach"/>.
/// Scopes nest as a thread-local stack and must be disposed in reverse order of entry.
/// </summary>
public sealed class TensorScope : IDisposable
{
    [ThreadStatic]
    private static TensorScope? t_current;

    private readonly List<Tensor> _tensors = new();
    private readonly int _threadId;
    private bool _disposed;

    private TensorScope(TensorScope? parent)
    {
        Parent = parent;
        _threadId = Environment.CurrentManagedThreadId;
    }

    /// <summary>The innermost scope of this thread, or null.</summary>
    public static TensorScope? Current => t_current;

    internal TensorScope? Parent { get; }

    /// <summary>Tensors this scope will dispose (for diagnostics and tests).</summary>
    public int OwnedCount => _tensors.Count(t => t.Scope == this && !t.IsDisposed);

    public static TensorScope Enter()
    {
        var scope = new TensorScope(t_current);
        t_current = scope;
        return scope;
    }

    /// <summary>Removes the tensor from this scope: the caller now owns it.</summary>
    public Tensor Detach(Tensor tensor)
    {
        ArgumentNullException.ThrowIfNull(tensor);
        if (tensor.Scope == this)
        {
            tensor.Scope = null;
        }
        return tensor;
    }

    /// <summary>Makes this scope own a tensor (e.g. one created outside any scope).</summary>
    public Tensor Include(Tensor tensor)
    {
        ArgumentNullException.ThrowIfNull(tensor);
        if (tensor.Scope != this)
        {
            tensor.Scope = null;
            Register(tensor);
        }
        return tensor;
    }

    internal void Register(Tensor tensor)
    {
        tensor.Scope = this;
        _tensors.Add(tensor);
    }

    public void Dispose()
    {
        if (_disposed)
        {
            return;
        }
        if (Environment.CurrentManagedThreadId != _threadId || t_current != this)
        {
            throw new InvalidOperationException(
                "TensorScope disposed out of order or on another thread; dispose nested scopes innermost first, on the thread that entered them.");
        }
        _disposed = true;
        t_current = Parent;
        foreach (var tensor in _tensors)
        {
            // A tensor moved to another owner (Detach, MoveToOuterScope) still sits in the list but is not ours.
            if (tensor.Scope == this)
            {
                tensor.Scope = null;
                tensor.Dispose();
            }
        }
        _tensors.Clear();
    }
}
