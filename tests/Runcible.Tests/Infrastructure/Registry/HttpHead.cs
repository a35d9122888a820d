using System.Text;

namespace Runcible.Tests.Infrastructure.Registry;

/// <summary>
/// The head of an HTTP/1.1 message (request line or status line, then headers) as read by the test
/// servers (token server, fault proxy). Header names are case-insensitive; repeated headers keep the last.
/// </summary>
public sealed class HttpHead
{
    private const int MaxHeadBytes = 64 * 1024;

    private HttpHead(string startLine, List<KeyValuePair<string, string>> fields)
    {
        StartLine = startLine;
        Fields = fields;
        var headers = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
        foreach (var (name, value) in fields)
        {
            headers[name] = value;
        }

        Headers = headers;

        var parts = startLine.Split(' ', 3);
        Method = parts[0];
        Target = parts.Length > 1 ? parts[1] : "";
        if (startLine.StartsWith("HTTP/", StringComparison.Ordinal) && parts.Length > 1 && int.TryParse(parts[1], out var status))
        {
            StatusCode = status;
        }
    }

    public string StartLine { get; }

    /// <summary>For a request: the method. For a response: the protocol version.</summary>
    public string Method { get; }

    /// <summary>For a request: the target (path and query).</summary>
    public string Target { get; }

    /// <summary>For a response: the status code.</summary>
    public int StatusCode { get; }

    /// <summary>Header fields in the order received.</summary>
    public IReadOnlyList<KeyValuePair<string, string>> Fields { get; }

    public IReadOnlyDictionary<string, string> Headers { get; }

    public long? ContentLength =>
        Headers.TryGetValue("content-length", out var value) && long.TryParse(value, out var length) ? length : null;

    public bool IsChunked =>
        Headers.TryGetValue("transfer-encoding", out var value) && value.Contains("chunked", StringComparison.OrdinalIgnoreCase);

    /// <summary>
    /// Reads one head from <paramref name="stream"/>, byte by byte so nothing of the body is consumed.
    /// Null when the peer closed the connection before sending anything.
    /// </summary>
    public static async Task<HttpHead?> ReadAsync(Stream stream, CancellationToken cancellationToken)
    {
        var bytes = new List<byte>(512);
        var one = new byte[1];
        while (true)
        {
            var read = await stream.ReadAsync(one, cancellationToken);
            if (read == 0)
            {
                if (bytes.Count == 0)
                {
                    return null;
                }

                throw new InvalidDataException("The connection closed in the middle of an HTTP head.");
            }

            bytes.Add(one[0]);
            if (bytes.Count > MaxHeadBytes)
            {
                throw new InvalidDataException("HTTP head too large.");
            }

            var n = bytes.Count;
            if (n >= 4 && bytes[n - 4] == '\r' && bytes[n - 3] == '\n' && bytes[n - 2] == '\r' && bytes[n - 1] == '\n')
            {
                break;
            }
        }

        var lines = Encoding.Latin1.GetString(bytes.ToArray()).Split("\r\n");
        var fields = new List<KeyValuePair<string, string>>();
        foreach (var line in lines.Skip(1))
        {
            if (line.Length == 0)
            {
                continue;
            }

            var colon = line.IndexOf(':');
            if (colon <= 0)
            {
                throw new InvalidDataException($"Malformed header line '{line}'.");
            }

            fields.Add(new(line[..colon].Trim(), line[(colon + 1)..].Trim()));
        }

        return new HttpHead(lines[0], fields);
    }

    /// <summary>Serializes a head with the given start line and fields.</summary>
    public static byte[] Format(string startLine, IEnumerable<KeyValuePair<string, string>> fields)
    {
        var builder = new StringBuilder(startLine).Append("\r\n");
        foreach (var (name, value) in fields)
        {
            builder.Append(name).Append(": ").Append(value).Append("\r\n");
        }

        return Encoding.Latin1.GetBytes(builder.Append("\r\n").ToString());
    }
}
