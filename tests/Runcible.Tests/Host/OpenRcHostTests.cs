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
