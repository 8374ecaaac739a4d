namespace FineTune;

/// <summary>
/// A mistake the user can fix (bad recipe, missing file, no disk space, corrupt checkpoint).
/// The `finetune` command prints only <see cref="Exception.Message"/> (one sentence naming what to change)
/// and exits with code 2; every other exception is a bug and shows its stack trace with exit code 1.
/// Lives in the lowest layer (io) so every layer above can throw it.
/// </summary>
public class UserErrorException : Exception
{
    public UserErrorException(string message) : base(message) { }

    public UserErrorException(string message, Exception inner) : base(message, inner) { }
}
