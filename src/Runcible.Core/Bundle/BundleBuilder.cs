using Runcible.Core.Contracts;
using Runcible.Core.Diagnostics;
using Runcible.Core.Oci;

namespace Runcible.Core.Bundle;

/// <summary>One publish: base reference, publish output, validated settings, where to write.</summary>
internal sealed record BundleRequest(
    string BaseImageReference,
    string PublishDirectory,
    BundleSettings Settings,
    ContainerSettings Container,
    string OutputDirectory);

/// <summary>
/// The publish pipeline: pull the base image, flatten it, generate config.json, and write the bundle
/// tarball with the app layer. Each stage is a seam (<see cref="BundleStages"/>) so the MSBuild task
/// and the tests compose the real or purpose-built stages.
/// </summary>
internal sealed class BundleBuilder
{
    private readonly BundleStages _stages;
    private readonly BundleWriter _writer;
    private readonly IBuildLog _log;

    public BundleBuilder(BundleStages stages, BundleWriter writer, IBuildLog log)
    {
        _stages = stages;
        _writer = writer;
        _log = log;
    }

    public async Task<BundleWriteResult> BuildAsync(BundleRequest request, CancellationToken cancellationToken)
    {
        if (!Directory.Exists(request.PublishDirectory))
        {
            throw new RuncibleException(RuncibleErrors.PublishDirectoryMissing, request.PublishDirectory);
        }

        var settings = request.Settings;
        var platform = Images.PlatformSelector.FromRuntimeIdentifier(settings.RuntimeIdentifier);
        _log.LogMessage($"Runcible: base image {request.BaseImageReference} for {platform}");
        var clock = System.Diagnostics.Stopwatch.StartNew();

        // The registry round trip that resolves a tag costs a republish about as much as all the rest of its
        // work. So, when the image the tag named last time is still cached whole, the bundle is written from it
        // while the registry is asked, and committed only if the tag still names that image (else written again).
        var pulling = Task.Run(() => _stages.Images.PullAsync(request.BaseImageReference, platform, cancellationToken), cancellationToken);

        // Once the registry has answered, that core has nothing to do: it frees the tarballs earlier builds replaced.
        var trash = _writer.ListTrash();
        var emptyingTrash = pulling.ContinueWith(_ => BundleWriter.EmptyTrash(trash), CancellationToken.None, TaskContinuationOptions.None, TaskScheduler.Default);
        try
        {
            var assumed = await _stages.Images.TryGetLastPulledAsync(request.BaseImageReference, platform, cancellationToken).ConfigureAwait(false);
            if (assumed is not null)
            {
                BundleWriter.PendingBundle? pending = null;
                System.Runtime.ExceptionServices.ExceptionDispatchInfo? failure = null;
                try
                {
                    pending = Prepare(request, assumed, out var stages, cancellationToken);
                    var image = await pulling.ConfigureAwait(false);
                    if (image.ManifestDigest == assumed.ManifestDigest)
                    {
                        _log.LogMessage($"Runcible: registry {clock.Elapsed.TotalMilliseconds:F0} ms (overlapped), {stages}");
                        cancellationToken.ThrowIfCancellationRequested();
                        return pending.Commit();
                    }

                    _log.LogMessage($"Runcible: {request.BaseImageReference} now names {image.ManifestDigest}, not {assumed.ManifestDigest} as at its last pull; writing the bundle again");
                }
                catch (Exception e) when (e is not OperationCanceledException && pending is null)
                {
                    // Written on the assumed image, the build failed: whether that is the answer depends on the registry's.
                    failure = System.Runtime.ExceptionServices.ExceptionDispatchInfo.Capture(e);
                    _log.LogMessage($"Runcible: the bundle of {assumed.ManifestDigest} (the tag's image at its last pull) failed: {e.Message}");
                }
                finally
                {
                    pending?.Dispose();
                }

                if (failure is not null && (await pulling.ConfigureAwait(false)).ManifestDigest == assumed.ManifestDigest)
                {
                    failure.Throw();
                }
            }

            var pulled = await pulling.ConfigureAwait(false);
            var pullTime = clock.Elapsed;
            using var fresh = Prepare(request, pulled, out var freshStages, cancellationToken);
            _log.LogMessage($"Runcible: pull {pullTime.TotalMilliseconds:F0} ms, {freshStages}");
            cancellationToken.ThrowIfCancellationRequested();
            return fresh.Commit();
        }
        finally
        {
            // Whatever happened, the pull is not left running (it uses the caller's registry connections), nor the clean-up.
            try
            {
                await pulling.ConfigureAwait(false);
            }
            catch (Exception)
            {
            }

            await emptyingTrash.ConfigureAwait(false);
        }
    }

