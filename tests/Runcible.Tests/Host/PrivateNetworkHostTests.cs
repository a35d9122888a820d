namespace Runcible.Tests.Host;

/// <summary>One host boot in a network namespace of its own (<see cref="HostNetwork.Own"/>), for the private-network scenarios.</summary>
public abstract class PrivateNetworkHostFixture(HostInit init) : IDisposable
{
    public HostContainer Host { get; } = new(init, network: HostNetwork.Own);

    public void Dispose()
    {
        Host.Dispose();
        GC.SuppressFinalize(this);
    }
}

public sealed class SystemdPrivateNetworkHostFixture() : PrivateNetworkHostFixture(HostInit.Systemd);

public sealed class OpenRcPrivateNetworkHostFixture() : PrivateNetworkHostFixture(HostInit.OpenRc);

/// <summary>A RuncNetwork=private bundle as a service of the host's init system (<see cref="PrivateNetworkHostScenarios"/>).</summary>
public abstract class PrivateNetworkHostTests(HostContainer host)
{
    [Fact]
    public Task PrivateBundleAnswersOnItsPublishedPortIsSetUpAgainAfterCrashesAndLeavesTheHostNetworkAsItWas() =>
        PrivateNetworkHostScenarios.LifecycleAsync(host);

    [Fact]
    public Task PrivateBundleComesBackWithItsNetworkAfterAPowerCut() =>
        PrivateNetworkHostScenarios.PowerCutAsync(host);
}

public sealed class SystemdPrivateNetworkHostTests(SystemdPrivateNetworkHostFixture fixture)
    : PrivateNetworkHostTests(fixture.Host), IClassFixture<SystemdPrivateNetworkHostFixture>;

public sealed class OpenRcPrivateNetworkHostTests(OpenRcPrivateNetworkHostFixture fixture)
    : PrivateNetworkHostTests(fixture.Host), IClassFixture<OpenRcPrivateNetworkHostFixture>;
