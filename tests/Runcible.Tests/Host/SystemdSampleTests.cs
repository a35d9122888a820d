using Runcible.Tests.EndToEnd;
using Runcible.Tests.Sdk;

namespace Runcible.Tests.Host;

/// <summary>
/// The published samples (packed SDK, <c>dotnet publish -p:PublishRuncBundle=true</c>, fixture base images) as
/// systemd services on a systemd host booted once for the class; each sample is published once per run.
/// </summary>
[Collection(SdkPackageCollection.Name)]
public sealed class SystemdSampleTests(SystemdHostFixture host, SdkPackageFixture sdk, PublishedSamples samples) : IClassFixture<SystemdHostFixture>
{
    [Fact]
    public async Task HelloWebTarballServesHttpStopsGracefullyAndKeepsItsNotes() =>
        await SampleScenarios.HelloWebAsync(host.Host, await samples.TarballAsync(sdk, "HelloWeb", "aspnet:latest", "-p:RuncMemoryLimit=384M"));

    [Fact]
    public async Task HelloWorkerIsActiveOnlyAfterItReportedReady() =>
        await SampleScenarios.HelloWorkerReadinessAsync(host.Host, await samples.TarballAsync(sdk, "HelloWorker", "runtime:latest"));

    [Fact]
    public async Task HelloWebPublishedRootlessIsAUserServiceOfAnUnprivilegedUser() =>
        await SampleScenarios.HelloWebRootlessAsync(host.Host, await samples.TarballAsync(sdk, "HelloWeb", "aspnet:latest", "-p:RuncBundleRootless=true"));
}