    /// <summary>
    /// The part of a build that does not depend on the app: pulls the base image, reads what the config stage reads
    /// from its rootfs (remembered per image) and compresses the base part into the cache. A publish runs this while
    /// MSBuild compiles and copies the app, so that <see cref="BuildAsync"/> later finds all of it done. Errors are
    /// the ones <see cref="BuildAsync"/> would give for the same image and settings.
    /// </summary>
    /// <returns>The pulled image (within the same build, the bundle is built from it without asking the registry again) and whether the base part was compressed now.</returns>
    public async Task<PreparedBasePart> PrepareBasePartAsync(string baseImageReference, BundleSettings settings, ContainerSettings container, CancellationToken cancellationToken)
    {
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var platform = Images.PlatformSelector.FromRuntimeIdentifier(settings.RuntimeIdentifier);
        var image = await _stages.Images.PullAsync(baseImageReference, platform, cancellationToken).ConfigureAwait(false);
        var pullTime = clock.Elapsed;
        var configured = pullTime;
        var wrote = ForgettingVerificationIfDamaged(image, () =>
        {
            using var rootfs = _stages.Flattener.Flatten(image);
            cancellationToken.ThrowIfCancellationRequested();
            _stages.RuntimeConfig.Create(image, rootfs.Reader, settings, container);
            configured = clock.Elapsed;
            return _writer.EnsureBasePart(settings, rootfs, out _, cancellationToken);
        });
        _log.LogMessage($"Runcible: base part prepared ahead of the app: pull {pullTime.TotalMilliseconds:F0} ms, config {(configured - pullTime).TotalMilliseconds:F0} ms, write {(clock.Elapsed - configured).TotalMilliseconds:F0} ms");
        return new PreparedBasePart(image, wrote);
    }

    /// <summary>Flattens, configures and writes the bundle of <paramref name="image"/> up to its commit; <paramref name="stages"/> says where the time went.</summary>
    private BundleWriter.PendingBundle Prepare(BundleRequest request, Oci.PulledImage image, out string stages, CancellationToken cancellationToken)
    {
        string? timing = null;
        var pending = ForgettingVerificationIfDamaged(image, () => PrepareCore(request, image, out timing, cancellationToken));
        stages = timing!;
        return pending;
    }

    /// <summary>
    /// Runs <paramref name="work"/> on the layers of <paramref name="image"/>. A cached layer that passed its digest once
    /// may have been damaged on disk since: when one reads as damaged, the next build hashes the image's blobs again
    /// (and fetches a damaged one anew) instead of trusting the record.
    /// </summary>
    private T ForgettingVerificationIfDamaged<T>(Oci.PulledImage image, Func<T> work)
    {
        try
        {
            return work();
        }
        catch (RuncibleException e) when (e.Error == RuncibleErrors.CorruptLayer || e.Error == RuncibleErrors.LayerDiffIdMismatch)
        {
            _stages.Images.ForgetVerification(image);
            throw;
        }
    }

    private BundleWriter.PendingBundle PrepareCore(BundleRequest request, Oci.PulledImage image, out string stages, CancellationToken cancellationToken)
    {
        var settings = request.Settings;
        var clock = System.Diagnostics.Stopwatch.StartNew();
        using var rootfs = _stages.Flattener.Flatten(image);
        cancellationToken.ThrowIfCancellationRequested();
        AppLayer.CheckPlacement(rootfs.Reader, settings.WorkingDirectory, image.Reference);
        var config = _stages.RuntimeConfig.Create(image, rootfs.Reader, settings, request.Container);
        var extraFiles = _stages.HostRuntime?.Create(settings, config) ?? [];
        var configured = clock.Elapsed;
        var app = new AppLayer(request.PublishDirectory, settings.WorkingDirectory, request.Container.AppHostName, settings.Created);

        var content = new BundleContent(
            settings,
            rootfs,
            app,
            new BundleBaseImage(image.Reference, image.ManifestDigest.ToString(), image.Layers.Select(l => l.Descriptor.Digest.ToString()).ToList()),
            config.ConfigJson,
            config.ContainerUid,
            config.ContainerGid,
            config.DataDirectories,
            extraFiles,
            request.Container.Labels);
        cancellationToken.ThrowIfCancellationRequested();
        var pending = _writer.Prepare(content, request.OutputDirectory);

        // Where a build's time went, at detailed verbosity: the figures docs/performance.md reasons with.
        stages = $"config {configured.TotalMilliseconds:F0} ms, write {(clock.Elapsed - configured).TotalMilliseconds:F0} ms";
        return pending;
    }
}

/// <summary>What <see cref="BundleBuilder.PrepareBasePartAsync"/> did: the image it pulled, and whether it compressed the base part (false: it was cached).</summary>
internal sealed record PreparedBasePart(PulledImage Image, bool WroteBasePart);

/// <summary>
/// The fetch stage for a build whose base image was already pulled earlier in the same build (by
/// <see cref="BundleBuilder.PrepareBasePartAsync"/>): that pull's answer stands for the whole build, as one
/// resolution of the tag per build does in the .NET SDK, so the registry is not asked a second time.
/// Any other reference or platform goes to the real stage.
/// </summary>
internal sealed class PulledInThisBuild(IBaseImageProvider inner, string pulledReference, string runtimeIdentifier, PulledImage pulledImage) : IBaseImageProvider
{
    private readonly string _pulledPlatform = Images.PlatformSelector.FromRuntimeIdentifier(runtimeIdentifier).ToString();

    public Task<PulledImage> PullAsync(string reference, Platform platform, CancellationToken cancellationToken) =>
        IsThePulledOne(reference, platform) ? Task.FromResult(pulledImage) : inner.PullAsync(reference, platform, cancellationToken);

    // Nothing to speculate about: the answer is already here.
    public Task<PulledImage?> TryGetLastPulledAsync(string reference, Platform platform, CancellationToken cancellationToken) =>
        IsThePulledOne(reference, platform) ? Task.FromResult<PulledImage?>(null) : inner.TryGetLastPulledAsync(reference, platform, cancellationToken);

    public void ForgetVerification(PulledImage image) => inner.ForgetVerification(image);

    private bool IsThePulledOne(string reference, Platform platform) => reference == pulledReference && platform.ToString() == _pulledPlatform;
}
