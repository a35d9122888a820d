using Runcible.Core.Bundle;
using Runcible.Core.Contracts;
using Runcible.Core.Diagnostics;
using Runcible.Core.Oci;
using Runcible.Tests.Infrastructure;

namespace Runcible.Tests.Bundle;

/// <summary>
/// The early base part's orchestration in-process, with a build-engine double for MSBuild's task object registry:
/// what the bundle task does with the work a BeforeBuild call started.
/// </summary>
public sealed class EarlyBasePartTests
{
    private const string Key = "Runcible.BasePreparation/test";

    /// <summary>MSBuild's RegisterTaskObject (build lifetime), as a dictionary; <see cref="EndBuild"/> disposes what is left, as MSBuild does.</summary>
    private sealed class ObjectRegistry : IBuildObjectRegistry
    {
        private readonly Dictionary<string, IDisposable> _objects = new(StringComparer.Ordinal);

        public object? Get(string key) => _objects.GetValueOrDefault(key);

        public void Register(string key, IDisposable value) => _objects.Add(key, value);

        public object? Unregister(string key) => _objects.Remove(key, out var value) ? value : null;

        public void EndBuild()
        {
            foreach (var value in _objects.Values)
            {
                value.Dispose();
            }

            _objects.Clear();
        }
    }

    private static BasePartKey Identity(string version = "1.0.0") => new(
        $"/out/app-{version}.tar.gz", "mcr.microsoft.com/dotnet/runtime:10.0", "linux-x64", $"opt/containers/app-{version}/", 315532800,
        BundleCompression.Gzip, 2, false, "", "", "/cache", "1.0.0");

    private static PreparedBasePart Prepared()
    {
        var digest = Digest.ComputeSha256("base"u8.ToArray());
        return new PreparedBasePart(
            new PulledImage("mcr.microsoft.com/dotnet/runtime:10.0", digest, null, new ImageManifest { SchemaVersion = 2, Layers = [] }, digest, [], new ImageConfiguration { OS = "linux", Architecture = "amd64" }, []),
            WroteBasePart: true);
    }

    [Fact]
    public void TheEarlyWorkIsTakenOverWhenItsSettingsAreTheFinalOnes()
    {
        var registry = new ObjectRegistry();
        var early = new EarlyBasePart(registry, Key);
        var prepared = Prepared();
        var runs = 0;
        Assert.True(early.TryStart(Identity(), log => _ =>
        {
            Interlocked.Increment(ref runs);
            log.LogMessage("pulled early");
            log.LogWarning(RuncibleErrors.UnhonouredContainerProperty, "ContainerImageTag", "test");
            return Task.FromResult(prepared);
        }));
        // A second early call in the same build (another BeforeBuild hook) starts nothing more.
        Assert.False(early.TryStart(Identity(), _ => throw new InvalidOperationException("started twice")));

        var recording = new RecordingBuildLog();
        IBuildLog log = recording;
        var result = new EarlyBasePart(registry, Key).Complete(Identity(), ref log, TestContext.Current.CancellationToken);

        Assert.Same(prepared, result);
        Assert.Equal(1, runs);
        Assert.Contains("pulled early", recording.Messages);
        // The same warning, logged again by the bundle build itself, is shown once.
        log.LogWarning(RuncibleErrors.UnhonouredContainerProperty, "ContainerImageTag", "test");
        Assert.Single(recording.Warnings);
        // Taken over: nothing is left for the end of the build, and a second bundle call finds nothing.
        Assert.Null(registry.Get(Key));
        Assert.Null(new EarlyBasePart(registry, Key).Complete(Identity(), ref log, TestContext.Current.CancellationToken));
    }

    [Fact]
    public async Task TheEarlyWorkIsDroppedAndStoppedWhenTheSettingsChangedSince()
    {
        var registry = new ObjectRegistry();
        var cancelled = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        Assert.True(new EarlyBasePart(registry, Key).TryStart(Identity("1.0.0"), _ => async cancellationToken =>
        {
            await using (cancellationToken.Register(() => cancelled.TrySetResult()))
            {
                await Task.Delay(Timeout.Infinite, cancellationToken);
            }

            return Prepared();
        }));

        var recording = new RecordingBuildLog();
        IBuildLog log = recording;
        // A target set Version during the build (MinVer): the bundle is another one.
        Assert.Null(new EarlyBasePart(registry, Key).Complete(Identity("3.4.5"), ref log, TestContext.Current.CancellationToken));
        Assert.Contains(recording.Messages, m => m.Contains("prepared ahead was for other settings", StringComparison.Ordinal));
        await cancelled.Task.WaitAsync(TimeSpan.FromSeconds(10), TestContext.Current.CancellationToken);
        Assert.Null(registry.Get(Key));
    }

