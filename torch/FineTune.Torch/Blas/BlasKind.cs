namespace FineTune.Torch.Blas;

/// <summary>Which BLAS libtorch's CPU matrix products resolved to (Debian switches libblas.so.3 through alternatives).</summary>
public enum BlasKind
{
    /// <summary>No libblas/OpenBLAS/BLIS/MKL library is mapped: libtorch carries its own (a pip or libtorch-archive build links MKL statically).</summary>
    Builtin,

    /// <summary>The netlib reference implementation (Debian's libblas3): about 6 GFLOP/s per core, 15-30x slower than an optimized BLAS.</summary>
    Reference,
    OpenBlasOpenMp,
    OpenBlasPthread,
    OpenBlasSerial,
    BlisOpenMp,
    BlisPthread,
    BlisSerial,
    Mkl,
    Atlas,

    /// <summary>A libblas.so.3 from a folder this list does not know.</summary>
    Other,
}
