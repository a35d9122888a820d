using System.Diagnostics;
using Runcible.Core.Contracts;
using Runcible.Core.Diagnostics;
using Runcible.Core.Images;
using Runcible.Core.Oci;
using Runcible.Core.Registry;
using Runcible.Tests.Infrastructure;
using Runcible.Tests.Infrastructure.Registry;
using static Runcible.Tests.Registry.RegistryTestSupport;

namespace Runcible.Tests.Registry;

/// <summary>Through the fault-injecting proxy in front of the real registry: each fault ends with the right bytes or a coded error.</summary>
public sealed class RegistryFaultTests(SharedRegistries registries)
{
    private sealed record Setup(FaultProxy Proxy, RegistryClient Client, IImageSource Source, Descriptor Layer, RecordingBuildLog Log, TempDirectory Home)
        : IAsyncDisposable
    {
        public async ValueTask DisposeAsync()
        {
            Source.Dispose();
            Client.Dispose();
            await Proxy.DisposeAsync();
            Home.Dispose();
        }

        public IReadOnlyList<ProxiedRequest> BlobRequests =>
            [.. Proxy.Requests.Where(r => r.Method == "GET" && r.Target.Contains(Layer.Digest, StringComparison.Ordinal))];
    }

    /// <summary>A proxy in front of the anonymous registry, a client pointed at it, and the busybox image's largest layer (about 1 MiB).</summary>
    private async Task<Setup> StartAsync(int maxAttempts = 4)
    {
        var registry = await registries.AnonymousAsync();
        var proxy = FaultProxy.Start(registry);
        var home = new TempDirectory();
        var log = new RecordingBuildLog();
        var client = new RegistryClient(Options(home, log: log, maxAttempts: maxAttempts));
        var source = client.Open(proxy.Host, "busybox");
        var layer = LargestLayer(await source.GetManifestAsync("latest", Ct));
        Assert.True(layer.Size > 600_000, $"the busybox layer has only {layer.Size} bytes");
        proxy.ResetRequests();
        return new Setup(proxy, client, source, layer, log, home);
    }

    [Fact]
    public async Task ADownloadCutMidBlobResumesWithRangeAndEndsWithTheBlobsBytes()
    {
        await using var setup = await StartAsync();
        setup.Proxy.CutAfter(300_000, pathContains: setup.Layer.Digest);

        var bytes = await CopyBlobAsync(setup.Source, setup.Layer);

        Assert.Equal(setup.Layer.Digest, Sha256(bytes));
        var requests = setup.BlobRequests;
        Assert.Equal(2, requests.Count);
        Assert.Equal("cut", requests[0].Fault);
        Assert.Null(requests[0].Range);
        Assert.Equal("bytes=300000-", requests[1].Range);
        Assert.Equal(206, requests[1].Status);
    }

    [Fact]
    public async Task AServerIgnoringRangeAfterACutAnswers200AndTheWrittenBytesAreSkipped()
    {
        await using var setup = await StartAsync();
        setup.Proxy.IgnoreRange(pathContains: setup.Layer.Digest);
        setup.Proxy.CutAfter(250_000, pathContains: setup.Layer.Digest);

        var bytes = await CopyBlobAsync(setup.Source, setup.Layer);

        Assert.Equal(setup.Layer.Size, bytes.LongLength);
        Assert.Equal(setup.Layer.Digest, Sha256(bytes));
        var requests = setup.BlobRequests;
        Assert.Equal(2, requests.Count);
        Assert.Equal(200, requests[1].Status);
        Assert.Contains(setup.Log.Messages, m => m.Contains("ignored a Range request", StringComparison.Ordinal));
    }

    [Fact]
    public async Task SeveralCutsInOneDownloadEachResumeWhereTheLastStopped()
    {
        await using var setup = await StartAsync(maxAttempts: 2);
        // Three cuts with max 2 attempts: attempts that made progress do not use up the budget.
        setup.Proxy.CutAfter(100_000, times: 3, pathContains: setup.Layer.Digest);

        var bytes = await CopyBlobAsync(setup.Source, setup.Layer);

        Assert.Equal(setup.Layer.Digest, Sha256(bytes));
        Assert.Equal([null, "bytes=100000-", "bytes=200000-", "bytes=300000-"], setup.BlobRequests.Select(r => r.Range));
    }

