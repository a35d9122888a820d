namespace Runcible.Tests.Host;

/// <summary>One OpenRC host boot (Debian bookworm, /sbin/openrc-init as PID 1 under runc) shared by the scenarios of this class.</summary>
public sealed class OpenRcHostFixture : IDisposable
{
    public HostContainer Host { get; } = new(HostInit.OpenRc);

    public void Dispose() => Host.Dispose();
}

/// <summary>The bundle as an OpenRC service (supervise-daemon) on a real OpenRC.</summary>
public sealed class OpenRcHostTests(OpenRcHostFixture fixture) : HostOperationTests(fixture.Host), IClassFixture<OpenRcHostFixture>
{
    [Fact]
    public Task ServiceAnswersRestartsWhenKilledStopsGracefullyAndComesBackAfterReboot() =>
        HostScenarios.ServiceLifecycleAsync(fixture.Host);

    [Fact]
    public Task UpgradeKeepsDataFailedUpgradeRollsBackRollbackAndUninstall() =>
        HostScenarios.UpgradeRollbackUninstallAsync(fixture.Host);

    [Fact]
    public Task WritableRootIsDiscardedOnRestartAndLowerRootfsUntouched() =>
        HostScenarios.WritableRootAsync(fixture.Host);

    [Fact]
    public Task LogsAreRotatedWithCopytruncateAndRuncibleLogsReadsTheRotatedFiles() =>
        HostOperationScenarios.OpenRcLogRotationAsync(fixture.Host);
}

/// <summary>One OpenRc host boot in a network namespace of its own (<see cref="HostNetwork.Own"/>), for the private-network scenarios.</summary>
public sealed class OpenRcPrivateNetworkHostFixture : IDisposable
{
    public HostContainer Host { get; } = new(HostInit.OpenRc, network: HostNetwork.Own);

    public void Dispose() => Host.Dispose();
}

/// <summary>A RuncNetwork=private bundle as a OpenRc service (<see cref="PrivateNetworkHostScenarios"/>).</summary>
public sealed class OpenRcPrivateNetworkHostTests(OpenRcPrivateNetworkHostFixture fixture) : IClassFixture<OpenRcPrivateNetworkHostFixture>
{
    [Fact]
    public Task PrivateBundleAnswersOnItsPublishedPortIsSetUpAgainAfterCrashesAndLeavesTheHostNetworkAsItWas() =>
        PrivateNetworkHostScenarios.LifecycleAsync(fixture.Host);

    [Fact]
    public Task PrivateBundleComesBackWithItsNetworkAfterAPowerCut() =>
        PrivateNetworkHostScenarios.PowerCutAsync(fixture.Host);
}
