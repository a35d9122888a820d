namespace Runcible.Tests.Infrastructure;

/// <summary>Where things are: the repository root and the fixture image cache built by eng/fixture-images.sh.</summary>
public static class RepoPaths
{
    public static string Root { get; } = FindRoot();

    /// <summary>
    /// The OCI layouts of the fixture images (one directory per image). Set by
    /// <c>RUNCIBLE_FIXTURE_DIR</c>; default matches eng/fixture-images.sh.
    /// </summary>
    public static string FixtureImages =>
        Environment.GetEnvironmentVariable("RUNCIBLE_FIXTURE_DIR") is { Length: > 0 } dir
            ? dir
            : Path.Combine(
                Environment.GetEnvironmentVariable("XDG_CACHE_HOME") is { Length: > 0 } cache
                    ? cache
                    : Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cache"),
                "runcible-fixtures");

    private static string FindRoot()
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "Packaging.sln")))
        {
            dir = dir.Parent;
        }

        return dir?.FullName ?? throw new InvalidOperationException("Could not find the repository root (Packaging.sln).");
    }
}
