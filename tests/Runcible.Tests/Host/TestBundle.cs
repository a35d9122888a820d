using System.Net;
using System.Net.Sockets;
using Runcible.Core.Bundle;
using Runcible.Core.Contracts;
using Runcible.Core.Host;
using Runcible.Core.Oci;
using Runcible.Core.RuntimeSpec;
using Runcible.Tests.Infrastructure;
using Runcible.Tests.RuntimeSpec;

namespace Runcible.Tests.Host;

/// <summary>
/// A bundle tree as the publish pipeline lays it out (<c>opt/containers/&lt;name&gt;-&lt;version&gt;/</c>):
/// a busybox-static rootfs with a small HTTP app, config.json from <see cref="RuntimeSpecGenerator"/>,
/// and the shim and service files from <see cref="HostRuntimeFiles"/>.
/// </summary>
internal static class TestBundle
{
    /// <summary>
    /// The app: logs its start, appends its version to /data/starts, serves /data over HTTP with busybox
    /// httpd and, on SIGTERM, logs a graceful shutdown and stops httpd.
    /// </summary>
    public const string WebApp = """
        #!/bin/sh
        echo "app $APP_VERSION starting on port $PORT"
        echo "$APP_VERSION" >> /data/starts
        echo "$APP_VERSION" > /data/version
        trap 'echo "app $APP_VERSION: SIGTERM received, shutting down gracefully"; kill $pid; wait $pid; echo "app $APP_VERSION stopped"; exit 0' TERM
        httpd -f -p "$PORT" -h /data &
        pid=$!
        wait $pid
        """;

    /// <summary>An app that fails at once: an upgrade to it must be rolled back.</summary>
    public const string FailingApp = """
        #!/bin/sh
        echo "app $APP_VERSION: cannot start"
        exit 3
        """;

    private static readonly string[] Applets = ["sh", "echo", "cat", "httpd", "kill", "sleep", "touch", "ls", "test", "id", "rm", "tail", "head", "expr", "stat", "dd", "grep", "sha256sum", "wget", "nslookup", "ip"];

    public sealed record Options(string Name, string Version, int Port)
    {
        public string App { get; init; } = WebApp;
        public bool WritableRootfs { get; init; }
        public bool Rootless { get; init; }
        public bool Notify { get; init; }
        public int StopTimeoutSeconds { get; init; } = 10;

        /// <summary>RuncMemoryLimit, RuncCpuLimit, RuncPidsLimit as a project writes them (null: none, pids none too).</summary>
        public string? MemoryLimit { get; init; }
        public string? CpuLimit { get; init; }
        public string? PidsLimit { get; init; }
        public BundleNetwork Network { get; init; }

        /// <summary><c>RuncPublishPort</c> items (private network).</summary>
        public IReadOnlyList<string> PublishPorts { get; init; } = [];

        /// <summary>RuncHealthCheck and its timing (<see cref="HealthCheckParser"/>), none by default.</summary>
        public HealthCheckSettings? Health { get; init; }
    }