    [Fact]
    public void TheEarlyWorksCodedErrorIsTheBuildsOnceWithoutASecondAttempt()
    {
        var registry = new ObjectRegistry();
        var runs = 0;
        new EarlyBasePart(registry, Key).TryStart(Identity(), _ => _ =>
        {
            Interlocked.Increment(ref runs);
            throw new RuncibleException(RuncibleErrors.RegistryManifestNotFound, "localhost:5000/missing:1", "test");
        });

        IBuildLog log = new RecordingBuildLog();
        var e = Assert.Throws<RuncibleException>(() => new EarlyBasePart(registry, Key).Complete(Identity(), ref log, TestContext.Current.CancellationToken));
        Assert.Equal("RUNCIBLE1001", e.Code);
        Assert.Equal(1, runs);
        // Reported once: the work is gone, nothing replays it.
        Assert.Null(new EarlyBasePart(registry, Key).Complete(Identity(), ref log, TestContext.Current.CancellationToken));
    }

    [Fact]
    public void AnUnexpectedFailureOfTheEarlyWorkIsBuiltAgainNotReported()
    {
        var registry = new ObjectRegistry();
        new EarlyBasePart(registry, Key).TryStart(Identity(), _ => _ => throw new IOException("disk hiccup"));
        var recording = new RecordingBuildLog();
        IBuildLog log = recording;
        Assert.Null(new EarlyBasePart(registry, Key).Complete(Identity(), ref log, TestContext.Current.CancellationToken));
        Assert.Contains(recording.Messages, m => m.Contains("disk hiccup", StringComparison.Ordinal) && m.Contains("built now", StringComparison.Ordinal));
    }

    [Fact]
    public async Task WorkNobodyTookOverIsCancelledAtTheEndOfTheBuild()
    {
        var registry = new ObjectRegistry();
        var stopped = false;
        new EarlyBasePart(registry, Key).TryStart(Identity(), _ => async cancellationToken =>
        {
            try
            {
                await Task.Delay(Timeout.Infinite, cancellationToken);
                return Prepared();
            }
            finally
            {
                stopped = true;
            }
        });

        await Task.Yield();
        registry.EndBuild(); // the build failed before the bundle: MSBuild disposes the registered work
        Assert.True(stopped);
    }

    [Fact]
    public void ACreationErrorStartsNothing()
    {
        var registry = new ObjectRegistry();
        Assert.Throws<RuncibleException>(() => new EarlyBasePart(registry, Key).TryStart(Identity(), _ =>
            throw new RuncibleException(RuncibleErrors.CacheDirectoryNotPrivate, "/cache", "is writable by others", "me")));
        Assert.Null(registry.Get(Key));
    }

    [Fact]
    public void PreparingAheadIsWorthItOnlyWhenTheAppChangedSinceTheTarball()
    {
        using var temp = new TempDirectory();
        var tarball = temp.Combine("app-1.0.0.tar.gz");
        var assembly = temp.Combine("app.dll");
        File.WriteAllText(assembly, "app");
        Assert.True(EarlyBasePart.IsWorthPreparing(tarball, [assembly], out var reason));
        Assert.Contains("no ", reason, StringComparison.Ordinal);

        File.WriteAllText(tarball, "bundle");
        File.SetLastWriteTimeUtc(assembly, DateTime.UtcNow.AddMinutes(-1));
        Assert.False(EarlyBasePart.IsWorthPreparing(tarball, [assembly], out _));

        File.SetLastWriteTimeUtc(assembly, DateTime.UtcNow.AddMinutes(1));
        Assert.True(EarlyBasePart.IsWorthPreparing(tarball, [assembly], out reason));
        Assert.Contains(assembly, reason, StringComparison.Ordinal);
    }
}
