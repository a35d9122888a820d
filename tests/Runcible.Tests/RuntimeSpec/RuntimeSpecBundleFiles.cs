using Runcible.Core.RuntimeSpec;

namespace Runcible.Tests;

/// <summary>A generated spec written into a runc bundle directory, for the tests that run it (the product writes it into the tarball).</summary>
internal static class RuntimeSpecBundleFiles
{
    /// <summary>Writes config.json and runcible.json into <paramref name="bundleDirectory"/> atomically (temp file, rename).</summary>
    public static void Write(RuntimeSpecResult result, string bundleDirectory)
    {
        // config.json holds the app's environment (connection strings…): its owner's alone, as in the tarball.
        WriteAtomically(Path.Combine(bundleDirectory, RuntimeSpecGenerator.ConfigFileName), RuntimeSpecGenerator.Serialize(result.Config), UnixFileMode.UserRead | UnixFileMode.UserWrite);
        WriteAtomically(Path.Combine(bundleDirectory, RuntimeSpecGenerator.InfoFileName), RuntimeSpecGenerator.Serialize(result.Info), UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.OtherRead);
    }

    private static void WriteAtomically(string path, byte[] content, UnixFileMode mode)
    {
        var temporary = path + ".tmp-" + Guid.NewGuid().ToString("N");
        try
        {
            var options = new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write };
            if (!OperatingSystem.IsWindows())
            {
                options.UnixCreateMode = mode;
            }

            using (var file = new FileStream(temporary, options))
            {
                file.Write(content);
            }

            File.Move(temporary, path, overwrite: true);
        }
        finally
        {
            if (File.Exists(temporary))
            {
                File.Delete(temporary);
            }
        }
    }
}