    [Fact]
    public async Task TooManyRequestsWithRetryAfterIsWaitedOutThenTheBlobArrives()
    {
        await using var setup = await StartAsync();
        setup.Proxy.TooManyRequests(times: 1, retryAfterSeconds: 1, target: FaultTarget.Blobs, pathContains: setup.Layer.Digest);

        var clock = Stopwatch.StartNew();
        var bytes = await CopyBlobAsync(setup.Source, setup.Layer);

        // The backoff is 5 ms in these options: only Retry-After explains a wait of a second.
        Assert.True(clock.Elapsed >= TimeSpan.FromMilliseconds(950), $"waited only {clock.Elapsed}");
        Assert.Equal(setup.Layer.Digest, Sha256(bytes));
        Assert.Equal([429, 200], setup.BlobRequests.Select(r => r.Status));
    }

    [Fact]
    public async Task ARetryAfterLongerThanAllowedFailsAtOnceWithACodedError()
    {
        await using var setup = await StartAsync();
        setup.Proxy.TooManyRequests(times: 1, retryAfterSeconds: 3600, target: FaultTarget.Manifests);

        var error = await ThrowsCodeAsync("RUNCIBLE1011", () => setup.Source.GetManifestAsync("latest", Ct));
        Assert.Contains("3600", error.Message);
        Assert.Equal(1, setup.Proxy.RequestCount);
    }

    [Fact]
    public async Task Repeated503IsACodedErrorAfterABoundedNumberOfAttempts()
    {
        await using var setup = await StartAsync(maxAttempts: 4);
        setup.Proxy.ServiceUnavailable(times: 1000, target: FaultTarget.Blobs);

        var error = await ThrowsCodeAsync("RUNCIBLE1011", () => CopyBlobAsync(setup.Source, setup.Layer));
        Assert.Contains("503", error.Message);
        Assert.Contains(setup.Layer.Digest, error.Message);
        Assert.Equal(4, setup.BlobRequests.Count);
        Assert.All(setup.BlobRequests, r => Assert.Equal(503, r.Status));
        Assert.Equal(3, setup.Log.Messages.Count(m => m.Contains("503", StringComparison.Ordinal)));
    }

    [Fact]
    public async Task A503ThenSuccessOnTheManifestIsRetried()
    {
        await using var setup = await StartAsync();
        setup.Proxy.ServiceUnavailable(times: 2, target: FaultTarget.Manifests);

        var manifest = await setup.Source.GetManifestAsync("latest", Ct);
        Assert.Equal(LargestLayer(manifest).Digest, setup.Layer.Digest);
        Assert.Equal([503, 503, 200], setup.Proxy.Requests.Select(r => r.Status));
    }

    [Fact]
    public async Task FiveRedirectsAreFollowedAndASixthIsACodedError()
    {
        await using var setup = await StartAsync();
        setup.Proxy.Redirect(times: 5, target: FaultTarget.Manifests);

        var manifest = await setup.Source.GetManifestAsync("latest", Ct);
        Assert.Equal(LargestLayer(manifest).Digest, setup.Layer.Digest);
        Assert.Equal([307, 307, 307, 307, 307, 200], setup.Proxy.Requests.Select(r => r.Status));

        setup.Proxy.ResetRequests();
        setup.Proxy.Redirect(times: 6, target: FaultTarget.Manifests);
        var error = await ThrowsCodeAsync("RUNCIBLE1012", () => setup.Source.GetManifestAsync("latest", Ct));
        Assert.Contains("more than 5 redirects", error.Message);
        Assert.Equal(6, setup.Proxy.RequestCount);
    }

    [Fact]
    public async Task AManifestCutMidBodyIsFetchedAgain()
    {
        await using var setup = await StartAsync();
        setup.Proxy.CutAfter(20, target: FaultTarget.Manifests);

        var manifest = await setup.Source.GetManifestAsync("latest", Ct);
        Assert.Equal(Sha256(manifest.Bytes), manifest.Digest.ToString());
        Assert.Equal(2, setup.Proxy.Requests.Count(r => r.Target.Contains("/manifests/", StringComparison.Ordinal)));
    }

