using Runcible.Tests.EndToEnd;
using Runcible.Tests.Sdk;

namespace Runcible.Tests.Host;

/// <summary>The published HelloWeb sample as an OpenRC service (supervise-daemon) on an OpenRC host.</summary>
[Collection(SdkPackageCollection.Name)]
public sealed class OpenRcSampleTests(OpenRcHostFixture host, SdkPackageFixture sdk, PublishedSamples samples) : IClassFixture<OpenRcHostFixture>
{
    [Fact]
    public async Task HelloWebTarballServesHttpStopsGracefullyAndKeepsItsNotes() =>
        await SampleScenarios.HelloWebAsync(host.Host, await samples.TarballAsync(sdk, "HelloWeb", "aspnet:latest", "-p:RuncMemoryLimit=384M"));
}
