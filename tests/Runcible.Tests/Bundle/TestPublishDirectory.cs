namespace Runcible.Tests.Bundle;

/// <summary>A small publish directory of the HelloWeb shape (apphost, dll, wwwroot, a symlink, odd modes).</summary>
internal static class TestPublishDirectory
{
    public static void Create(string path, string marker = "v1")
    {
        if (OperatingSystem.IsWindows())
        {
            throw new PlatformNotSupportedException("Bundles are built from Linux publish output with Unix modes.");
        }

        Directory.CreateDirectory(Path.Combine(path, "wwwroot", "css"));
        File.WriteAllText(Path.Combine(path, "HelloWeb"), "apphost " + marker);
        File.WriteAllText(Path.Combine(path, "HelloWeb.dll"), "dll " + marker);
        File.WriteAllText(Path.Combine(path, "appsettings.json"), "{}");
        File.WriteAllText(Path.Combine(path, "wwwroot", "css", "site.css"), "body{}");
        File.WriteAllText(Path.Combine(path, "tool.sh"), "#!/bin/sh\n");
        File.SetUnixFileMode(Path.Combine(path, "tool.sh"), (UnixFileMode)0b111_000_000);
        File.SetUnixFileMode(Path.Combine(path, "HelloWeb"), (UnixFileMode)0b110_000_000); // lost its x bit: still 0755
        File.SetUnixFileMode(Path.Combine(path, "appsettings.json"), (UnixFileMode)0b110_110_110);
        File.CreateSymbolicLink(Path.Combine(path, "current.css"), "wwwroot/css/site.css");
    }
}
