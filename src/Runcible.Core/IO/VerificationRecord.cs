namespace Runcible.Core.IO;

/// <summary>
/// A one-line file saying that another file was verified as it then was: <c>&lt;label&gt; &lt;identity&gt;\n</c>, the
/// identity being its <see cref="FileIdentity"/>. The label says what was verified (a format, a digest). The record
/// vouches for the file only while the file is exactly the one recorded, and only when the record was written over a
/// second after the file last changed: a change within one tick of the file system's clock cannot pass for none (and a
/// record written right after the file, as after a download, is confirmed by the next hash instead). So a cache spends
/// one <c>statx</c> per file, not a hash of it, on a file unchanged since it was last hashed.
/// </summary>
internal static class VerificationRecord
{
    /// <summary>How long after a file's last change its record must have been written to be trusted.</summary>
    private const long SeparationNanoseconds = 1_000_000_000;

    private const int MaxRecordBytes = 512;

    /// <summary>
    /// The record at <paramref name="recordPath"/>: its label (null when there is no readable record) and whether it
    /// vouches for the file at <paramref name="filePath"/> as it is now.
    /// </summary>
    public static (string? Label, bool VouchesForFile) Read(string recordPath, string filePath)
    {
        if (FileIdentity.Of(recordPath) is not { } record || record.Size > MaxRecordBytes)
        {
            return (null, false);
        }

        string text;
        try
        {
            text = File.ReadAllText(recordPath);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return (null, false);
        }

        // The identity is the last five fields; the label is what precedes them.
        var fields = text.EndsWith('\n') ? text[..^1].Split(' ') : [];
        if (fields.Length < 6)
        {
            return (null, false);
        }

        var label = string.Join(' ', fields[..^5]);
        var file = FileIdentity.Of(filePath);
        var vouches = file is not null
            && string.Join(' ', fields[^5..]) == file.Format()
            && record.ModifiedNanoseconds - file.ChangedNanoseconds > SeparationNanoseconds;
        return (label, vouches);
    }

    /// <summary>Records that the file whose identity is <paramref name="file"/> was verified as <paramref name="label"/> (no spaces at its end).</summary>
    public static void Write(string recordPath, string label, FileIdentity file) =>
        AtomicFile.WriteText(recordPath, label + " " + file.Format() + "\n");
}

/// <summary>Small files of the cache, written whole or not at all.</summary>
internal static class AtomicFile
{
    /// <summary>Writes a unique temporary file beside <paramref name="path"/> and renames it into place (removed on failure); the directory is created <c>0700</c>.</summary>
    public static void WriteText(string path, string text)
    {
        CacheDirectory.Create(Path.GetDirectoryName(path)!);
        var temp = path + "." + Guid.NewGuid().ToString("N");
        try
        {
            File.WriteAllText(temp, text);
            File.Move(temp, path, overwrite: true);
        }
        catch
        {
            try
            {
                File.Delete(temp);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
            }

            throw;
        }
    }
}

/// <summary>Hashes what is written, and passes it on to <paramref name="inner"/> if there is one.</summary>
internal sealed class HashingWriteStream(System.Security.Cryptography.IncrementalHash hash, Stream? inner = null) : ForwardWriteStream
{
    public override void Write(ReadOnlySpan<byte> buffer)
    {
        hash.AppendData(buffer);
        inner?.Write(buffer);
    }

    public override void Flush() => inner?.Flush();
}
