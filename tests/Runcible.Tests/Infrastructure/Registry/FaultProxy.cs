using System.Buffers;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace Runcible.Tests.Infrastructure.Registry;

/// <summary>Which requests a fault applies to.</summary>
public enum FaultTarget
{
    /// <summary>Every request.</summary>
    Any,

    /// <summary>GET/HEAD of <c>/v2/&lt;name&gt;/manifests/&lt;ref&gt;</c>.</summary>
    Manifests,

    /// <summary>GET/HEAD of <c>/v2/&lt;name&gt;/blobs/&lt;digest&gt;</c>.</summary>
    Blobs,
}

/// <summary>One request seen by a <see cref="FaultProxy"/>: what came in, what went out, which fault (if any) was applied.</summary>
public sealed record ProxiedRequest(string Method, string Target, string? Range, string? Authorization, int Status, string? Fault);

/// <summary>
/// A small HTTP/1.1 reverse proxy on 127.0.0.1 in front of a plain-HTTP <see cref="RegistryServer"/>, injecting
/// faults per test. Streams bodies (a 64 KiB buffer), never holds a whole blob in memory. Keep-alive on both sides.
/// <para>Public API:</para>
/// <list type="bullet">
/// <item><c>await using var proxy = FaultProxy.Start(registry);</c> (or <c>new FaultProxy(Uri upstream)</c>);
/// <see cref="Host"/> = <c>"127.0.0.1:port"</c>, <see cref="BaseAddress"/>. Point the client at the proxy's Host.</item>
/// <item>Faults, each applying to the next <c>times</c> matching requests (then the proxy passes through); a fault
/// matches by <see cref="FaultTarget"/> (default: blobs for body faults, any request otherwise) and, optionally, by a
/// substring of the request target (<c>pathContains</c>, e.g. a digest). Cut, flip and stall only apply to GETs:
/// <see cref="CutAfter"/> (close the connection after N bytes of a blob body), <see cref="Delay"/>,
/// <see cref="TooManyRequests"/> (429 + Retry-After), <see cref="ServiceUnavailable"/> (503), <see cref="Redirect"/> (307 to itself),
/// <see cref="IgnoreRange"/> (drop the Range header so the registry answers 200 with the full body),
/// <see cref="FlipByte"/> (XOR one body byte), <see cref="StallBody"/> (head at once, body after a pause), <see cref="ClearFaults"/>.</item>
/// <item>Counting: <see cref="RequestCount"/>, <see cref="Requests"/> (method, target, Range, status, fault),
/// <see cref="PullsOf"/>, <see cref="ResetRequests"/>; e.g. assert <c>proxy.RequestCount == 0</c> for an offline pull, or that a resumed
/// download sent <c>Range: bytes=N-</c>.</item>
/// </list>
/// </summary>
public sealed class FaultProxy : IAsyncDisposable
{
    private const int BufferSize = 64 * 1024;

    private readonly TcpListener _listener;
    private readonly DnsEndPoint _upstream;
    private readonly CancellationTokenSource _stopping = new();
    private readonly Task _acceptLoop;
    private readonly List<FaultRule> _faults = [];
    private readonly List<ProxiedRequest> _requests = [];
    private readonly List<TcpClient> _connections = [];

    public FaultProxy(Uri upstream)
    {
        if (upstream.Scheme != Uri.UriSchemeHttp)
        {
            throw new ArgumentException("The fault proxy fronts a plain-HTTP registry only.", nameof(upstream));
        }

        _upstream = new DnsEndPoint(upstream.Host, upstream.Port);
        _listener = new TcpListener(IPAddress.Loopback, 0);
        _listener.Start();
        Port = ((IPEndPoint)_listener.LocalEndpoint).Port;
        _acceptLoop = Task.Run(AcceptLoopAsync);
    }

    /// <summary>Starts a proxy in front of <paramref name="registry"/> (which must be plain HTTP).</summary>
    public static FaultProxy Start(RegistryServer registry) => new(registry.BaseAddress);

    public int Port { get; }