    [Theory]
    [InlineData(FaultTarget.Manifests)]
    [InlineData(FaultTarget.Blobs)]
    public async Task ABodyThatStallsAfterItsHeadIsAbandonedAfterTheRequestTimeoutAndFetchedAgain(FaultTarget target)
    {
        var registry = await registries.AnonymousAsync();
        await using var proxy = FaultProxy.Start(registry);
        using var home = new TempDirectory();
        var log = new RecordingBuildLog();
        using var client = new RegistryClient(Options(home, log: log, requestTimeout: TimeSpan.FromSeconds(2)));
        using var source = client.Open(proxy.Host, "busybox");
        var layer = LargestLayer(await source.GetManifestAsync("latest", Ct));
        proxy.ResetRequests();
        // Far longer than the request timeout: waiting it out would also end well, only later.
        proxy.StallBody(TimeSpan.FromSeconds(30), times: 1, target: target);

        var clock = Stopwatch.StartNew();
        if (target == FaultTarget.Manifests)
        {
            var manifest = await source.GetManifestAsync("latest", Ct);
            Assert.Equal(layer.Digest, LargestLayer(manifest).Digest);
        }
        else
        {
            Assert.Equal(layer.Digest, Sha256(await CopyBlobAsync(source, layer)));
        }

        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(15), $"took {clock.Elapsed}");
        Assert.Equal(["stall", null], proxy.Requests.Where(r => r.Method == "GET" && r.Target != "/v2/").Select(r => r.Fault));
        Assert.Contains(log.Messages, m => m.Contains("retry 1", StringComparison.Ordinal));
    }

    [Fact]
    public async Task FlippedBytesComeBackAsTheyWereServedAndAVerifyingCallerFetchesAgain()
    {
        await using var setup = await StartAsync();
        setup.Proxy.FlipByte(offset: 123_456, pathContains: setup.Layer.Digest);

        // What the puller does: copy, verify the digest, and on a mismatch discard and fetch once more.
        var first = await CopyBlobAsync(setup.Source, setup.Layer);
        Assert.Equal(setup.Layer.Size, first.LongLength);
        Assert.NotEqual(setup.Layer.Digest, Sha256(first));
        var second = await CopyBlobAsync(setup.Source, setup.Layer);
        Assert.Equal(setup.Layer.Digest, Sha256(second));

        Assert.Equal(2, setup.BlobRequests.Count);
    }

    [Fact]
    public async Task ARegistryNobodyListensOnIsACodedUnreachableError()
    {
        using var home = new TempDirectory();
        using var client = new RegistryClient(Options(home, maxAttempts: 2));
        var listener = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        listener.Start();
        var port = ((System.Net.IPEndPoint)listener.LocalEndpoint).Port;
        listener.Stop();
        using var source = client.Open($"127.0.0.1:{port}", "busybox");

        var error = await ThrowsCodeAsync("RUNCIBLE1010", () => source.GetManifestAsync("latest", Ct));
        Assert.Contains($"127.0.0.1:{port}", error.Message);
    }

    [Fact]
    public async Task DocumentsOver4MiBAreRefusedWhetherOrNotTheyDeclareTheirLength()
    {
        var big = new byte[RegistryClient.MaxDocumentBytes + 1];
        using var declared = new ByteArrayContent(big);
        var error = await ThrowsCodeAsync("RUNCIBLE1008", () => RegistryClient.ReadCappedAsync(declared, RegistryClient.MaxDocumentBytes, "r/x", "manifest 'latest'", Ct));
        Assert.Contains("manifest 'latest'", error.Message);

        using var undeclared = new StreamContent(new MemoryStream(big));
        undeclared.Headers.ContentLength = null;
        Assert.Null(undeclared.Headers.ContentLength is { } l && l > 0 ? (long?)l : null);
        await ThrowsCodeAsync("RUNCIBLE1008", () => RegistryClient.ReadCappedAsync(new NoLengthContent(big), RegistryClient.MaxDocumentBytes, "r/x", "token response", Ct));

        using var exact = new ByteArrayContent(big[..^1]);
        Assert.Equal(RegistryClient.MaxDocumentBytes, (await RegistryClient.ReadCappedAsync(exact, RegistryClient.MaxDocumentBytes, "r/x", "m", Ct)).Length);
    }

    /// <summary>Content whose length is unknown up front, like a chunked response.</summary>
    private sealed class NoLengthContent(byte[] bytes) : HttpContent
    {
        protected override Task SerializeToStreamAsync(Stream stream, System.Net.TransportContext? context) => stream.WriteAsync(bytes).AsTask();

        protected override bool TryComputeLength(out long length)
        {
            length = 0;
            return false;
        }
    }
}
