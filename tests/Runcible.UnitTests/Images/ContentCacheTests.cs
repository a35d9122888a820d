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
        // (After a pause: without fine-grained kernel timestamps a write in the same clock tick as the last change
        // would keep the times; the record's one-second rule is what covers that case, and AgeRecord bypassed it.)
        Thread.Sleep(50);
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
    public async Task ACachedDocumentIsHashedAsReadWhateverTheRecordSays()
    {
        using var temp = new TempDirectory();
        var cache = await CacheWithBlob(temp);
        Assert.NotNull(new ContentCache(cache.Directory).TryGetBlob(ContentDigest, Content.Length));
        AgeRecord(cache);
        Assert.Equal(Content, new ContentCache(cache.Directory).TryReadSmallBlob(ContentDigest, Content.Length));

        // Damaged without the record noticing (the identity is put back as recorded): a document is still refused.
        var path = cache.BlobPath(ContentDigest);
        var damaged = Content.ToArray();
        damaged[10] ^= 0xff;
        File.WriteAllBytes(path, damaged);
        var identity = Runcible.Core.IO.FileIdentity.Of(path)!;
        File.WriteAllText(RecordPath(cache), "runcible-verified/1 " + identity.Format() + "\n");
        AgeRecord(cache);
        Assert.NotNull(new ContentCache(cache.Directory).TryGetBlob(ContentDigest, Content.Length)); // a layer would be trusted...
        Assert.Null(new ContentCache(cache.Directory).TryReadSmallBlob(ContentDigest, Content.Length)); // ...a document is not
        Assert.False(File.Exists(path));
    }

    [Fact]
    public async Task AForgottenVerificationIsHashedAgain()
    {
        using var temp = new TempDirectory();
        var cache = await CacheWithBlob(temp);
        Assert.NotNull(new ContentCache(cache.Directory).TryGetBlob(ContentDigest, Content.Length));
        AgeRecord(cache);

        new ContentCache(cache.Directory).ForgetVerification([ContentDigest]);
        Assert.False(File.Exists(RecordPath(cache)));
        var later = new ContentCache(cache.Directory);
        Assert.NotNull(later.TryGetBlob(ContentDigest, Content.Length));
        Assert.Equal(Content.Length, later.HashedBytes);
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
