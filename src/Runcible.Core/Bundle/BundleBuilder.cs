using Runcible.Core.Diagnostics;
using Runcible.Core.Oci;

namespace Runcible.Core.Bundle;

/// <summary>One publish: base reference, publish output, validated settings, where to write.</summary>
public sealed record BundleRequest(
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
public sealed class BundleBuilder
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

    /// <summary>Flattens, configures and writes the bundle of <paramref name="image"/> up to its commit; <paramref name="stages"/> says where the time went.</summary>
    private BundleWriter.PendingBundle Prepare(BundleRequest request, Oci.PulledImage image, out string stages, CancellationToken cancellationToken)
    {
        try
        {
            return PrepareCore(request, image, out stages, cancellationToken);
        }
        catch (RuncibleException e) when (e.Error == RuncibleErrors.CorruptLayer || e.Error == RuncibleErrors.LayerDiffIdMismatch)
        {
            // A cached layer that passed its digest once may have been damaged on disk since: the next build
            // hashes the image's blobs again (and fetches a damaged one anew) instead of trusting the record.
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
            extraFiles);
        cancellationToken.ThrowIfCancellationRequested();
        var pending = _writer.Prepare(content, request.OutputDirectory);

        // Where a build's time went, at detailed verbosity: the figures docs/performance.md reasons with.
        stages = $"config {configured.TotalMilliseconds:F0} ms, write {(clock.Elapsed - configured).TotalMilliseconds:F0} ms";
        return pending;
    }
}
