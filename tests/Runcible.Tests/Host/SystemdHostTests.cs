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

    [Fact]
    public Task TheContainerIsInTheServicesCgroupSubtreeAndNoCgroupOutlivesAStartOrTheService() =>
        ServiceCgroupScenarios.ContainerInTheUnitsCgroupAsync(fixture.Host);

    [Fact]
    public Task TheUnitsMemoryMaxBindsTheAppWithoutALimitsFile() =>
        ServiceCgroupScenarios.UnitMemoryMaxBindsTheAppAsync(fixture.Host);

    [Fact]
    public Task ACredentialOfALoadCredentialDropInIsTheAppsSecretAndNowhereElse() =>
        ServiceCgroupScenarios.LoadCredentialReachesRunSecretsAsync(fixture.Host);

    [Fact]
    public Task RootlessPrivateBundleIsAUserServicePublishedThroughPasta() =>
        RootlessNetworkScenarios.RootlessPrivateUserServiceAsync(fixture.Host);
}
