using System.Diagnostics.CodeAnalysis;
using System.Security.Cryptography;
using System.Text.RegularExpressions;

namespace Runcible.Core.Oci;

/// <summary>
/// A content digest (<c>sha256:…</c> or <c>sha512:…</c>). Parsing checks the full grammar and the
/// exact hex length, so a parsed digest is always safe to use as a file name.
/// </summary>
internal readonly partial record struct Digest
{
    private Digest(string algorithm, string encoded)
    {
        Algorithm = algorithm;
        Encoded = encoded;
    }

    public string Algorithm { get; }

    /// <summary>Lower-case hex.</summary>
    public string Encoded { get; }

    public override string ToString() => Algorithm + ":" + Encoded;

    public static Digest Parse(string value) =>
        TryParse(value, out var digest) ? digest : throw new FormatException($"'{value}' is not a valid sha256 or sha512 digest.");

    public static bool TryParse([NotNullWhen(true)] string? value, out Digest digest)
    {
        digest = default;
        if (value is null)
        {
            return false;
        }

        var match = DigestPattern().Match(value);
        if (!match.Success)
        {
            return false;
        }

        var algorithm = match.Groups[1].Value;
        var encoded = match.Groups[2].Value;
        var expectedLength = algorithm switch
        {
            "sha256" => 64,
            "sha512" => 128,
            _ => -1,
        };
        if (encoded.Length != expectedLength)
        {
            return false;
        }

        digest = new Digest(algorithm, encoded);
        return true;
    }

    public static Digest FromSha256Hash(ReadOnlySpan<byte> hash) =>
        new("sha256", Convert.ToHexString(hash).ToLowerInvariant());

    public static Digest ComputeSha256(ReadOnlySpan<byte> content) =>
        FromSha256Hash(SHA256.HashData(content));

    public static Digest ComputeSha256(Stream content) =>
        FromSha256Hash(SHA256.HashData(content));

    /// <summary>A hash object for this digest's algorithm, for incremental verification.</summary>
    public IncrementalHash CreateHash() => Algorithm switch
    {
        "sha256" => IncrementalHash.CreateHash(HashAlgorithmName.SHA256),
        "sha512" => IncrementalHash.CreateHash(HashAlgorithmName.SHA512),
        _ => throw new InvalidOperationException("Default digest has no algorithm."),
    };

    /// <summary>True when <paramref name="hash"/> (from <see cref="CreateHash"/>) equals this digest.</summary>
    public bool Matches(ReadOnlySpan<byte> hash) =>
        string.Equals(Convert.ToHexString(hash), Encoded, StringComparison.OrdinalIgnoreCase);

    [GeneratedRegex("^([a-z0-9]+)(?:[+._-][a-z0-9]+)*:([a-f0-9]+)$", RegexOptions.CultureInvariant)]
    private static partial Regex DigestPattern();
}
