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

    /// <summary>The raw properties a project publishing from <paramref name="baseImage"/> hands the tasks.</summary>
    private Dictionary<string, string> Properties(string baseImage, params (string Name, string Value)[] extra)
    {
        var properties = SettingTaskItems.TypicalProject(Project, assemblyName: "HelloWeb", version: "1.2.3");
        properties["ContainerBaseImage"] = baseImage;
        foreach (var (name, value) in extra)
        {
            properties[name] = value;
        }

        return properties;
    }

    /// <summary>Runs the settings task as the targets do and returns the document's path and the tarball's.</summary>
    private (string SettingsFile, string BundlePath) Settings(string baseImage, params (string Name, string Value)[] extra)
    {
        var settingsFile = Path.Combine(Project, "obj", "runc-bundle.settings.json");
        var task = new ComputeRuncBundleSettings { BuildEngine = _engine, Properties = SettingTaskItems.Properties(Properties(baseImage, extra)), SettingsFile = settingsFile };
        Assert.True(task.Execute(), _engine.Log);
        return (settingsFile, task.BundlePath);
    }

    private PublishRuncBundle Task(string settingsFile, MockEngine? engine = null) => new()
    {
        BuildEngine = engine ?? _engine,
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

    [Fact]
    public async Task TheBundleTaskTakesOverTheEarlyBasePartWithOnePullAndTheSameBytes()
    {
        var registry = await registries.AnonymousAsync();
        await using var proxy = FaultProxy.Start(registry);
        TestPublishDirectory.Create(Path.Combine(Project, "bin", "Release", "net10.0", "linux-x64", "publish"));
        var baseImage = proxy.Host + "/" + FixtureImages.Busybox + ":latest";
        int Pulls() => proxy.PullsOf(FixtureImages.Busybox, FixtureImages.Tag);

        // As _RuncPrepareBaseEarly calls it at BeforeBuild: starts the work in the background (kept in the engine's
        // task object registry) and returns at once, with no bundle.
        var early = new PublishRuncBundle
        {
            BuildEngine = _engine,
            PrepareBaseOnly = true,
            SettingProperties = SettingTaskItems.Properties(Properties(baseImage)),
            CacheDirectory = Cache,
            ToolVersion = ToolVersion,
        };
        Assert.True(early.Execute(), _engine.Log);
        Assert.Null(early.Bundle);
        Assert.Contains(_engine.Messages, m => m.Message!.StartsWith("Runcible: preparing the base part of", StringComparison.Ordinal));

        var (settingsFile, bundlePath) = Settings(baseImage);
        var task = Task(settingsFile);
        Assert.True(task.Execute(), _engine.Log);
        Assert.Contains(_engine.Messages, m => m.Message!.StartsWith("Runcible: base part prepared ahead of the app", StringComparison.Ordinal));
        Assert.Contains(_engine.Messages, m => m.Message!.StartsWith("Runcible: base part copied ahead, renamed into place", StringComparison.Ordinal));
        Assert.Equal(1, Pulls());
        Assert.Equal(bundlePath, task.Bundle?.ItemSpec);
        var withEarlyPart = File.ReadAllBytes(bundlePath);

        // Another build (engine) without the early part, from an empty cache: one pull of its own, the very same bytes.
        File.Delete(bundlePath);
        Directory.Delete(Cache, recursive: true);
        using var lateEngine = new MockEngine();
        Assert.True(Task(settingsFile, lateEngine).Execute(), lateEngine.Log);
        Assert.Contains(lateEngine.Messages, m => m.Message!.StartsWith("Runcible: base part copied in", StringComparison.Ordinal));
        Assert.Equal(2, Pulls());
        Assert.Equal(withEarlyPart, File.ReadAllBytes(bundlePath));
    }
}
