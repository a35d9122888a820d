using System.Text.RegularExpressions;
using Runcible.Core.IO;
using Runcible.Tests.Infrastructure;

namespace Runcible.Tests.Layering;

/// <summary>The build cache's layout has one owner, <see cref="CacheLayout"/>, and stays what earlier versions wrote.</summary>
public partial class CacheLayoutTests
{
    private static readonly string[] EntryNames = ["content", "bundle-base", "replaced", "rootfs-files", "blobs", "tmp", "refs", "verified"];
    private static readonly string[] DistinctNames = ["bundle-base", "replaced", "rootfs-files"];

    [Fact]
    public void NoOtherSourceNamesAnEntryOfTheCache()
    {
        var offenders = new List<string>();
        foreach (var file in Directory.EnumerateFiles(Path.Combine(RepoPaths.Root, "src"), "*.cs", SearchOption.AllDirectories))
        {
            if (Path.GetFileName(file) == "CacheLayout.cs" || file.Contains("/obj/", StringComparison.Ordinal) || file.Contains("/bin/", StringComparison.Ordinal))
            {
                continue;
            }

            var code = LineComment().Replace(File.ReadAllText(file), "");
            foreach (Match literal in StringLiteral().Matches(code))
            {
                // Any name as a literal of its own ("content", then combined), and the names only the cache uses anywhere
                // as a path segment of a literal ("{root}/replaced"); "blobs/" and "/tmp" also name OCI layout, registry and container paths.
                var text = literal.Groups[1].Value;
                if (EntryNames.Contains(text) || DistinctNames.Any(name => Regex.IsMatch(text, $"(^|/){name}($|/)")))
                {
                    offenders.Add($"{Path.GetRelativePath(RepoPaths.Root, file)}: {literal.Value}");
                }
            }
        }

        Assert.True(offenders.Count == 0, "Cache paths composed outside CacheLayout:\n" + string.Join("\n", offenders));
    }

    [Fact]
    public void PathsAreTheOnesEarlierVersionsWrote()
    {
        Assert.Equal("/c/content", CacheLayout.ContentDirectory("/c"));
        Assert.Equal("/c/rootfs-files", CacheLayout.RootfsFilesDirectory("/c"));
        Assert.Equal("/c/replaced", CacheLayout.TrashDirectory("/c"));
        Assert.Equal("/c/bundle-base/k.gzip", CacheLayout.BasePartPath("/c", "k.gzip"));
        Assert.Equal("/c/bundle-base/verified/k.gzip", CacheLayout.BasePartRecordPath("/c/bundle-base/k.gzip"));
        Assert.Equal("/c/content/blobs/sha256/ab", CacheLayout.BlobPath("/c/content", "sha256", "ab"));
        Assert.Equal("/c/content/verified/sha256/ab", CacheLayout.BlobRecordPath("/c/content", "sha256", "ab"));
        Assert.Equal("/c/content/tmp/ab.1", CacheLayout.TemporaryBlobPath("/c/content", "ab.1"));
        Assert.Equal("/c/content/refs/ab", CacheLayout.RefPath("/c/content", "ab"));
        Assert.Contains("content/verified/sha512", CacheLayout.Subdirectories);
        Assert.Contains("bundle-base/verified", CacheLayout.Subdirectories);
    }

    [GeneratedRegex(@"//.*$", RegexOptions.Multiline)]
    private static partial Regex LineComment();

    [GeneratedRegex("\"([^\"\\\\\\n]*)\"")]
    private static partial Regex StringLiteral();
}
