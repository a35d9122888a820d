using System.Diagnostics;
using Runcible.Core.Bundle;
using Runcible.Core.Contracts;
using Runcible.Core.Diagnostics;
using Runcible.Core.IO;
using Runcible.Core.Oci;

namespace Runcible.Core.Images;

/// <summary>How the puller may reach content.</summary>
internal sealed record ImagePullerOptions
{
    /// <summary><c>RuncOffline</c>: registries are never contacted; the cache (and local sources) must hold everything.</summary>
    public bool Offline { get; init; }

    /// <summary>Layers of one image downloaded at once.</summary>
    public int MaxConcurrentLayers { get; init; } = 4;

    /// <summary>How often a long pull reports its progress.</summary>
    public TimeSpan ProgressInterval { get; init; } = TimeSpan.FromSeconds(2);
}

/// <summary>
/// The fetch stage: resolves a base image reference (a registry reference or a local source) for one
/// platform and brings its manifest, config and layers into the <see cref="ContentCache"/>, every byte
/// verified against its digest and size. A digest-pinned image already cached is served without any
/// request; an offline build of a tag uses the digest of the tag's last successful pull.
/// </summary>
internal sealed class ImagePuller : IBaseImageProvider
{
    private readonly ContentCache _cache;
    private readonly RegistrySourceFactory _registrySources;
    private readonly ImagePullerOptions _options;
    private readonly IBuildLog _log;

    public ImagePuller(ContentCache cache, RegistrySourceFactory registrySources, ImagePullerOptions options, IBuildLog log)
    {
        _cache = cache;
        _registrySources = registrySources;
        _options = options;
        _log = log;
    }

    public Task<PulledImage> PullAsync(string reference, Platform platform, CancellationToken cancellationToken) =>
        PullAsync(reference, platform, cacheOnly: false, cancellationToken);

