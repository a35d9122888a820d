using Runcible.Core.Oci;
using Runcible.Core.RuntimeSpec;

namespace Runcible.Tests.RuntimeSpec;

/// <summary>Image configs shaped like the .NET base images and a rootfs with account files.</summary>
internal static class RuntimeSpecFixtures
{
    public const string Passwd =
        "root:x:0:0:root:/root:/bin/sh\n" +
        "daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\n" +
        "app:x:1654:1654:app:/home/app:/bin/sh\n" +
        "web:x:2000:2000::/srv/web:/bin/sh\n";

    public const string Group =
        "root:x:0:\n" +
        "daemon:x:1:\n" +
        "tty:x:5:\n" +
        "app:x:1654:\n" +
        "web:x:2000:\n" +
        "shared:x:3000:app,web\n" +
        "audit:x:3001:web\n";

    public static string WriteRootfs(string directory)
    {
        Directory.CreateDirectory(Path.Combine(directory, "etc"));
        File.WriteAllText(Path.Combine(directory, "etc", "passwd"), Passwd);
        File.WriteAllText(Path.Combine(directory, "etc", "group"), Group);
        return directory;
    }

    private static ImageConfiguration Base(string? user, List<string> env, List<string>? entrypoint = null, List<string>? cmd = null) => new()
    {
        Created = "2026-01-01T00:00:00Z",
        Architecture = "amd64",
        OS = "linux",
        Config = new ContainerConfig
        {
            User = user,
            Env = env,
            Entrypoint = entrypoint,
            Cmd = cmd,
        },
    };

    public static ImageConfiguration RuntimeDeps() => Base(null, [
        "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "APP_UID=1654",
        "ASPNETCORE_HTTP_PORTS=8080",
        "DOTNET_RUNNING_IN_CONTAINER=true",
    ]);

    public static ImageConfiguration Runtime()
    {
        var image = RuntimeDeps();
        image.Config!.Env!.Add("DOTNET_VERSION=10.0.0");
        image.Config.Entrypoint = ["dotnet"];
        return image;
    }

    public static ImageConfiguration AspNet()
    {
        var image = Runtime();
        image.Config!.Env!.Add("ASPNET_VERSION=10.0.0");
        image.Config.ExposedPorts = new Dictionary<string, object?> { ["8080/tcp"] = new Dictionary<string, object?>() };
        image.Config.Labels = new Dictionary<string, string> { ["org.opencontainers.image.vendor"] = "Example", ["com.example.tier"] = "base" };
        return image;
    }

    public static RuntimeSpecSettings Settings(string name = "hello") => new()
    {
        BundleName = name,
        BundleVersion = "1.0.0",
        AssemblyName = "Hello",
    };
}
