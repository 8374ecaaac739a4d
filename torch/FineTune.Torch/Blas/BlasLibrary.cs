namespace FineTune.Torch.Blas;

/// <summary>
/// The BLAS that libtorch's CPU matrix products run on, read from /proc/self/maps once libtorch is loaded (the
/// mapped file is the one the dynamic loader resolved, after Debian's libblas.so.3 alternative). Debian's libtorch
/// pulls in the netlib reference BLAS, which runs products 15-30x slower than OpenBLAS on the same cores; this type
/// is how a compute command notices and says once what to install.
/// </summary>
public static class BlasLibrary
{
    /// <summary>What build.sh installs and what the advice names (measured best under libtorch's OpenMP: docs/benchmarks.md).</summary>
    public const string RecommendedPackage = "libopenblas0-openmp";

    private static int s_warned;

    /// <summary>The resolved BLAS of this process (libtorch is loaded first), with the mapped file it came from.</summary>
    public static (BlasKind Kind, string? Path) Resolve()
    {
        _ = Torch.NumThreads; // loads the shim, hence libtorch and the BLAS it links
        string maps;
        try
        {
            maps = File.ReadAllText("/proc/self/maps");
        }
        catch (IOException)
        {
            return (BlasKind.Other, null);
        }
        catch (UnauthorizedAccessException)
        {
            return (BlasKind.Other, null);
        }
        return Classify(maps);
    }

    /// <summary>Classifies the BLAS from the text of a /proc/PID/maps file (one mapping per line, the path last).</summary>
    public static (BlasKind Kind, string? Path) Classify(string maps)
    {
        string? blas = null, vendor = null;
        foreach (string line in maps.Split('\n'))
        {
            int slash = line.IndexOf('/');
            if (slash < 0)
                continue;
            string path = line[slash..].Trim();
            string name = System.IO.Path.GetFileName(path);
            if (name.StartsWith("libblas.so", StringComparison.Ordinal))
                blas ??= path;
            else if (name.StartsWith("libopenblas", StringComparison.Ordinal) || name.StartsWith("libblis", StringComparison.Ordinal) ||
                     name.StartsWith("libmkl_", StringComparison.Ordinal) || name.StartsWith("libsatlas", StringComparison.Ordinal) || name.StartsWith("libtatlas", StringComparison.Ordinal))
                vendor ??= path;
        }
        string? path0 = blas ?? vendor;
        if (path0 is null)
            return (BlasKind.Builtin, null);
        // Debian's folders: blas/ (netlib), openblas-openmp|pthread|serial/, blis-openmp|pthread|serial/, atlas/.
        string folder = System.IO.Path.GetFileName(System.IO.Path.GetDirectoryName(path0) ?? "");
        string vendorName = vendor is null ? "" : System.IO.Path.GetFileName(vendor);
        BlasKind kind = folder switch
        {
            "blas" when vendor is null => BlasKind.Reference,
            "openblas-openmp" => BlasKind.OpenBlasOpenMp,
            "openblas-pthread" => BlasKind.OpenBlasPthread,
            "openblas-serial" => BlasKind.OpenBlasSerial,
            "blis-openmp" => BlasKind.BlisOpenMp,
            "blis-pthread" => BlasKind.BlisPthread,
            "blis-serial" => BlasKind.BlisSerial,
            "atlas" => BlasKind.Atlas,
            _ when vendorName.StartsWith("libmkl_", StringComparison.Ordinal) => BlasKind.Mkl,
            _ when vendorName.StartsWith("libopenblas", StringComparison.Ordinal) => BlasKind.OpenBlasPthread,
            _ when vendorName.StartsWith("libblis", StringComparison.Ordinal) => BlasKind.BlisPthread,
            _ => BlasKind.Other,
        };
        return (kind, path0);
    }

    /// <summary>One sentence saying what to install when the BLAS is the slow reference one; null when it is fine.</summary>
    public static string? Advice(BlasKind kind, string? path) => kind switch
    {
        BlasKind.Reference => $"libtorch is running on the reference BLAS ({path}), which makes CPU training 15-30x slower: install an optimized one with `sudo apt-get install {RecommendedPackage}` (./build.sh does this).",
        BlasKind.OpenBlasPthread or BlasKind.BlisPthread => $"libtorch is running on a pthread BLAS ({path}) whose threads compete with libtorch's OpenMP threads: install `{RecommendedPackage}` and select it with `sudo update-alternatives --config libblas.so.3-x86_64-linux-gnu`.",
        _ => null,
    };

    /// <summary>Writes the advice once per process, when there is any (called at the start of every compute command).</summary>
    public static void WarnIfSlow(TextWriter writer)
    {
        if (Interlocked.Exchange(ref s_warned, 1) != 0)
            return;
        (BlasKind kind, string? path) = Resolve();
        if (Advice(kind, path) is string advice)
            writer.WriteLine($"warning: {advice}");
    }
}