    /// <summary>Writes the bundle under <paramref name="containersDirectory"/> (<c>…/opt/containers</c>) and returns its directory.</summary>
    public static string Write(string containersDirectory, Options options)
    {
        var bundle = Path.Combine(containersDirectory, $"{options.Name}-{options.Version}");
        var rootfs = Path.Combine(bundle, "rootfs");
        foreach (var dir in new[] { "bin", "etc", "app", "tmp", "proc", "sys", "dev", "run", "var/tmp", "data", "home/app" })
        {
            Directory.CreateDirectory(Path.Combine(rootfs, dir));
        }

        File.Copy("/bin/busybox", Path.Combine(rootfs, "bin", "busybox"));
        foreach (var applet in Applets)
        {
            File.CreateSymbolicLink(Path.Combine(rootfs, "bin", applet), "busybox");
        }

        RuntimeSpecFixtures.WriteRootfs(rootfs);
        File.WriteAllText(Path.Combine(rootfs, "app", "start.sh"), options.App.Replace("\r\n", "\n", StringComparison.Ordinal) + "\n");
        ProcessRunner.Run("chmod", ["0755", Path.Combine(rootfs, "app", "start.sh")]).EnsureSuccess("chmod");
        ProcessRunner.Run("chmod", ["1777", Path.Combine(rootfs, "tmp"), Path.Combine(rootfs, "var", "tmp")]).EnsureSuccess("chmod");
        // The app user owns its working directory and home, as in the .NET images (only with a writable root do writes there succeed).
        ProcessRunner.Run("chown", ["1654:1654", Path.Combine(rootfs, "app"), Path.Combine(rootfs, "home", "app")]).EnsureSuccess("chown");

        var image = new ImageConfiguration
        {
            OS = "linux",
            Architecture = "amd64",
            Config = new ContainerConfig { Env = ["PATH=/bin"] },
        };
        var spec = new RuntimeSpecGenerator().Generate(image, new DirectoryRootfsReader(rootfs), new RuntimeSpecSettings
        {
            BundleName = options.Name,
            BundleVersion = options.Version,
            AssemblyName = "WebApp",
            User = options.Rootless ? null : "app",
            AppCommand = ["/app/start.sh"],
            EnvironmentVariables = [new("APP_VERSION", options.Version), new("PORT", options.Port.ToString(System.Globalization.CultureInfo.InvariantCulture))],
            Ports = [$"{options.Port}/tcp"],
            Volumes = [new VolumeSetting("/data", "state")],
            Rootless = options.Rootless,
            WritableRootfs = options.WritableRootfs,
            Notify = options.Notify,
            StopTimeoutSeconds = options.StopTimeoutSeconds,
            Health = options.Health,
            // The machine's hard limit is lower than the server default (no CAP_SYS_RESOURCE).
            OpenFilesLimit = 4096,
            MemoryLimitBytes = ResourceLimits.ParseMemory(options.MemoryLimit),
            CpuQuotaMicroseconds = ResourceLimits.ParseCpu(options.CpuLimit),
            PidsLimit = options.PidsLimit is null ? null : ResourceLimits.ParsePids(options.PidsLimit, options.Rootless),
            Network = options.Network,
            PublishPorts = options.PublishPorts.Select(p => PublishedPort.TryParse(p, out _)!).ToList(),
        });
        var config = RuntimeSpecGenerator.Serialize(spec.Config);
        File.WriteAllBytes(Path.Combine(bundle, RuntimeSpecGenerator.ConfigFileName), config);
        var settings = new BundleSettings(options.Name, options.Version, "linux-x64", "net10.0", BundleCompression.Gzip,
            BundleCompressionLevels.DefaultGzip, options.StopTimeoutSeconds, "/app", options.Rootless, options.WritableRootfs, options.Notify, false, DateTimeOffset.UnixEpoch, []);
        var output = new RuntimeConfigOutput(config, spec.Info.Uid, spec.Info.Gid, spec.Info.Volumes.Select(v => v.Name).ToList()) { RuntimeInfo = spec.Info };
        foreach (var file in new HostRuntimeFiles().Create(settings, output))
        {
            var path = Path.Combine(bundle, file.RelativePath);
            File.WriteAllBytes(path, file.Content);
            ProcessRunner.Run("chmod", [Convert.ToString((int)file.Mode, 8), path]).EnsureSuccess("chmod");
        }

        // What the bundle tarball carries (BundleWriter): empty config/ and data/ (root's), logs/ and one empty
        // data/<volume> per volume owned by the container user.
        foreach (var dir in new[] { "data", "config", "logs", "data/state" })
        {
            Directory.CreateDirectory(Path.Combine(bundle, dir));
        }

        var owner = $"{spec.Info.Uid}:{spec.Info.Gid}";
        ProcessRunner.Run("chown", [owner, Path.Combine(bundle, "logs"), Path.Combine(bundle, "data", "state")]).EnsureSuccess("chown");

        return bundle;
    }

    /// <summary>
    /// The runtime bundle the shim renders the effective config.json of <paramref name="bundle"/> into:
    /// <c>{runtimeDir}/runcible/.bundles/&lt;name&gt;-&lt;cksum of the bundle path&gt;</c>.
    /// </summary>
    public static string RuntimeBundleDirectory(string bundle, string name, string runtimeDirectory = "/run")
    {
        var cksum = ProcessRunner.Run("sh", ["-c", "printf '%s' \"$1\" | cksum | cut -d ' ' -f 1", "sh", bundle]).EnsureSuccess("cksum").StandardOutput.Trim();
        return $"{runtimeDirectory}/runcible/.bundles/{name}-{cksum}";
    }

    /// <summary>Removes the rootful runtime bundles of <paramref name="name"/> a test's runs left under /run.</summary>
    public static void DeleteRuntimeBundles(string name)
    {
        if (Directory.Exists("/run/runcible/.bundles"))
        {
            foreach (var runtimeBundle in Directory.EnumerateDirectories("/run/runcible/.bundles", name + "-*"))
            {
                Directory.Delete(runtimeBundle, recursive: true);
            }
        }
    }

    public static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }
}
