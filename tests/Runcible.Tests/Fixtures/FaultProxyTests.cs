using System.Diagnostics;
using System.Net;
using System.Net.Http.Headers;
using System.Security.Cryptography;
using System.Text.Json;
using Runcible.Tests.Infrastructure;
using Runcible.Tests.Infrastructure.Registry;

namespace Runcible.Tests.Fixtures;

/// <summary>Each fault of <see cref="FaultProxy"/> is observable from a plain HttpClient in front of the real registry.</summary>
public sealed class FaultProxyTests(SharedRegistries registries)
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private sealed record Blob(string Path, string Digest, long Size);

    private async Task<(RegistryServer Registry, Blob Blob)> BusyboxLayerAsync()
    {
        var registry = await registries.AnonymousAsync();
        using var client = registry.CreateHttpClient();
        using var request = new HttpRequestMessage(HttpMethod.Get, "v2/busybox/manifests/latest");
        request.Headers.Accept.Add(new MediaTypeWithQualityHeaderValue("application/vnd.oci.image.manifest.v1+json"));
        using var response = await client.SendAsync(request, Ct);
        response.EnsureSuccessStatusCode();
        using var manifest = JsonDocument.Parse(await response.Content.ReadAsStringAsync(Ct));
        // The largest layer (busybox itself, about 1 MiB): big enough to span many reads.
        var layer = manifest.RootElement.GetProperty("layers").EnumerateArray().MaxBy(l => l.GetProperty("size").GetInt64());
        var digest = layer.GetProperty("digest").GetString()!;
        return (registry, new Blob($"v2/busybox/blobs/{digest}", digest, layer.GetProperty("size").GetInt64()));
    }

    private static HttpClient ClientFor(FaultProxy proxy) =>
        new(new SocketsHttpHandler { UseProxy = false, AllowAutoRedirect = false }) { BaseAddress = proxy.BaseAddress };

    private static string Sha256(byte[] bytes) => "sha256:" + Convert.ToHexStringLower(SHA256.HashData(bytes));

    [Fact]
    public async Task WithoutFaultsItPassesBytesThroughAndCountsEveryRequest()
    {
        var (registry, blob) = await BusyboxLayerAsync();
        await using var proxy = FaultProxy.Start(registry);
        using var client = ClientFor(proxy);
        Assert.Equal(0, proxy.RequestCount);

        var body = await client.GetByteArrayAsync(blob.Path, Ct);
        Assert.Equal(blob.Size, body.Length);
        Assert.Equal(blob.Digest, Sha256(body));

        using var ranged = new HttpRequestMessage(HttpMethod.Get, blob.Path) { Headers = { Range = new RangeHeaderValue(100, null) } };
        using var rangedResponse = await client.SendAsync(ranged, Ct);
        Assert.Equal(HttpStatusCode.PartialContent, rangedResponse.StatusCode);
        Assert.Equal(body[100..], await rangedResponse.Content.ReadAsByteArrayAsync(Ct));

        Assert.Equal(2, proxy.RequestCount);
        Assert.Equal([null, "bytes=100-"], proxy.Requests.Select(r => r.Range));
        Assert.Equal([200, 206], proxy.Requests.Select(r => r.Status));
        proxy.ResetRequests();
        Assert.Equal(0, proxy.RequestCount);
    }

    [Fact]
    public async Task ACutBlobEndsEarlyAndARangeRequestResumesIt()
    {
        var (registry, blob) = await BusyboxLayerAsync();
        await using var proxy = FaultProxy.Start(registry).CutAfter(300_000);
        using var client = ClientFor(proxy);

        using var first = await client.GetAsync(blob.Path, HttpCompletionOption.ResponseHeadersRead, Ct);
        Assert.Equal(HttpStatusCode.OK, first.StatusCode);
        var stream = await first.Content.ReadAsStreamAsync(Ct);
        var received = new MemoryStream();
        var failure = await Record.ExceptionAsync(() => stream.CopyToAsync(received, Ct));
        Assert.IsAssignableFrom<IOException>(failure);
        Assert.Equal(300_000, received.Length);

        using var resume = new HttpRequestMessage(HttpMethod.Get, blob.Path) { Headers = { Range = new RangeHeaderValue(received.Length, null) } };
        using var rest = await client.SendAsync(resume, Ct);
        Assert.Equal(HttpStatusCode.PartialContent, rest.StatusCode);
        received.Write(await rest.Content.ReadAsByteArrayAsync(Ct));
        Assert.Equal(blob.Digest, Sha256(received.ToArray()));
        Assert.Equal(["cut", null], proxy.Requests.Select(r => r.Fault));
        Assert.Equal("bytes=300000-", proxy.Requests[1].Range);
    }

    [Fact]
    public async Task TooManyRequestsAnswers429WithRetryAfterThenPasses()
    {
        var (registry, blob) = await BusyboxLayerAsync();
        await using var proxy = FaultProxy.Start(registry).TooManyRequests(times: 1, retryAfterSeconds: 2);
        using var client = ClientFor(proxy);

        using (var limited = await client.GetAsync(blob.Path, Ct))
        {
            Assert.Equal(HttpStatusCode.TooManyRequests, limited.StatusCode);
            Assert.Equal(TimeSpan.FromSeconds(2), limited.Headers.RetryAfter?.Delta);
        }

        using var passed = await client.GetAsync(blob.Path, Ct);
        Assert.Equal(HttpStatusCode.OK, passed.StatusCode);
        Assert.Equal(blob.Digest, Sha256(await passed.Content.ReadAsByteArrayAsync(Ct)));
        Assert.Equal([429, 200], proxy.Requests.Select(r => r.Status));
    }

    [Fact]
    public async Task ServiceUnavailableAnswers503TheGivenNumberOfTimes()
    {
        var (registry, _) = await BusyboxLayerAsync();
        await using var proxy = FaultProxy.Start(registry).ServiceUnavailable(times: 3, target: FaultTarget.Manifests);
        using var client = ClientFor(proxy);

        // The ping is not a manifest request: the fault leaves it alone.
        using (var ping = await client.GetAsync("v2/", Ct))
        {
            Assert.Equal(HttpStatusCode.OK, ping.StatusCode);
        }

        var statuses = new List<HttpStatusCode>();
        for (var i = 0; i < 4; i++)
        {
            using var request = new HttpRequestMessage(HttpMethod.Get, "v2/busybox/manifests/latest");
            request.Headers.Accept.Add(new MediaTypeWithQualityHeaderValue("application/vnd.oci.image.manifest.v1+json"));
            using var response = await client.SendAsync(request, Ct);
            statuses.Add(response.StatusCode);
        }

        Assert.Equal([HttpStatusCode.ServiceUnavailable, HttpStatusCode.ServiceUnavailable, HttpStatusCode.ServiceUnavailable, HttpStatusCode.OK], statuses);
        Assert.Equal(5, proxy.RequestCount);
    }

    [Fact]
    public async Task IgnoringRangeAnswers200WithTheWholeBody()
    {
        var (registry, blob) = await BusyboxLayerAsync();
        await using var proxy = FaultProxy.Start(registry).IgnoreRange();
        using var client = ClientFor(proxy);

        using var request = new HttpRequestMessage(HttpMethod.Get, blob.Path) { Headers = { Range = new RangeHeaderValue(1000, null) } };
        using var response = await client.SendAsync(request, Ct);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(blob.Digest, Sha256(await response.Content.ReadAsByteArrayAsync(Ct)));
        // The client did send Range; the proxy records it as received.
        Assert.Equal("bytes=1000-", proxy.Requests.Single().Range);
        Assert.Equal("ignore-range", proxy.Requests.Single().Fault);
    }

    [Fact]
    public async Task AFlippedByteChangesExactlyThatByte()
    {
        var (registry, blob) = await BusyboxLayerAsync();
        await using var proxy = FaultProxy.Start(registry).FlipByte(offset: 200_000);
        using var client = ClientFor(proxy);

        var corrupted = await client.GetByteArrayAsync(blob.Path, Ct);
        var intact = await client.GetByteArrayAsync(blob.Path, Ct);
        Assert.Equal(blob.Digest, Sha256(intact));
        Assert.NotEqual(blob.Digest, Sha256(corrupted));
        Assert.Equal(intact.Length, corrupted.Length);
        var differing = Enumerable.Range(0, intact.Length).Where(i => intact[i] != corrupted[i]).ToArray();
        Assert.Equal([200_000], differing);
        Assert.Equal((byte)(intact[200_000] ^ 0xFF), corrupted[200_000]);
    }

    [Fact]
    public async Task BodyFaultsWaitForAGetOfTheChosenPath()
    {
        var (registry, blob) = await BusyboxLayerAsync();
        await using var proxy = FaultProxy.Start(registry).CutAfter(10, pathContains: blob.Digest);
        using var client = ClientFor(proxy);

        // A HEAD of the blob and a GET of another path leave the fault armed.
        using (var head = await client.SendAsync(new HttpRequestMessage(HttpMethod.Head, blob.Path), Ct))
        {
            Assert.Equal(HttpStatusCode.OK, head.StatusCode);
        }

        using var manifestRequest = new HttpRequestMessage(HttpMethod.Get, "v2/busybox/manifests/latest");
        manifestRequest.Headers.Accept.Add(new MediaTypeWithQualityHeaderValue("application/vnd.oci.image.manifest.v1+json"));
        using (var manifest = await client.SendAsync(manifestRequest, Ct))
        {
            Assert.Equal(HttpStatusCode.OK, manifest.StatusCode);
        }

        var cut = await Record.ExceptionAsync(() => client.GetByteArrayAsync(blob.Path, Ct));
        Assert.True(cut is IOException || cut?.InnerException is IOException, $"expected a premature end, got {cut}");
        Assert.Equal([null, null, "cut"], proxy.Requests.Select(r => r.Fault));
    }

    [Fact]
    public async Task ADelayHoldsTheRequestBack()
    {
        var (registry, _) = await BusyboxLayerAsync();
        await using var proxy = FaultProxy.Start(registry).Delay(TimeSpan.FromMilliseconds(400), times: 1);
        using var client = ClientFor(proxy);

        var clock = Stopwatch.StartNew();
        using (var delayed = await client.GetAsync("v2/", Ct))
        {
            Assert.Equal(HttpStatusCode.OK, delayed.StatusCode);
        }

        Assert.True(clock.Elapsed >= TimeSpan.FromMilliseconds(380), $"answered after {clock.Elapsed}");
        Assert.Equal("delay", proxy.Requests.Single().Fault);
    }

    [Fact]
    public async Task ARedirectPointsBackAtTheSameTargetAndThenPassesThrough()
    {
        var (registry, blob) = await BusyboxLayerAsync();
        await using var proxy = FaultProxy.Start(registry).Redirect(times: 2, target: FaultTarget.Blobs);
        using var client = ClientFor(proxy);

        using (var first = await client.GetAsync(blob.Path, Ct))
        {
            Assert.Equal(HttpStatusCode.TemporaryRedirect, first.StatusCode);
            Assert.Equal("/" + blob.Path, first.Headers.Location?.OriginalString);
        }

        using (var second = await client.GetAsync(blob.Path, Ct))
        {
            Assert.Equal(HttpStatusCode.TemporaryRedirect, second.StatusCode);
        }

        Assert.Equal(blob.Digest, Sha256(await client.GetByteArrayAsync(blob.Path, Ct)));
        Assert.Equal(["redirect", "redirect", null], proxy.Requests.Select(r => r.Fault));
    }

    [Fact]
    public async Task AStalledBodyArrivesWholeAfterThePauseWithItsHeadAtOnce()
    {
        var (registry, blob) = await BusyboxLayerAsync();
        await using var proxy = FaultProxy.Start(registry).StallBody(TimeSpan.FromMilliseconds(600), target: FaultTarget.Blobs);
        using var client = ClientFor(proxy);

        var clock = Stopwatch.StartNew();
        using var response = await client.GetAsync(blob.Path, HttpCompletionOption.ResponseHeadersRead, Ct);
        var headAfter = clock.Elapsed;
        var body = await response.Content.ReadAsByteArrayAsync(Ct);

        Assert.True(headAfter < TimeSpan.FromMilliseconds(500), $"the head took {headAfter}");
        Assert.True(clock.Elapsed >= TimeSpan.FromMilliseconds(580), $"the body came after {clock.Elapsed}");
        Assert.Equal(blob.Digest, Sha256(body));
        Assert.Equal("stall", proxy.Requests.Single().Fault);
    }

    [Fact]
    public async Task ARealClientPushesAndPullsThroughTheProxy()
    {
        var registry = await registries.AnonymousAsync();
        await using var proxy = FaultProxy.Start(registry);

        // skopeo uploads blobs (POST, PATCH with a streamed body, PUT) and reads them back, all through the proxy.
        var reference = $"docker://{proxy.Host}/through-proxy/busybox:latest";
        ProcessRunner.Run("skopeo", "copy", "--quiet", "--insecure-policy", "--dest-tls-verify=false",
            FixtureImages.SkopeoReference(FixtureImages.Busybox), reference).EnsureSuccess("skopeo push through the proxy");
        using var pulled = new TempDirectory("runcible-proxy-pull");
        ProcessRunner.Run("skopeo", "copy", "--quiet", "--insecure-policy", "--src-tls-verify=false",
            reference, "oci:" + pulled.Combine("layout") + ":latest").EnsureSuccess("skopeo pull through the proxy");

        Assert.Contains(proxy.Requests, r => r.Method == "PATCH" || r.Method == "PUT");
        Assert.Contains(proxy.Requests, r => r.Method == "GET" && r.Target.Contains("/blobs/sha256:", StringComparison.Ordinal) && r.Status == 200);
    }
}
