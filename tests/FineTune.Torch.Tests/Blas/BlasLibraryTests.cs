using FineTune.Torch.Blas;
using Xunit;

namespace FineTune.Torch.Tests.Blas;

/// <summary>
/// Which BLAS libtorch resolved, read from /proc/PID/maps lines as Debian's alternatives lay them out, and the one
/// sentence a compute command prints for a slow one (the wait policy is checked from outside: SmokeCommandTests).
/// </summary>
public sealed class BlasLibraryTests
{
    private const string Prefix = "7f3a1c000000-7f3a1c200000 r-xp 00000000 fe:01 1234567                    ";

    [Theory]
    [InlineData("/usr/lib/x86_64-linux-gnu/blas/libblas.so.3.11.0", BlasKind.Reference)]
    [InlineData("/usr/lib/x86_64-linux-gnu/openblas-openmp/libblas.so.3", BlasKind.OpenBlasOpenMp)]
    [InlineData("/usr/lib/x86_64-linux-gnu/openblas-pthread/libblas.so.3", BlasKind.OpenBlasPthread)]
    [InlineData("/usr/lib/x86_64-linux-gnu/blis-openmp/libblas.so.3", BlasKind.BlisOpenMp)]
    [InlineData("/opt/intel/oneapi/mkl/latest/lib/libmkl_rt.so.2", BlasKind.Mkl)]
    public void ClassifiesTheMappedLibrary(string path, BlasKind expected)
    {
        string maps = $"{Prefix}/usr/lib/x86_64-linux-gnu/libtorch_cpu.so.1.13\n{Prefix}{path}\n{Prefix}[heap]\n";
        (BlasKind kind, string? resolved) = BlasLibrary.Classify(maps);
        Assert.Equal(expected, kind);
        Assert.Equal(path, resolved);
    }

    [Fact]
    public void OnlyTheReferenceAndPthreadBuildsGetAdviceOfOneSentence()
    {
        string? reference = BlasLibrary.Advice(BlasKind.Reference, "/usr/lib/x86_64-linux-gnu/blas/libblas.so.3");
        Assert.NotNull(reference);
        Assert.Contains("sudo apt-get install libopenblas0-openmp", reference);
        Assert.Single(reference!.Split(". ", StringSplitOptions.None));
        Assert.Contains("update-alternatives", BlasLibrary.Advice(BlasKind.OpenBlasPthread, "/x/openblas-pthread/libblas.so.3"));
        Assert.Null(BlasLibrary.Advice(BlasKind.OpenBlasOpenMp, "/x/openblas-openmp/libblas.so.3"));
        Assert.Null(BlasLibrary.Advice(BlasKind.Builtin, null));
    }

    [Fact]
    public void ALibtorchWithItsOwnBlasMapsNone()
    {
        Assert.Equal((BlasKind.Builtin, (string?)null), BlasLibrary.Classify($"{Prefix}/opt/torch/lib/libtorch_cpu.so\n{Prefix}/usr/lib/libc.so.6\n"));
    }

    [Fact]
    public void ThisProcessResolvesTheBlasItHasMapped()
    {
        (BlasKind kind, string? path) = BlasLibrary.Resolve();
        string maps = File.ReadAllText("/proc/self/maps");
        if (path is null)
            Assert.Equal(BlasKind.Builtin, kind);
        else
            Assert.Contains(path, maps);
    }
}
