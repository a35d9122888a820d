using System.Globalization;
using System.Net;
using System.Net.Sockets;
using Runcible.Core.Diagnostics;

namespace Runcible.Core.Contracts;

/// <summary><c>RuncNetwork</c>: which network namespace the container gets (docs/networking.md).</summary>
internal enum BundleNetwork
{
    /// <summary>The host's namespace: the app's ports are the host's (the default; the host needs only runc).</summary>
    Host,

    /// <summary>A namespace of its own on the shared <c>runcible0</c> bridge (rootful, CNI) with published ports.</summary>
    Private,

    /// <summary>A namespace of its own with loopback only.</summary>
    None,
}

/// <summary>
/// A port published from a private network: <paramref name="HostIp"/> (empty: every address) and
/// <paramref name="HostPort"/> on the host forward to <paramref name="ContainerPort"/> in the container.
/// </summary>
internal sealed record PublishedPort(string HostIp, int HostPort, int ContainerPort, string Protocol)
{
    /// <summary>
    /// The canonical text, <c>[HOST_IP:]HOST_PORT:CONTAINER_PORT/PROTOCOL</c> (IPv6 in brackets), which
    /// runcible.json carries and the shim's <c>ports</c> file uses.
    /// </summary>
    public override string ToString()
    {
        var ip = HostIp.Length == 0 ? "" : (HostIp.Contains(':', StringComparison.Ordinal) ? "[" + HostIp + "]" : HostIp) + ":";
        return string.Create(CultureInfo.InvariantCulture, $"{ip}{HostPort}:{ContainerPort}/{Protocol}");
    }

    /// <summary>
    /// Parses <c>[HOST_IP:]HOST_PORT:CONTAINER_PORT[/tcp|udp]</c>; null with the reason in
    /// <paramref name="problem"/> when it is not that.
    /// </summary>
    public static PublishedPort? TryParse(string text, out string problem)
    {
        problem = "";
        var value = text.Trim();
        var protocol = "tcp";
        var slash = value.LastIndexOf('/');
        if (slash >= 0)
        {
            protocol = value[(slash + 1)..].ToLowerInvariant();
            value = value[..slash];
            if (protocol is not ("tcp" or "udp"))
            {
                problem = "the protocol must be tcp or udp";
                return null;
            }
        }

        var hostIp = "";
        if (value.StartsWith('['))
        {
            var close = value.IndexOf("]:", StringComparison.Ordinal);
            if (close < 0)
            {
                problem = "an IPv6 host address is written in brackets followed by ':' ([::1]:8080:80)";
                return null;
            }

            hostIp = value[1..close];
            value = value[(close + 2)..];
            if (!IPAddress.TryParse(hostIp, out var v6) || v6.AddressFamily != AddressFamily.InterNetworkV6 || hostIp.Contains('%', StringComparison.Ordinal))
            {
                problem = $"'{hostIp}' is not an IPv6 address";
                return null;
            }

            hostIp = v6.ToString();
        }

        var parts = value.Split(':');
        if (hostIp.Length == 0 && parts.Length == 3)
        {
            if (!IPAddress.TryParse(parts[0], out var v4) || v4.AddressFamily != AddressFamily.InterNetwork || v4.ToString() != parts[0])
            {
                problem = $"'{parts[0]}' is not an IPv4 address (write IPv6 in brackets)";
                return null;
            }

            hostIp = parts[0];
            parts = parts[1..];
        }

        if (parts.Length != 2)
        {
            problem = "it needs a host port and a container port separated by ':'";
            return null;
        }

        if (!TryPort(parts[0], out var hostPort) || !TryPort(parts[1], out var containerPort))
        {
            problem = "ports are whole numbers from 1 to 65535";
            return null;
        }

        return new PublishedPort(hostIp, hostPort, containerPort, protocol);
    }

    /// <summary>
    /// What a private network publishes: the <c>RuncPublishPort</c> items, then every <c>ContainerPort</c>
    /// (<c>8080</c> or <c>8080/tcp</c>) no item already forwards to, at the same number on the host.
    /// </summary>
    public static IReadOnlyList<PublishedPort> Effective(IReadOnlyList<PublishedPort> explicitPorts, IEnumerable<string> containerPorts)
    {
        var result = new List<PublishedPort>(explicitPorts);
        foreach (var item in containerPorts)
        {
            var parts = item.Trim().Split('/');
            var protocol = parts.Length > 1 ? parts[1].Trim().ToLowerInvariant() : "tcp";
            if (parts.Length > 2 || !TryPort(parts[0], out var port) || protocol is not ("tcp" or "udp"))
            {
                throw new RuncibleException(RuncibleErrors.InvalidContainerPort, item);
            }

            if (!result.Any(p => p.ContainerPort == port && p.Protocol == protocol))
            {
                result.Add(new PublishedPort("", port, port, protocol));
            }
        }

        CheckDistinct(result);
        return result;
    }

    /// <summary>Two ports may not claim the same host port and protocol on overlapping addresses.</summary>
    public static void CheckDistinct(IReadOnlyList<PublishedPort> ports)
    {
        for (var i = 0; i < ports.Count; i++)
        {
            for (var j = 0; j < i; j++)
            {
                var (a, b) = (ports[i], ports[j]);
                if (a.HostPort == b.HostPort && a.Protocol == b.Protocol && (a.HostIp.Length == 0 || b.HostIp.Length == 0 || a.HostIp == b.HostIp))
                {
                    throw new RuncibleException(RuncibleErrors.InvalidPublishPort, a.ToString(),
                        $"host port {a.HostPort}/{a.Protocol} is already published by {b}");
                }
            }
        }
    }

    private static bool TryPort(string text, out int port) =>
        int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out port) && port is >= 1 and <= 65535 && text == port.ToString(CultureInfo.InvariantCulture);
}