    /// <summary><c>127.0.0.1:&lt;port&gt;</c>.</summary>
    public string Host => $"127.0.0.1:{Port}";

    public Uri BaseAddress => new($"http://{Host}/");

    public int RequestCount
    {
        get
        {
            lock (_requests)
            {
                return _requests.Count;
            }
        }
    }

    /// <summary>Every request received so far, in arrival order (recorded when its response head is sent).</summary>
    public IReadOnlyList<ProxiedRequest> Requests
    {
        get
        {
            lock (_requests)
            {
                return [.. _requests];
            }
        }
    }

    /// <summary>
    /// Pulls of <paramref name="repository"/>:<paramref name="tag"/> so far: a pull GETs the tag's manifest once
    /// (everything after it is read by digest), also across processes (a <c>dotnet publish</c> pointed at <see cref="Host"/>).
    /// </summary>
    public int PullsOf(string repository, string tag) =>
        Requests.Count(r => r.Method == "GET" && r.Target.EndsWith("/" + repository + "/manifests/" + tag, StringComparison.Ordinal));

    public void ResetRequests()
    {
        lock (_requests)
        {
            _requests.Clear();
        }
    }

    /// <summary>Sends the response head and <paramref name="bytes"/> bytes of the body, then closes the connection.</summary>
    public FaultProxy CutAfter(long bytes, int times = 1, FaultTarget target = FaultTarget.Blobs, string? pathContains = null) =>
        Add(new FaultRule("cut", target, times, pathContains) { CutAfterBytes = bytes });

    /// <summary>Waits <paramref name="delay"/> before forwarding the request.</summary>
    public FaultProxy Delay(TimeSpan delay, int times = int.MaxValue, FaultTarget target = FaultTarget.Any, string? pathContains = null) =>
        Add(new FaultRule("delay", target, times, pathContains) { Delay = delay });

    /// <summary>Sends the response head at once, then waits <paramref name="stall"/> before sending the body (a server that stops mid-response).</summary>
    public FaultProxy StallBody(TimeSpan stall, int times = 1, FaultTarget target = FaultTarget.Any, string? pathContains = null) =>
        Add(new FaultRule("stall", target, times, pathContains) { StallBody = stall });

    /// <summary>Answers 429 with <c>Retry-After: &lt;seconds&gt;</c> (without asking the registry).</summary>
    public FaultProxy TooManyRequests(int times = 1, int retryAfterSeconds = 1, FaultTarget target = FaultTarget.Any, string? pathContains = null) =>
        Add(new FaultRule("429", target, times, pathContains) { Status = 429, RetryAfterSeconds = retryAfterSeconds });

    /// <summary>Answers <c>307 Temporary Redirect</c> to the very same target (without asking the registry): N of these in a row make a redirect chain of N hops.</summary>
    public FaultProxy Redirect(int times = 1, FaultTarget target = FaultTarget.Any, string? pathContains = null) =>
        Add(new FaultRule("redirect", target, times, pathContains) { Status = 307 });

    /// <summary>Answers 503 (without asking the registry).</summary>
    public FaultProxy ServiceUnavailable(int times = 1, FaultTarget target = FaultTarget.Any, string? pathContains = null) =>
        Add(new FaultRule("503", target, times, pathContains) { Status = 503 });

    /// <summary>Removes <c>Range</c>/<c>If-Range</c> from requests, so the registry answers 200 with the whole body.</summary>
    public FaultProxy IgnoreRange(int times = int.MaxValue, FaultTarget target = FaultTarget.Blobs, string? pathContains = null) =>
        Add(new FaultRule("ignore-range", target, times, pathContains) { StripRange = true });

    /// <summary>Flips (XOR 0xFF) the body byte at <paramref name="offset"/> of the response.</summary>
    public FaultProxy FlipByte(long offset = 0, int times = 1, FaultTarget target = FaultTarget.Blobs, string? pathContains = null) =>
        Add(new FaultRule("flip", target, times, pathContains) { FlipOffset = offset });

    public void ClearFaults()
    {
        lock (_faults)
        {
            _faults.Clear();
        }
    }