    /// <summary>
    /// For a registry tag: the image the tag named at its last whole pull, if the cache still holds all of it
    /// (verified), without any request; else null. A republish builds on it while <see cref="PullAsync(string, Platform, CancellationToken)"/>
    /// asks the registry whether the tag still names it.
    /// </summary>
    public async Task<PulledImage?> TryGetLastPulledAsync(string reference, Platform platform, CancellationToken cancellationToken)
    {
        if (_options.Offline || LocalImageReference.IsLocal(reference) || !ImageReference.TryParse(reference, out var remote, out _) || remote.Digest is not null)
        {
            // Offline, local and digest-pinned pulls make no request when cached: nothing to overlap.
            return null;
        }

        try
        {
            return await PullAsync(reference, platform, cacheOnly: true, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            // Not (wholly) cached, not usable, or gone meanwhile: the registry's answer decides.
            return null;
        }
    }

    public void ForgetVerification(PulledImage image) =>
        _cache.ForgetVerification(image.Layers.Select(l => l.Descriptor.GetDigest()));

    private async Task<PulledImage> PullAsync(string reference, Platform platform, bool cacheOnly, CancellationToken cancellationToken)
    {
        var isLocal = LocalImageReference.IsLocal(reference);
        var local = isLocal ? LocalImageReference.Parse(reference) : null;
        var remote = isLocal ? null : ImageReference.Parse(reference);
        var sourceKey = remote is null ? reference : remote.Registry + "/" + remote.Repository;
        using var sources = new LazySource(() => local is not null ? LocalSources.Open(local, reference) : _registrySources(remote!.Registry, remote.Repository));
        var context = new PullContext(reference, sources, canFetch: !cacheOnly && (isLocal || !_options.Offline), sourceKey) { Quiet = cacheOnly };

        var (topBytes, topMediaType, topDigest) = local is not null
            ? await ReadLocalTopAsync(context, local, cancellationToken).ConfigureAwait(false)
            : await ResolveRemoteTopAsync(context, remote!, cancellationToken).ConfigureAwait(false);
        var document = ImageDocuments.ParseManifestOrIndex(topBytes, topMediaType, reference);
        Digest? indexDigest = null;
        var manifestDigest = topDigest;
        if (document.IsIndex)
        {
            indexDigest = topDigest;
            var chosen = PlatformSelector.Select(document.Index!.Manifests!, platform, reference);
            var bytes = await GetManifestAsync(context, chosen, cancellationToken).ConfigureAwait(false);
            document = ImageDocuments.ParseManifestOrIndex(bytes, chosen.MediaType, reference);
            if (document.IsIndex)
            {
                throw new RuncibleException(RuncibleErrors.MalformedImageDocument, reference, "index", $"the entry for {platform} is another index, not a manifest");
            }

            manifestDigest = chosen.GetDigest();
        }

        var manifest = document.Manifest!;
        var configDescriptor = manifest.Config!;
        ImageDocuments.CheckSize(configDescriptor.Size, "config", reference);
        // The config's bytes are hashed as read (TryReadSmallBlob): they go into config.json as they are.
        var configDigest = configDescriptor.GetDigest();
        byte[]? configBytes = null;
        for (var attempt = 1; configBytes is null; attempt++)
        {
            await GetBlobAsync(context, configDescriptor, "config", progress: null, cancellationToken).ConfigureAwait(false);
            configBytes = _cache.TryReadSmallBlob(configDigest, configDescriptor.Size);
            if (configBytes is null && attempt >= 2)
            {
                throw new RuncibleException(RuncibleErrors.ContentCacheUnusable, _cache.Directory, $"the config {configDigest} changed on disk while it was read");
            }
        }

        var config = ImageDocuments.ParseConfig(configBytes, reference, manifest.Layers!.Count);
        if (indexDigest is null)
        {
            PlatformSelector.EnsureMatches(config, platform, reference);
        }

        foreach (var layer in manifest.Layers)
        {
            if (MediaTypes.GetLayerCompression(layer.MediaType) is null)
            {
                throw new RuncibleException(RuncibleErrors.UnsupportedLayerMediaType, reference, layer.MediaType);
            }
        }

        var layers = await DownloadLayersAsync(context, manifest.Layers, cancellationToken).ConfigureAwait(false);

        // Only now, with everything it names verified and cached: a pull that failed half way must not make an
        // offline build use a manifest whose content is not there, instead of the image last pulled whole.
        if (context.ResolvedTag is { } resolvedTag)
        {
            _cache.RememberTag(context.SourceKey, resolvedTag, topDigest);
        }

        var localLayers = manifest.Layers
            .Select((layer, i) => new LocalLayer(layer, Digest.Parse(config.RootFs!.DiffIds![i]), layers[layer.Digest]))
            .ToList();
        return new PulledImage(reference, manifestDigest, indexDigest, manifest, configDescriptor.GetDigest(), configBytes, config, localLayers);
    }

    private static async Task<(byte[], string?, Digest)> ReadLocalTopAsync(PullContext context, LocalImageReference local, CancellationToken cancellationToken)
    {
        var content = await context.Sources.Value.GetManifestAsync(local.Digest?.ToString() ?? local.Tag ?? "", cancellationToken).ConfigureAwait(false);
        return (content.Bytes, string.IsNullOrEmpty(content.MediaType) ? null : content.MediaType, content.Digest);
    }

    private async Task<(byte[], string?, Digest)> ResolveRemoteTopAsync(PullContext context, ImageReference remote, CancellationToken cancellationToken)
    {
        if (remote.Digest is { } pinned)
        {
            if (_cache.TryReadSmallBlob(pinned, null) is { } cached)
            {
                return (cached, null, pinned);
            }

            var fetched = await FetchManifestAsync(context, pinned.ToString(), pinned, expectedSize: null, cancellationToken).ConfigureAwait(false);
            return (fetched.Bytes, fetched.MediaType, pinned);
        }

        var tag = remote.Tag ?? ImageReference.DefaultTag;
        if (!context.CanFetch)
        {
            if (_cache.TryResolveTag(context.SourceKey, tag) is { } remembered && _cache.TryReadSmallBlob(remembered, null) is { } cachedTag)
            {
                if (!context.Quiet)
                {
                    _log.LogMessage($"Runcible: offline: {remote} is {remembered} as last resolved");
                }

                return (cachedTag, null, remembered);
            }

            throw new RuncibleException(RuncibleErrors.NotCachedOffline, remote.ToString(), _cache.Directory);
        }

        var content = await FetchManifestAsync(context, tag, expected: null, expectedSize: null, cancellationToken).ConfigureAwait(false);
        context.ResolvedTag = tag;
        return (content.Bytes, content.MediaType, content.Digest);
    }

    private async Task<byte[]> GetManifestAsync(PullContext context, Descriptor descriptor, CancellationToken cancellationToken)
    {
        ImageDocuments.CheckSize(descriptor.Size, "manifest", context.ImageName);
        var digest = descriptor.GetDigest();
        if (_cache.TryReadSmallBlob(digest, descriptor.Size) is { } cached)
        {
            return cached;
        }

        return (await FetchManifestAsync(context, digest.ToString(), digest, descriptor.Size, cancellationToken).ConfigureAwait(false)).Bytes;
    }

    /// <summary>Fetches a manifest from the source, verifies it (against the digest asked for, if any) and caches it.</summary>
    private async Task<ManifestContent> FetchManifestAsync(PullContext context, string tagOrDigest, Digest? expected, long? expectedSize, CancellationToken cancellationToken)
    {
        if (!context.CanFetch)
        {
            throw new RuncibleException(RuncibleErrors.NotCachedOffline, $"{context.ImageName} (manifest {tagOrDigest})", _cache.Directory);
        }

        var content = await context.Sources.Value.GetManifestAsync(tagOrDigest, cancellationToken).ConfigureAwait(false);
        ImageDocuments.CheckSize(content.Bytes.Length, "manifest", context.ImageName);
        var actual = Digest.ComputeSha256(content.Bytes);
        var wanted = expected ?? content.Digest;
        if (wanted.Algorithm == "sha256" && actual != wanted || expectedSize is { } size && size != content.Bytes.Length)
        {
            throw new RuncibleException(RuncibleErrors.ImageDigestMismatch, context.ImageName, "manifest", wanted, actual, content.Bytes.Length, expectedSize ?? content.Bytes.Length);
        }

        await _cache.AddBlobAsync(wanted, content.Bytes, "manifest", context.ImageName, cancellationToken).ConfigureAwait(false);
        return content with { Digest = wanted };
    }

    /// <summary>The blob's verified path in the cache, fetched (once more after a digest mismatch) when absent.</summary>
    private async Task<string> GetBlobAsync(PullContext context, Descriptor descriptor, string what, PullProgress? progress, CancellationToken cancellationToken)
    {
        var digest = descriptor.GetDigest();
        if (_cache.TryGetBlob(digest, descriptor.Size) is { } cached)
        {
            progress?.Cached(descriptor.Size);
            return cached;
        }

        if (!context.CanFetch)
        {
            throw new RuncibleException(RuncibleErrors.NotCachedOffline, $"{context.ImageName} ({what} {digest})", _cache.Directory);
        }

        for (var attempt = 1; ; attempt++)
        {
            long counted = 0;
            try
            {
                return await _cache.AddBlobAsync(digest, descriptor.Size, what, context.ImageName, destination =>
                    context.Sources.Value.CopyBlobAsync(descriptor, progress is null ? destination : new ProgressStream(destination, n =>
                    {
                        counted += n;
                        progress.Add(n);
                    }), cancellationToken), cancellationToken).ConfigureAwait(false);
            }
            catch (RuncibleException e) when (e.Error == RuncibleErrors.ImageDigestMismatch && attempt < 2)
            {
                // Bytes damaged on the way: fetch once more from scratch before giving up.
                progress?.Add(-counted);
                _log.LogMessage($"Runcible: {what} {digest} of {context.ImageName} failed verification; fetching it again");
            }
        }
    }

    private async Task<Dictionary<string, string>> DownloadLayersAsync(PullContext context, IReadOnlyList<Descriptor> layers, CancellationToken cancellationToken)
    {
        var unique = layers.GroupBy(l => l.Digest, StringComparer.Ordinal).Select(g => g.First()).ToList();
        var progress = new PullProgress(context.ImageName, unique.Sum(l => l.Size), _options.ProgressInterval, _log);
        using var gate = new SemaphoreSlim(Math.Max(1, _options.MaxConcurrentLayers));
        using var failed = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var tasks = unique.Select(async layer =>
        {
            await gate.WaitAsync(failed.Token).ConfigureAwait(false);
            try
            {
                return (layer.Digest, Path: await GetBlobAsync(context, layer, "layer", progress, failed.Token).ConfigureAwait(false));
            }
            catch
            {
                // One failed layer stops the others: the build fails anyway.
                await failed.CancelAsync().ConfigureAwait(false);
                throw;
            }
            finally
            {
                gate.Release();
            }
        }).ToList();

        try
        {
            await Task.WhenAll(tasks).ConfigureAwait(false);
        }
        catch (Exception) when (!cancellationToken.IsCancellationRequested
            && tasks.Select(t => t.Exception?.InnerException).FirstOrDefault(e => e is not null and not OperationCanceledException) is { } cause)
        {
            // Report the layer that failed, not the cancellations it caused in the others.
            System.Runtime.ExceptionServices.ExceptionDispatchInfo.Capture(cause).Throw();
        }

        progress.Finish();
        return tasks.ToDictionary(t => t.Result.Digest, t => t.Result.Path, StringComparer.Ordinal);
    }

    private sealed class PullContext(string imageName, LazySource sources, bool canFetch, string sourceKey)
    {
        public string ImageName { get; } = imageName;

        public LazySource Sources { get; } = sources;

        public bool CanFetch { get; } = canFetch;

        public string SourceKey { get; } = sourceKey;

        /// <summary>A cache-only look-up on the side of a real pull: it reports nothing of its own.</summary>
        public bool Quiet { get; init; }

        /// <summary>The tag resolved online, remembered for offline builds once the pull has succeeded.</summary>
        public string? ResolvedTag { get; set; }
    }

    /// <summary>Opens the source only when something must actually be fetched (a cached pull makes no request).</summary>
    private sealed class LazySource(Func<IImageSource> open) : IDisposable
    {
        private readonly Lazy<IImageSource> _source = new(open, LazyThreadSafetyMode.ExecutionAndPublication);

        public IImageSource Value => _source.Value;

        public void Dispose()
        {
            if (_source.IsValueCreated)
            {
                _source.Value.Dispose();
            }
        }
    }

    /// <summary>Bytes done over bytes to do, logged at most once per interval, with the rate.</summary>
    private sealed class PullProgress(string imageName, long total, TimeSpan interval, IBuildLog log)
    {
        private readonly Stopwatch _clock = Stopwatch.StartNew();
        private readonly object _gate = new();
        private long _done;
        private long _cached;
        private TimeSpan _lastReport;

        public void Cached(long bytes) => Interlocked.Add(ref _cached, bytes);

        public void Add(long bytes)
        {
            Interlocked.Add(ref _done, bytes);
            if (_clock.Elapsed - _lastReport < interval)
            {
                return;
            }

            lock (_gate)
            {
                if (_clock.Elapsed - _lastReport < interval)
                {
                    return;
                }

                _lastReport = _clock.Elapsed;
                Report("pulling");
            }
        }

        public void Finish()
        {
            if (Interlocked.Read(ref _done) > 0)
            {
                Report("pulled");
            }
        }

        private void Report(string verb)
        {
            var done = Interlocked.Read(ref _done);
            var rate = done / Math.Max(_clock.Elapsed.TotalSeconds, 0.001);
            var cached = Interlocked.Read(ref _cached);
            log.LogMessage(
                $"Runcible: {verb} {imageName}: {Mib(done)} of {Mib(total - cached)} MiB ({Mib((long)rate)} MiB/s){(cached > 0 ? $", {Mib(cached)} MiB already cached" : "")}",
                important: true);
        }

        private static string Mib(long bytes) => (bytes / 1048576.0).ToString("0.0", System.Globalization.CultureInfo.InvariantCulture);
    }

    /// <summary>Counts what a source writes, for progress.</summary>
    private sealed class ProgressStream(Stream inner, Action<long> written) : ForwardWriteStream
    {
        public override long Length => inner.Length;

        public override long Position
        {
            get => inner.Position;
            set => throw new NotSupportedException();
        }

        public override void Flush() => inner.Flush();

        public override Task FlushAsync(CancellationToken cancellationToken) => inner.FlushAsync(cancellationToken);

        public override void Write(ReadOnlySpan<byte> buffer)
        {
            inner.Write(buffer);
            written(buffer.Length);
        }

        public override async ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
        {
            await inner.WriteAsync(buffer, cancellationToken).ConfigureAwait(false);
            written(buffer.Length);
        }

        public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
            WriteAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();
    }
}
