using System.Formats.Tar;
using Runcible.Core.Bundle;
using Runcible.Core.Contracts;

namespace Runcible.Tests.Bundle;

/// <summary>
/// A small, deterministic base rootfs for bundle tests: a few directories, /etc/passwd, a symlink
/// and one larger pseudo-random file so the base part spans several compression chunks.
/// </summary>
internal sealed class TestRootfs(string cacheKey, int bigFileBytes = 3 * 1024 * 1024, bool failMidway = false) : IRootfsContent
{
    public static readonly DateTimeOffset Time = DateTimeOffset.FromUnixTimeSeconds(1600000000);

    public int WriteCount { get; private set; }

    public string CacheKey => cacheKey;

    public void WriteEntries(TarWriter writer, string prefix)
    {
        WriteCount++;
        writer.WriteEntry(Dir(prefix + "etc/"));
        writer.WriteEntry(File(prefix + "etc/passwd", "root:x:0:0:root:/root:/bin/sh\napp:x:1654:1654::/home/app:/bin/sh\n"u8.ToArray(), 0b110_100_100));
        writer.WriteEntry(Dir(prefix + "usr/"));
        writer.WriteEntry(Dir(prefix + "usr/bin/"));
        var big = new byte[bigFileBytes];
        new Random(42).NextBytes(big.AsSpan(0, big.Length / 2)); // half random, half zeros: compressible but not trivially
        writer.WriteEntry(File(prefix + "usr/bin/big", big, 0b111_101_101));
        if (failMidway)
        {
            throw new IOException("layer blob vanished");
        }

        writer.WriteEntry(new GnuTarEntry(TarEntryType.SymbolicLink, prefix + "usr/bin/sh") { LinkName = "/bin/busybox", ModificationTime = Time });
    }

    private static GnuTarEntry Dir(string name) => new(TarEntryType.Directory, name) { Mode = (UnixFileMode)0b111_101_101, ModificationTime = Time };

    private static GnuTarEntry File(string name, byte[] data, int mode) =>
        new(TarEntryType.RegularFile, name) { Mode = (UnixFileMode)mode, ModificationTime = Time, DataStream = new MemoryStream(data) };
}
