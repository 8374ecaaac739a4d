using System.Reflection;
using System.Runtime.InteropServices;

namespace FineTune.Torch.Native;

/// <summary>
/// Finds libfinetune_torch.so for the P/Invoke declarations of this assembly, in order:
/// $FINETUNE_NATIVE_DIR, the application's base directory, the assembly's directory, then every
/// ancestor of the assembly's directory that holds torch/native/build/ (a source checkout).
/// </summary>
internal static class NativeLibraryLoader
{
    public const string LibraryName = "finetune_torch";
    private const string FileName = "libfinetune_torch.so";
    private static int s_registered;

    /// <summary>Installs the resolver once; called from the static constructor of <see cref="NativeMethods"/>.</summary>
    public static void EnsureRegistered()
    {
        if (Interlocked.Exchange(ref s_registered, 1) == 0)
        {
            NativeLibrary.SetDllImportResolver(typeof(NativeLibraryLoader).Assembly, Resolve);
        }
    }

    private static IntPtr Resolve(string libraryName, Assembly assembly, DllImportSearchPath? searchPath)
    {
        if (libraryName != LibraryName)
        {
            return IntPtr.Zero;
        }
        OpenMpPolicy.Apply(); // before libtorch's libgomp is loaded and reads its environment
        foreach (var candidate in Candidates(assembly))
        {
            if (File.Exists(candidate) && NativeLibrary.TryLoad(candidate, out var handle))
            {
                return handle;
            }
        }
        throw new DllNotFoundException(
            $"{FileName} was not found (looked in FINETUNE_NATIVE_DIR, {AppContext.BaseDirectory} and torch/native/build above " +
            $"{Path.GetDirectoryName(assembly.Location)}); build it with ./build.sh or set FINETUNE_NATIVE_DIR to its folder.");
    }

    internal static IEnumerable<string> Candidates(Assembly assembly)
    {
        var fromEnvironment = Environment.GetEnvironmentVariable("FINETUNE_NATIVE_DIR");
        if (!string.IsNullOrEmpty(fromEnvironment))
        {
            yield return Path.Combine(fromEnvironment, FileName);
        }
        yield return Path.Combine(AppContext.BaseDirectory, FileName);
        var assemblyDirectory = Path.GetDirectoryName(assembly.Location);
        if (string.IsNullOrEmpty(assemblyDirectory))
        {
            yield break;
        }
        yield return Path.Combine(assemblyDirectory, FileName);
        for (var directory = new DirectoryInfo(assemblyDirectory); directory != null; directory = directory.Parent)
        {
            yield return Path.Combine(directory.FullName, "torch", "native", "build", FileName);
        }
    }
}
