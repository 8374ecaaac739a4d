using Xunit;

// Console.Out/Error are process-wide; the CLI tests swap them, so they must not run in parallel.
[assembly: CollectionBehavior(DisableTestParallelization = true)]

namespace FineTune.Cli.Tests;

/// <summary>Runs `finetune` in-process through the real root command and exit-code mapping, capturing both streams.</summary>
internal static class CliRunner
{
    public static (int ExitCode, string Out, string Error) Run(params string[] args)
    {
        TextWriter originalOut = Console.Out, originalError = Console.Error;
        var output = new StringWriter();
        var error = new StringWriter();
        Console.SetOut(output);
        Console.SetError(error);
        try
        {
            int exitCode = ExitCodes.Run(FineTuneApp.CreateRoot(), args);
            return (exitCode, output.ToString(), error.ToString());
        }
        finally
        {
            Console.SetOut(originalOut);
            Console.SetError(originalError);
        }
    }

    /// <summary>The folder holding FineTune.sln (tests run from bin/Release/net10.0 inside it).</summary>
    public static string RepositoryRoot()
    {
        for (string? dir = AppContext.BaseDirectory; dir is not null; dir = Path.GetDirectoryName(dir))
            if (File.Exists(Path.Combine(dir, "FineTune.sln")))
                return dir;
        throw new InvalidOperationException("FineTune.sln not found above " + AppContext.BaseDirectory);
    }
}
