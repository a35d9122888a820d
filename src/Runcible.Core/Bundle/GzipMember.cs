using System.IO.Compression;

namespace Runcible.Core.Bundle;

/// <summary>
/// Compresses one chunk into one gzip member at a numeric zlib level (1–9) with a fixed header.
/// The tasks are built for net8.0 but run in whatever .NET the SDK's MSBuild runs on: .NET 9 and later
/// have <c>ZLibCompressionOptions</c> and <c>GZipStream(Stream, ZLibCompressionOptions, bool)</c>,
/// which take the exact level; they are looked up once by reflection. On .NET 8
/// the level is approximated by <see cref="CompressionLevel.Fastest"/> (1–3) or
/// <see cref="CompressionLevel.Optimal"/> (4–9).
/// </summary>
internal static class GzipMember
{
    /// <summary>Gzip OS byte "Unix", written whatever zlib build compressed the member.</summary>
    private const byte OsUnix = 3;

    /// <summary><c>(output, level) => new GZipStream(output, new ZLibCompressionOptions { CompressionLevel = level }, leaveOpen: true)</c>, or null before .NET 9.</summary>
    private static readonly Func<Stream, int, Stream>? NumericLevelFactory = BindNumericLevelFactory();

    /// <summary>Whether this runtime compresses at the exact numeric level (.NET 9+) rather than an approximation.</summary>
    public static bool HasNumericLevels => NumericLevelFactory is not null;

    public static byte[] Compress(ReadOnlySpan<byte> data, int level) => Compress(data, level, numericLevels: true);

    /// <param name="numericLevels">false forces the .NET 8 approximation (for tests on newer runtimes).</param>
    internal static byte[] Compress(ReadOnlySpan<byte> data, int level, bool numericLevels)
    {
        using var output = new MemoryStream(data.Length / 3 + 64);
        CompressTo(output, data, level, numericLevels);
        return output.ToArray();
    }

    /// <summary>Appends one member to <paramref name="output"/> (a reused buffer: no allocation per chunk once it has grown).</summary>
    internal static void CompressTo(MemoryStream output, ReadOnlySpan<byte> data, int level, bool numericLevels = true)
    {
        if (level is < 1 or > 9)
        {
            throw new ArgumentOutOfRangeException(nameof(level), level, "A gzip level is 1 to 9.");
        }

        var start = (int)output.Length;
        using (var gzip = numericLevels && NumericLevelFactory is { } create
            ? create(output, level)
            : new GZipStream(output, Approximation(level), leaveOpen: true))
        {
            gzip.Write(data);
        }

        // RFC 1952 header: no MTIME, no extra flags (zlib writes 2 or 4 by level), a fixed OS, so the
        // bytes depend on neither the clock nor the zlib build's platform.
        var header = output.GetBuffer().AsSpan(start, 10);
        header[4..9].Clear();
        header[9] = OsUnix;
    }

    /// <summary>The named level that stands in for <paramref name="level"/> on .NET 8.</summary>
    internal static CompressionLevel Approximation(int level) => level <= 3 ? CompressionLevel.Fastest : CompressionLevel.Optimal;

    private static Func<Stream, int, Stream>? BindNumericLevelFactory()
    {
        // Plain reflection bound once: one invocation per 4 MiB chunk costs nothing next to compressing it,
        // while compiling an expression tree would cost every build tens of milliseconds of start-up.
        var optionsType = typeof(GZipStream).Assembly.GetType("System.IO.Compression.ZLibCompressionOptions", throwOnError: false);
        var levelProperty = optionsType?.GetProperty("CompressionLevel", typeof(int));
        var constructor = optionsType is null ? null : typeof(GZipStream).GetConstructor([typeof(Stream), optionsType, typeof(bool)]);
        var newOptions = optionsType?.GetConstructor(Type.EmptyTypes);
        if (levelProperty?.SetMethod is null || constructor is null || newOptions is null)
        {
            return null;
        }

        return (output, level) =>
        {
            var options = newOptions.Invoke(null);
            levelProperty.SetValue(options, level);
            return (Stream)constructor.Invoke([output, options, true]);
        };
    }
}
