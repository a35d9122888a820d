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
        var image = await _stages.Images.PullAsync(request.BaseImageReference, platform, cancellationToken).ConfigureAwait(false);
        var pulled = clock.Elapsed;

        using var rootfs = _stages.Flattener.Flatten(image);
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
        var result = _writer.Write(content, request.OutputDirectory);
        // Where a build's time went, at detailed verbosity: the figures docs/performance.md reasons with.
        _log.LogMessage($"Runcible: pull {pulled.TotalMilliseconds:F0} ms, config {(configured - pulled).TotalMilliseconds:F0} ms, write {(clock.Elapsed - configured).TotalMilliseconds:F0} ms");
        return result;
    }
}
