namespace FineTune.IO.Safetensors;

/// <summary>A safetensors file (or index) that breaks the format; the message names the file and the problem.</summary>
public sealed class SafetensorsFormatException : UserErrorException
{
    public SafetensorsFormatException(string path, string problem)
        : base($"{path} is not a valid safetensors file: {problem}.")
    {
        Path = path;
        Problem = problem;
    }

    public SafetensorsFormatException(string path, string problem, Exception inner)
        : base($"{path} is not a valid safetensors file: {problem}.", inner)
    {
        Path = path;
        Problem = problem;
    }

    public string Path { get; }

    public string Problem { get; }
}
