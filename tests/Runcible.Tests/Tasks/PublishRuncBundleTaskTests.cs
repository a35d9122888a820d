using System.Formats.Tar;
using System.IO.Compression;
using Runcible.Tasks;
using Runcible.Tests.Bundle;
using Runcible.Tests.Infrastructure;
using Runcible.Tests.Infrastructure.Registry;

namespace Runcible.Tests.Tasks;

/// <summary>
/// The real PublishRuncBundle task in-process on a build-engine double, fed the settings document the settings task
/// wrote, against the loopback test registry (behind a counting proxy).
/// </summary>
public sealed class PublishRuncBundleTaskTests(SharedRegistries registries) : IDisposable
{
    private const string ToolVersion = "0.0.0-task-tests";

    private readonly TempDirectory _work = new("runcible-publish-task");
    private readonly MockEngine _engine = new();

    public void Dispose()
    {
        _engine.Dispose();
        _work.Dispose();
    }

    private string Project => _work.Combine("project");

    private string Cache => _work.Combine("cache");

    /// <summary>Runs the settings task as the targets do and returns the document's path and the tarball's.</summary>
    private (string SettingsFile, string BundlePath) Settings(string baseImage, params (string Name, string Value)[] extra)
    {
        var properties = new Dictionary<string, string>(StringComparer.Ordinal)
        {
            ["AssemblyName"] = "HelloWeb",
            ["MSBuildProjectDirectory"] = Project,
            ["OutputPath"] = "bin/Release/net10.0/linux-x64/",
            ["PublishDir"] = "bin/Release/net10.0/linux-x64/publish/",
            ["TargetFramework"] = "net10.0",
            ["RuntimeIdentifier"] = "linux-x64",
            ["Version"] = "1.2.3",
            ["NETCoreSdkVersion"] = "10.0.100",
            ["TargetFrameworkIdentifier"] = ".NETCoreApp",
            ["_TargetFrameworkVersionWithoutV"] = "10.0",
            ["ContainerBaseImage"] = baseImage,
        };
        foreach (var (name, value) in extra)
        {
            properties[name] = value;
        }

        var settingsFile = Path.Combine(Project, "obj", "runc-bundle.settings.json");
        var task = new ComputeRuncBundleSettings { BuildEngine = _engine, Properties = SettingTaskItems.Properties(properties), SettingsFile = settingsFile };
        Assert.True(task.Execute(), _engine.Log);
        return (settingsFile, task.BundlePath);
    }

    private PublishRuncBundle Task(string settingsFile) => new()
    {
        BuildEngine = _engine,
        SettingsFile = settingsFile,
        CacheDirectory = Cache,
        ToolVersion = ToolVersion,
    };

    private static List<string> EntryNames(string tarball)
    {
        using var file = File.OpenRead(tarball);
        using var gzip = new GZipStream(file, CompressionMode.Decompress);
        using var reader = new TarReader(gzip);
        var names = new List<string>();
        while (reader.GetNextEntry() is { } entry)
        {
            names.Add(entry.Name);
        }

        return names;
    }

    [Fact]
    public async Task WritesTheTarballAndReturnsTheBundleThenBuildsOfflineFromTheCache()
    {
        var registry = await registries.AnonymousAsync();
        await using var proxy = FaultProxy.Start(registry);
        TestPublishDirectory.Create(Path.Combine(Project, "bin", "Release", "net10.0", "linux-x64", "publish"));
        var (settingsFile, bundlePath) = Settings(proxy.Host + "/" + FixtureImages.Busybox + ":latest");

        var task = Task(settingsFile);
        Assert.True(task.Execute(), _engine.Log);

        Assert.Empty(_engine.Errors);
        var bundle = Assert.IsAssignableFrom<Microsoft.Build.Framework.ITaskItem>(task.Bundle);
        Assert.Equal(bundlePath, bundle.ItemSpec);
        Assert.Equal("helloweb", bundle.GetMetadata("BundleName"));
        Assert.Equal("1.2.3", bundle.GetMetadata("BundleVersion"));
        Assert.Equal("linux-x64", bundle.GetMetadata("RuntimeIdentifier"));
        Assert.StartsWith("sha256:", bundle.GetMetadata("AppLayerDigest"), StringComparison.Ordinal);
        var names = EntryNames(bundlePath);
        Assert.Contains("opt/containers/helloweb-1.2.3/config.json", names);
        Assert.Contains("opt/containers/helloweb-1.2.3/rootfs/app/HelloWeb.dll", names);
        Assert.Contains("opt/containers/helloweb-1.2.3/rootfs/bin/busybox", names);
        Assert.Contains(proxy.Requests, r => r.Target.Contains("/manifests/", StringComparison.Ordinal));
        var bytes = File.ReadAllBytes(bundlePath);

        // RuncOffline with the image in the cache: no request at all, and the same bytes.
        proxy.ResetRequests();
        File.Delete(bundlePath);
        var (offlineSettings, _) = Settings(proxy.Host + "/" + FixtureImages.Busybox + ":latest", ("RuncOffline", "true"));
        var offline = Task(offlineSettings);
        Assert.True(offline.Execute(), _engine.Log);
        Assert.Equal(0, proxy.RequestCount);
        Assert.Equal(bytes, File.ReadAllBytes(bundlePath));
    }

    [Fact]
    public async Task ARegistryFailureIsOneCodedErrorAndNoTarball()
    {
        var registry = await registries.AnonymousAsync();
        TestPublishDirectory.Create(Path.Combine(Project, "bin", "Release", "net10.0", "linux-x64", "publish"));
        var (settingsFile, bundlePath) = Settings(registry.Host + "/" + FixtureImages.Busybox + ":no-such-tag");

        var task = Task(settingsFile);
        Assert.False(task.Execute());

        var error = Assert.Single(_engine.Errors);
        Assert.Equal("RUNCIBLE1001", error.Code);
        Assert.Contains("no-such-tag", error.Message, StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", error.Message, StringComparison.Ordinal);
        Assert.Null(task.Bundle);
        Assert.False(File.Exists(bundlePath));
        Assert.Empty(Directory.GetFiles(Path.GetDirectoryName(bundlePath)!, "*.tar.gz*"));
    }
}
