using Runcible.Core.Images;
using Runcible.Core.Oci;
using Runcible.Tests.Infrastructure;

namespace Runcible.Tests.Images;

/// <summary>
/// Cached blobs are re-hashed before a new cache object hands them out, unless a verification was recorded
/// for exactly the file that is there (same inode, size and times) well after it last changed.
/// </summary>
public class ContentCacheTests
{
    private static readonly byte[] Content = Enumerable.Range(0, 1 << 20).Select(i => (byte)(i * 7)).ToArray();
    private static readonly Digest ContentDigest = Digest.ComputeSha256(Content);

    private static async Task<ContentCache> CacheWithBlob(TempDirectory temp)
    {
        var cache = new ContentCache(temp.Combine("cache"));
        await cache.AddBlobAsync(ContentDigest, Content, "layer", "test", TestContext.Current.CancellationToken);
        return cache;
    }

    private static string RecordPath(ContentCache cache) => Path.Combine(cache.Directory, "verified", "sha256", ContentDigest.Encoded);

    /// <summary>As if the verification had been recorded a while after the blob was written (tests run within one clock tick).</summary>
    private static void AgeRecord(ContentCache cache) => File.SetLastWriteTimeUtc(RecordPath(cache), DateTime.UtcNow.AddSeconds(10));

    [Fact]
    public async Task ABlobUnchangedSinceARecordedVerificationIsNotReadAgain()
    {
        using var temp = new TempDirectory();
        var cache = await CacheWithBlob(temp);

        var first = new ContentCache(cache.Directory);
        Assert.NotNull(first.TryGetBlob(ContentDigest, Content.Length));
        Assert.Equal(Content.Length, first.HashedBytes);
        Assert.True(File.Exists(RecordPath(cache)));
        AgeRecord(cache);

        var second = new ContentCache(cache.Directory);
        Assert.Equal(cache.BlobPath(ContentDigest), second.TryGetBlob(ContentDigest, Content.Length));
        Assert.Equal(0, second.HashedBytes);
    }

    [Fact]
    public async Task ARecordWrittenWithinASecondOfTheBlobsLastChangeIsNotTrusted()
    {
        using var temp = new TempDirectory();
        var cache = await CacheWithBlob(temp);
        Assert.NotNull(new ContentCache(cache.Directory).TryGetBlob(ContentDigest, Content.Length));

        // A change in the same timestamp tick as the record could look like no change: such a record does not count.
        var again = new ContentCache(cache.Directory);
        Assert.NotNull(again.TryGetBlob(ContentDigest, Content.Length));
        Assert.Equal(Content.Length, again.HashedBytes);
    }

    [Fact]
    public async Task ABlobAlteredInPlaceAfterItsRecordIsDetectedAndDiscarded()
    {
        using var temp = new TempDirectory();
        var cache = await CacheWithBlob(temp);
        Assert.NotNull(new ContentCache(cache.Directory).TryGetBlob(ContentDigest, Content.Length));
        AgeRecord(cache);

        // Same size, one byte flipped, written in place: the status-change time moves, so the record no longer matches.
        using (var stream = new FileStream(cache.BlobPath(ContentDigest), FileMode.Open, FileAccess.Write))
        {
            stream.Position = Content.Length / 2;
            stream.WriteByte((byte)(Content[Content.Length / 2] ^ 0xff));
        }

        var later = new ContentCache(cache.Directory);
        Assert.Null(later.TryGetBlob(ContentDigest, Content.Length));
        Assert.False(File.Exists(cache.BlobPath(ContentDigest)));
        Assert.False(File.Exists(RecordPath(cache)));
    }

    [Fact]
    public async Task ABlobReplacedByAnotherFileIsHashedAgain()
    {
        using var temp = new TempDirectory();
        var cache = await CacheWithBlob(temp);
        Assert.NotNull(new ContentCache(cache.Directory).TryGetBlob(ContentDigest, Content.Length));
        AgeRecord(cache);

        // Other bytes under the same name and size (a new inode): never trusted by the old record.
        var swapped = Content.ToArray();
        swapped[0] ^= 0xff;
        var replacement = temp.Combine("replacement");
        File.WriteAllBytes(replacement, swapped);
        File.Move(replacement, cache.BlobPath(ContentDigest), overwrite: true);

        var later = new ContentCache(cache.Directory);
        Assert.Null(later.TryGetBlob(ContentDigest, Content.Length));
        Assert.Equal(Content.Length, later.HashedBytes);
    }
}
