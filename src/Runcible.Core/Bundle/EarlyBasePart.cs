using Runcible.Core.Contracts;
using Runcible.Core.Diagnostics;

namespace Runcible.Core.Bundle;

/// <summary>
/// Objects kept for the rest of a build, by key: MSBuild's <c>RegisterTaskObject</c> (build lifetime), which disposes
/// what is left at the end of the build. A seam so the early base part is tested without MSBuild.
/// </summary>
internal interface IBuildObjectRegistry
{
    object? Get(string key);

    void Register(string key, IDisposable value);

    object? Unregister(string key);
}

/// <summary>
/// The early base part: a publish starts the app-independent part of the bundle (pull, rootfs reads, compressed base
/// part) at its first target, and the bundle task after the publish takes it over, when it was made for the same
/// <see cref="BasePartKey"/>. Its log is replayed into the bundle task's; its coded error is the bundle's.
/// </summary>
internal sealed class EarlyBasePart(IBuildObjectRegistry registry, string key)
{
    /// <summary>
    /// Whether preparing ahead is worth it: there is no tarball yet, or one of <paramref name="appInputs"/> (the
    /// compiled assembly, the sources, the project) is newer than it. Otherwise the bundle is probably up to date, and
    /// a publish with nothing to do must not ask a registry anything. <paramref name="reason"/> says why, for the log.
    /// </summary>
    public static bool IsWorthPreparing(string tarballPath, IEnumerable<string> appInputs, out string reason)
    {
        if (!File.Exists(tarballPath))
        {
            reason = $"there is no {tarballPath} yet";
            return true;
        }

        var written = File.GetLastWriteTimeUtc(tarballPath);
        if (appInputs.FirstOrDefault(i => File.GetLastWriteTimeUtc(i) > written) is { } changed)
        {
            reason = $"{changed} changed since {tarballPath} was written";
            return true;
        }

        reason = $"{tarballPath} is newer than the app";
        return false;
    }

    /// <summary>
    /// Starts the work for <paramref name="identity"/> unless this build already has some. <paramref name="createWork"/>
    /// gets the log the work must write to (shown later by <see cref="Complete"/>) and may throw a coded error, in which
    /// case nothing is started. Returns whether it started.
    /// </summary>
    public bool TryStart(BasePartKey identity, Func<IBuildLog, Func<CancellationToken, Task<PreparedBasePart>>> createWork)
    {
        if (registry.Get(key) is not null)
        {
            return false;
        }

        var preparation = new BasePreparation(identity);
        var work = createWork(preparation.Log);
        registry.Register(key, preparation);
        preparation.Start(work);
        return true;
    }

    /// <summary>
    /// Waits for the work an early call started, if any and if it is for <paramref name="identity"/>; its log is replayed
    /// (and <paramref name="log"/> becomes one that does not repeat its warnings), its coded failure is thrown here.
    /// Returns what it prepared, or null when there was nothing (or nothing usable): the bundle is then built as without it.
    /// </summary>
    public PreparedBasePart? Complete(BasePartKey identity, ref IBuildLog log, CancellationToken cancellationToken)
    {
        if (registry.Unregister(key) is not BasePreparation preparation)
        {
            return null;
        }

        using (preparation)
        {
            if (preparation.Identity != identity)
            {
                // Prepared for other settings than the ones the publish ended with: stopped (by the dispose) and not used.
                log.LogMessage("Runcible: the base part prepared ahead was for other settings; it is built now.");
                return null;
            }

            log = new DeduplicatingBuildLog(log);
            // What the work logged before this task ran is shown now; what it logs while this task waits, as it happens.
            preparation.Log.ForwardTo(log);
            try
            {
                return preparation.Completion.WaitAsync(cancellationToken).GetAwaiter().GetResult();
            }
            catch (RuncibleException)
            {
                // The same image and settings: building it again would fail the same way (after the same timeouts).
                throw;
            }
            catch (Exception e) when (!cancellationToken.IsCancellationRequested)
            {
                log.LogMessage($"Runcible: preparing the base part ahead failed ({e.GetType().Name}: {e.Message}); it is built now.");
                return null;
            }
            finally
            {
                preparation.Log.StopForwarding();
            }
        }
    }

    /// <summary>
    /// Work an early call left running, registered for the rest of the build: the call after the publish takes it over;
    /// if none does (the build failed before), the registry disposes it at the end of the build, which cancels it and
    /// waits for it to stop.
    /// </summary>
    private sealed class BasePreparation(BasePartKey identity) : IDisposable
    {
        private readonly CancellationTokenSource _cancellation = new();
        private int _disposed;

        public BasePartKey Identity { get; } = identity;

        public BufferedBuildLog Log { get; } = new();

        public Task<PreparedBasePart> Completion { get; private set; } = Task.FromCanceled<PreparedBasePart>(new CancellationToken(canceled: true));

        public void Start(Func<CancellationToken, Task<PreparedBasePart>> work) =>
            Completion = Task.Run(() => work(_cancellation.Token));

        public void Dispose()
        {
            if (Interlocked.Exchange(ref _disposed, 1) != 0)
            {
                return;
            }

            _cancellation.Cancel();
            try
            {
                Completion.GetAwaiter().GetResult();
            }
            catch (Exception)
            {
                // Cancelled, or failed: either way nothing is left running and nobody is waiting for the result.
            }

            _cancellation.Dispose();
        }
    }
}