    private FaultProxy Add(FaultRule rule)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(rule.Remaining);
        lock (_faults)
        {
            _faults.Add(rule);
        }

        return this;
    }

    /// <summary>Takes every fault that applies to this request (consuming one of each one's uses).</summary>
    private List<FaultRule> TakeFaults(HttpHead request)
    {
        var kind = Classify(request);
        lock (_faults)
        {
            var taken = new List<FaultRule>();
            foreach (var rule in _faults)
            {
                // Body faults wait for a GET: a HEAD (or a non-matching path) must not use them up.
                var bodyFault = rule.CutAfterBytes is not null || rule.FlipOffset is not null || rule.StallBody is not null;
                if (rule.Remaining > 0
                    && (rule.Target == FaultTarget.Any || rule.Target == kind)
                    && (!bodyFault || request.Method == "GET")
                    && (rule.PathContains is null || request.Target.Contains(rule.PathContains, StringComparison.Ordinal)))
                {
                    rule.Remaining--;
                    taken.Add(rule);
                }
            }

            return taken;
        }
    }

    private static FaultTarget Classify(HttpHead request)
    {
        if (request.Method is not ("GET" or "HEAD"))
        {
            return FaultTarget.Any;
        }

        var path = request.Target.Split('?', 2)[0];
        return path.StartsWith("/v2/", StringComparison.Ordinal) && path.Contains("/blobs/sha", StringComparison.Ordinal) ? FaultTarget.Blobs
            : path.StartsWith("/v2/", StringComparison.Ordinal) && path.Contains("/manifests/", StringComparison.Ordinal) ? FaultTarget.Manifests
            : FaultTarget.Any;
    }

    private async Task AcceptLoopAsync()
    {
        while (!_stopping.IsCancellationRequested)
        {
            TcpClient client;
            try
            {
                client = await _listener.AcceptTcpClientAsync(_stopping.Token);
            }
            catch (Exception) when (_stopping.IsCancellationRequested)
            {
                return;
            }
            catch (SocketException)
            {
                return;
            }

            lock (_connections)
            {
                _connections.Add(client);
            }

            _ = Task.Run(() => ServeConnectionAsync(client));
        }
    }

    private async Task ServeConnectionAsync(TcpClient client)
    {
        TcpClient? upstreamClient = null;
        try
        {
            client.NoDelay = true;
            var downstream = client.GetStream();
            var token = _stopping.Token;
            while (!token.IsCancellationRequested)
            {
                var request = await HttpHead.ReadAsync(downstream, token);
                if (request is null)
                {
                    return;
                }

                var applied = TakeFaults(request);
                var names = applied.Count == 0 ? null : string.Join(",", applied.Select(f => f.Name));
                foreach (var delay in applied.Where(f => f.Delay is not null))
                {
                    await Task.Delay(delay.Delay!.Value, token);
                }

                if (applied.FirstOrDefault(f => f.Status is not null) is { } statusFault)
                {
                    await DiscardBodyAsync(request, downstream, token);
                    Record(request, statusFault.Status!.Value, names);
                    await WriteStatusAsync(downstream, statusFault, request.Target, token);
                    continue;
                }

                if (upstreamClient is null)
                {
                    upstreamClient = new TcpClient { NoDelay = true };
                    await upstreamClient.ConnectAsync(_upstream.Host, _upstream.Port, token);
                }

                var upstreamStream = upstreamClient.GetStream();
                var stripRange = applied.Any(f => f.StripRange);
                var fields = request.Fields.Where(f => !(stripRange && (f.Key.Equals("Range", StringComparison.OrdinalIgnoreCase) || f.Key.Equals("If-Range", StringComparison.OrdinalIgnoreCase))));
                await upstreamStream.WriteAsync(HttpHead.Format(request.StartLine, fields), token);
                await CopyBodyAsync(request, downstream, upstreamStream, null, null, token);

                var response = await HttpHead.ReadAsync(upstreamStream, token)
                    ?? throw new IOException("The registry closed the connection without answering.");
                Record(request, response.StatusCode, names);
                await downstream.WriteAsync(HttpHead.Format(response.StartLine, response.Fields), token);

                var cut = applied.FirstOrDefault(f => f.CutAfterBytes is not null)?.CutAfterBytes;
                var flip = applied.FirstOrDefault(f => f.FlipOffset is not null)?.FlipOffset;
                var hasBody = request.Method != "HEAD" && response.StatusCode is not (204 or 304) && response.StatusCode >= 200;
                if (hasBody && applied.FirstOrDefault(f => f.StallBody is not null)?.StallBody is { } stall)
                {
                    await downstream.FlushAsync(token);
                    await Task.Delay(stall, token);
                }

                var complete = !hasBody || await CopyBodyAsync(response, upstreamStream, downstream, cut, flip, token);
                await downstream.FlushAsync(token);
                if (!complete || IsClose(request) || IsClose(response))
                {
                    return;
                }
            }
        }
        catch (Exception e) when (e is IOException or SocketException or OperationCanceledException or InvalidDataException or ObjectDisposedException)
        {
            // Either side hung up (or a fault cut it): the connection ends, the proxy keeps serving others.
        }
        finally
        {
            upstreamClient?.Dispose();
            client.Dispose();
            lock (_connections)
            {
                _connections.Remove(client);
            }
        }
    }

    private void Record(HttpHead request, int status, string? fault)
    {
        request.Headers.TryGetValue("Range", out var range);
        request.Headers.TryGetValue("Authorization", out var authorization);
        lock (_requests)
        {
            _requests.Add(new ProxiedRequest(request.Method, request.Target, range, authorization, status, fault));
        }
    }

    private static bool IsClose(HttpHead head) =>
        head.Headers.TryGetValue("Connection", out var connection) && connection.Contains("close", StringComparison.OrdinalIgnoreCase);

    private static async Task WriteStatusAsync(Stream downstream, FaultRule fault, string target, CancellationToken token)
    {
        var (code, reason) = fault.Status switch
        {
            429 => ("TOOMANYREQUESTS", "Too Many Requests"),
            307 => ("REDIRECT", "Temporary Redirect"),
            _ => ("UNAVAILABLE", "Service Unavailable"),
        };
        var body = Encoding.UTF8.GetBytes($$"""{"errors":[{"code":"{{code}}","message":"injected by the test fault proxy"}]}""");
        var fields = new List<KeyValuePair<string, string>>
        {
            new("Content-Type", "application/json"),
            new("Content-Length", body.Length.ToString(CultureInfo.InvariantCulture)),
        };
        if (fault.Status == 307)
        {
            fields.Add(new("Location", target));
        }

        if (fault.RetryAfterSeconds is { } seconds)
        {
            fields.Add(new("Retry-After", seconds.ToString(CultureInfo.InvariantCulture)));
        }

        await downstream.WriteAsync(HttpHead.Format($"HTTP/1.1 {fault.Status} {reason}", fields), token);
        await downstream.WriteAsync(body, token);
        await downstream.FlushAsync(token);
    }

    private static Task DiscardBodyAsync(HttpHead request, Stream downstream, CancellationToken token) =>
        CopyBodyAsync(request, downstream, Stream.Null, null, null, token);

    /// <summary>
    /// Copies the body framed by <paramref name="head"/> (Content-Length, chunked, or until close), streaming.
    /// With <paramref name="cutAfter"/>, stops after that many body bytes and returns false (the caller closes).
    /// With <paramref name="flipOffset"/>, XORs the byte at that body offset.
    /// </summary>
    private static async Task<bool> CopyBodyAsync(HttpHead head, Stream from, Stream to, long? cutAfter, long? flipOffset, CancellationToken token)
    {
        var buffer = ArrayPool<byte>.Shared.Rent(BufferSize);
        try
        {
            long written = 0;

            // Writes body bytes, applying cut and flip; false once the cut point is reached.
            async Task<bool> EmitAsync(int count)
            {
                var allowed = cutAfter is { } limit ? (int)Math.Min(count, Math.Max(0, limit - written)) : count;
                if (flipOffset is { } offset && offset >= written && offset < written + allowed)
                {
                    buffer[offset - written] ^= 0xFF;
                }

                await to.WriteAsync(buffer.AsMemory(0, allowed), token);
                written += allowed;
                return cutAfter is not { } l || written < l;
            }

            if (head.IsChunked)
            {
                // Relay the chunked framing as is (it is what the client asked to parse); cut/flip count payload bytes.
                while (true)
                {
                    var sizeLine = await ReadLineAsync(from, token);
                    await WriteAsciiAsync(to, sizeLine + "\r\n", token);
                    var size = long.Parse(sizeLine.Split(';')[0].Trim(), NumberStyles.HexNumber, CultureInfo.InvariantCulture);
                    if (size == 0)
                    {
                        // Trailers, then the empty line.
                        string line;
                        do
                        {
                            line = await ReadLineAsync(from, token);
                            await WriteAsciiAsync(to, line + "\r\n", token);
                        }
                        while (line.Length > 0);
                        return true;
                    }

                    var left = size;
                    while (left > 0)
                    {
                        var read = await from.ReadAsync(buffer.AsMemory(0, (int)Math.Min(BufferSize, left)), token);
                        if (read == 0)
                        {
                            throw new IOException("Upstream closed in the middle of a chunk.");
                        }

                        left -= read;
                        if (!await EmitAsync(read))
                        {
                            return false;
                        }
                    }

                    await WriteAsciiAsync(to, await ReadLineAsync(from, token) + "\r\n", token);
                }
            }

            if (head.ContentLength is { } length)
            {
                var left = length;
                while (left > 0)
                {
                    var read = await from.ReadAsync(buffer.AsMemory(0, (int)Math.Min(BufferSize, left)), token);
                    if (read == 0)
                    {
                        throw new IOException("Upstream closed before the end of the body.");
                    }

                    left -= read;
                    if (!await EmitAsync(read))
                    {
                        return false;
                    }
                }

                return true;
            }

            // A request without framing has no body; a response without framing runs until the upstream closes.
            if (head.StatusCode == 0)
            {
                return true;
            }

            while (true)
            {
                var read = await from.ReadAsync(buffer.AsMemory(0, BufferSize), token);
                if (read == 0)
                {
                    return false;
                }

                if (!await EmitAsync(read))
                {
                    return false;
                }
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    private static async Task<string> ReadLineAsync(Stream stream, CancellationToken token)
    {
        var line = new StringBuilder();
        var one = new byte[1];
        while (true)
        {
            if (await stream.ReadAsync(one, token) == 0)
            {
                throw new IOException("Connection closed in the middle of a line.");
            }

            if (one[0] == '\n')
            {
                return line.ToString().TrimEnd('\r');
            }

            if (line.Length > 8192)
            {
                throw new InvalidDataException("Line too long.");
            }

            line.Append((char)one[0]);
        }
    }

    private static async Task WriteAsciiAsync(Stream stream, string text, CancellationToken token) =>
        await stream.WriteAsync(Encoding.ASCII.GetBytes(text), token);

    public async ValueTask DisposeAsync()
    {
        _stopping.Cancel();
        _listener.Stop();
        lock (_connections)
        {
            foreach (var connection in _connections)
            {
                connection.Dispose();
            }
        }

        try
        {
            await _acceptLoop;
        }
        catch (OperationCanceledException)
        {
        }

        _stopping.Dispose();
    }

    private sealed class FaultRule(string name, FaultTarget target, int times, string? pathContains)
    {
        public string? PathContains { get; } = pathContains;

        public string Name { get; } = name;

        public FaultTarget Target { get; } = target;

        public int Remaining { get; set; } = times;

        public long? CutAfterBytes { get; init; }

        public TimeSpan? Delay { get; init; }

        public int? Status { get; init; }

        public int? RetryAfterSeconds { get; init; }

        public bool StripRange { get; init; }

        public long? FlipOffset { get; init; }

        public TimeSpan? StallBody { get; init; }
    }
}
