using System.CommandLine;

namespace FineTune.Cli;

/// <summary>
/// Maps outcomes to exit codes: 0 success, 2 user error (one sentence, no stack trace), 1 bug (stack trace).
/// </summary>
public static class ExitCodes
{
    public const int Success = 0;
    public const int Bug = 1;
    public const int UserError = 2;

    public static int Run(RootCommand root, string[] args)
    {
        // `finetune` alone and `finetune help [COMMAND]` print the usage (System.CommandLine only knows --help)
        if (args.Length == 0)
            args = ["--help"];
        else if (args[0] == "help")
            args = [.. args[1..], "--help"];
        ParseResult parsed = root.Parse(args);
        if (parsed.Errors.Count > 0)
        {
            foreach (var error in parsed.Errors)
                Console.Error.WriteLine($"error: {error.Message}");
            return UserError;
        }
        try
        {
            return parsed.Invoke(new InvocationConfiguration { EnableDefaultExceptionHandler = false });
        }
        catch (UserErrorException e)
        {
            Console.Error.WriteLine($"error: {e.Message}");
            return UserError;
        }
        catch (Exception e) when (FineTune.IO.DiskFullException.IsDiskFull(e))
        {
            // Running out of disk is the user's to fix (free space or point the folders elsewhere), not a bug,
            // wherever it happens: checkpoint, export, metrics.jsonl, TensorBoard, swap.
            Console.Error.WriteLine($"error: {FineTune.IO.DiskFullException.Describe(e)}");
            return UserError;
        }
        catch (FineTune.Torch.Distributed.DistributedException e)
        {
            // A peer that died or hangs, or a launcher's variables that do not fit: the sentence names the rank.
            Console.Error.WriteLine($"error: {e.Message}");
            return UserError;
        }
        catch (OperationCanceledException)
        {
            Console.Error.WriteLine("cancelled.");
            return UserError;
        }
        catch (Exception e)
        {
            Console.Error.WriteLine($"internal error (a bug in FineTune, please report it):{Environment.NewLine}{e}");
            return Bug;
        }
    }
}
