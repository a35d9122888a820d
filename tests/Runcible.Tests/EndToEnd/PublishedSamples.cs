using System.Collections.Concurrent;
using System.Text.Json;
using Runcible.Core.RuntimeSpec;
using Runcible.Tests.Infrastructure;
using Runcible.Tests.Infrastructure.Registry;
using Runcible.Tests.Sdk;

namespace Runcible.Tests.EndToEnd;

/// <summary>
/// Bundle tarballs of the repository's samples, each published once (on first use) with the packed SDK
/// against the anonymous fixture registry and shared by every test of <see cref="SdkPackageCollection"/>
/// (a collection fixture there): publishing is the slow part.
/// </summary>
public sealed class PublishedSamples(SharedRegistries registries) : IDisposable
{
    private readonly TempDirectory _cache = new("runcible-samples-cache");
    private readonly ConcurrentDictionary<string, Lazy<Task<string>>> _tarballs = new(StringComparer.Ordinal);

    /// <summary>
    /// The tarball of <paramref name="sample"/> published on <paramref name="baseImage"/> (a repository:tag of
    /// the anonymous registry, such as <c>aspnet:latest</c>) with the extra <c>-p:</c> properties.
    /// </summary>
    public Task<string> TarballAsync(SdkPackageFixture sdk, string sample, string baseImage, params string[] extra) =>
        _tarballs.GetOrAdd(sample + "|" + baseImage + "|" + string.Join('|', extra), _ => new Lazy<Task<string>>(() => PublishAsync(sdk, sample, baseImage, extra))).Value;

    private async Task<string> PublishAsync(SdkPackageFixture sdk, string sample, string baseImage, string[] extra)
    {
        var registry = await registries.AnonymousAsync();
        var project = SampleProjects.Copy(sdk, sample);
        SampleProjects.Publish(sdk, project, registry.Host + "/" + baseImage, _cache.Combine("cache"), extra).EnsureSuccess("publish " + sample);
        var tarball = SampleProjects.Tarball(project, sample.ToLowerInvariant() + "-1.0.0.tar.gz");
        Assert.True(File.Exists(tarball), tarball);
        return tarball;
    }

    /// <summary>Extracts a bundle tarball as root into <paramref name="root"/> (a host's <c>/</c>) with README's command: owners, modes and extended attributes kept.</summary>
    public static void Extract(string tarball, string root) =>
        ProcessRunner.Run("tar", ["--numeric-owner", "--xattrs", "--xattrs-include=*", "-xpf", tarball, "-C", root]).EnsureSuccess("extract " + tarball);

    /// <summary>
    /// What an operator does before installing: adds environment variables to the bundle's <c>config.json</c> and,
    /// when given, replaces the ports the image exposes (the annotation the shim checks) by <paramref name="port"/>.
    /// Written back in Runcible's own format, which the shim reads line by line.
    /// </summary>
    public static void Configure(string bundle, int? port, params string[] environment)
    {
        var path = Path.Combine(bundle, RuntimeSpecGenerator.ConfigFileName);
        var config = JsonSerializer.Deserialize<RuntimeConfig>(File.ReadAllBytes(path)) ?? throw new InvalidOperationException(path);
        config.Process.Env.AddRange(environment);
        if (port is { } p)
        {
            config.Annotations ??= new(StringComparer.Ordinal);
            config.Annotations["org.opencontainers.image.exposedPorts"] = p.ToString(System.Globalization.CultureInfo.InvariantCulture) + "/tcp";
        }

        File.WriteAllBytes(path, RuntimeSpecGenerator.Serialize(config));

        // The health check's URL follows the port the test moved the app to.
        var infoPath = Path.Combine(bundle, RuntimeSpecGenerator.InfoFileName);
        if (port is { } moved && File.ReadAllText(infoPath).Contains("\"http\": \"http://127.0.0.1:8080/", StringComparison.Ordinal))
        {
            File.WriteAllText(infoPath, File.ReadAllText(infoPath).Replace("\"http\": \"http://127.0.0.1:8080/", $"\"http\": \"http://127.0.0.1:{moved}/", StringComparison.Ordinal));
        }
    }

    public void Dispose() => _cache.Dispose();
}
