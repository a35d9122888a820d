namespace Runcible.Tests.Host;

/// <summary>One systemd host boot (Debian bookworm, systemd as PID 1 under runc) shared by the scenarios of this class.</summary>
public sealed class SystemdHostFixture : IDisposable
{
    public HostContainer Host { get; } = new(HostInit.Systemd);

    public void Dispose() => Host.Dispose();
}

/// <summary>The bundle as a systemd service on a real systemd.</summary>
public sealed class SystemdHostTests(SystemdHostFixture fixture) : HostOperationTests(fixture.Host), IClassFixture<SystemdHostFixture>
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
    public Task RootlessBundleIsAUserServiceOfALingeringUnprivilegedUser() =>
        HostScenarios.RootlessUserServiceAsync(fixture.Host);
}

/// <summary>One Systemd host boot in a network namespace of its own (<see cref="HostNetwork.Own"/>), for the private-network scenarios.</summary>
public sealed class SystemdPrivateNetworkHostFixture : IDisposable
{
    public HostContainer Host { get; } = new(HostInit.Systemd, network: HostNetwork.Own);

    public void Dispose() => Host.Dispose();
}

/// <summary>A RuncNetwork=private bundle as a Systemd service (<see cref="PrivateNetworkHostScenarios"/>).</summary>
public sealed class SystemdPrivateNetworkHostTests(SystemdPrivateNetworkHostFixture fixture) : IClassFixture<SystemdPrivateNetworkHostFixture>
{
    [Fact]
    public Task PrivateBundleAnswersOnItsPublishedPortIsSetUpAgainAfterCrashesAndLeavesTheHostNetworkAsItWas() =>
        PrivateNetworkHostScenarios.LifecycleAsync(fixture.Host);

    [Fact]
    public Task PrivateBundleComesBackWithItsNetworkAfterAPowerCut() =>
        PrivateNetworkHostScenarios.PowerCutAsync(fixture.Host);
}
