using System.Text.Json;
using Runcible.Tests.Infrastructure;
using Runcible.Tests.Infrastructure.Registry;
using Runcible.Tests.Sdk;

namespace Runcible.Tests.EndToEnd;

/// <summary>
/// A project set up the .NET SDK's way publishes as the SDK would containerize it: no runtime identifier (the
/// SDK's linux-&lt;its architecture&gt;), the SDK's own working directory spelling <c>/app/</c>, ContainerRepository
/// naming the bundle, a property a bundle cannot honour warned about once, generated labels with the creation
/// time from SOURCE_DATE_EPOCH; and the bundle runs under runc.
/// </summary>
[Collection(SdkPackageCollection.Name)]
public sealed class SdkConventionsPublishTests(SdkPackageFixture sdk, SharedRegistries registries)
{
    [Fact]
    public async Task AWorkerPublishedWithoutARuntimeIdentifierTheSdksWayRuns()
    {
        var registry = await registries.AnonymousAsync();
        using var work = new TempDirectory("runcible-e2e-sdk");
        var project = SampleProjects.Copy(sdk, "HelloWorker");
        var environment = sdk.Environment;
        environment["SOURCE_DATE_EPOCH"] = "1700000000";
        var publish = SampleProjects.PublishFor(project, null, registry.Host + "/runtime:latest", work.Combine("cache"), environment,
                "-clp:NoSummary", "-p:ContainerWorkingDirectory=/app/", "-p:ContainerImageTags=1.0.0%3Blatest", "-p:ContainerRepository=myorg/ticker")
            .EnsureSuccess("publish HelloWorker without -r");
        Assert.Single(System.Text.RegularExpressions.Regex.Matches(publish.StandardOutput, "warning RUNCIBLE4041: [^\n]*ContainerImageTags"));
        // The pull's progress shows at the default verbosity, also when the early base part pulled.
        Assert.Contains("Runcible: pulled " + registry.Host + "/runtime:latest", publish.StandardOutput);

        // No RID: the publish output is portable, under bin/Release/net10.0/, and so is the tarball.
        var tarball = Path.Combine(Path.GetDirectoryName(project)!, "bin", "Release", "net10.0", "ticker-1.0.0.tar.gz");
        Assert.True(File.Exists(tarball), publish.StandardOutput);
        var root = work.Combine("root");
        Directory.CreateDirectory(root);
        PublishedSamples.Extract(tarball, root);
        var bundle = Path.Combine(root, "opt", "containers", "ticker-1.0.0");
        Assert.True(File.Exists(Path.Combine(bundle, "rootfs", "app", "HelloWorker.dll")));

        using (var manifest = JsonDocument.Parse(File.ReadAllBytes(Path.Combine(bundle, "bundle.json"))))
        {
            Assert.Equal("linux-x64", manifest.RootElement.GetProperty("runtimeIdentifier").GetString());
            var labels = manifest.RootElement.GetProperty("labels");
            Assert.Equal("2023-11-14T22:13:20.0000000Z", labels.GetProperty("org.opencontainers.image.created").GetString());
            Assert.Equal(registry.Host + "/runtime:latest", labels.GetProperty("org.opencontainers.image.base.name").GetString());
            Assert.Equal("10.0", labels.GetProperty("net.dot.runtime.majorminor").GetString());
        }

        using (var config = JsonDocument.Parse(File.ReadAllBytes(Path.Combine(bundle, "config.json"))))
        {
            Assert.Equal("/app", config.RootElement.GetProperty("process").GetProperty("cwd").GetString());
            Assert.Equal("2023-11-14T22:13:20.0000000Z", config.RootElement.GetProperty("annotations").GetProperty("org.opencontainers.image.created").GetString());
        }

        using var container = RuncContainer.Start(bundle, work.Combine("runc-state"));
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(90);
        while (!container.Output.Contains("tick 1", StringComparison.Ordinal))
        {
            Assert.False(container.HasExited || DateTime.UtcNow > deadline, "expected a tick from the worker:\n" + container.Output);
            await Task.Delay(200, TestContext.Current.CancellationToken);
        }

        Assert.Equal(0, container.Stop("TERM", TimeSpan.FromSeconds(30)));
    }
}
