using System.Formats.Tar;
using Runcible.Core.Bundle;
using Runcible.Tests.Infrastructure;

namespace Runcible.Tests.Bundle;

public class AppLayerTests
{
    [Fact]
    public void EntriesAreSortedOwnedByRootWithFixedModesAndTimes()
    {
        using var temp = new TempDirectory();
        var publish = temp.Combine("publish");
        TestPublishDirectory.Create(publish);
        var time = DateTimeOffset.FromUnixTimeSeconds(1234567890);

        var stream = new MemoryStream();
        using (var writer = new TarWriter(stream, TarEntryFormat.Gnu, leaveOpen: true))
        {
            new AppLayer(publish, "/srv/app", "HelloWeb", time).WriteEntries(writer, "rootfs/");
        }

        stream.Position = 0;
        var entries = new List<TarEntry>();
        using (var reader = new TarReader(stream))
        {
            while (reader.GetNextEntry() is { } entry)
            {
                entries.Add(entry);
            }
        }

        Assert.Equal(
            [
                "rootfs/srv/", "rootfs/srv/app/",
                "rootfs/srv/app/HelloWeb", "rootfs/srv/app/HelloWeb.dll", "rootfs/srv/app/appsettings.json",
                "rootfs/srv/app/current.css", "rootfs/srv/app/tool.sh",
                "rootfs/srv/app/wwwroot/", "rootfs/srv/app/wwwroot/css/", "rootfs/srv/app/wwwroot/css/site.css",
            ],
            entries.Select(e => e.Name));
        Assert.All(entries, e =>
        {
            Assert.Equal(0, e.Uid);
            Assert.Equal(0, e.Gid);
            Assert.Equal(time, e.ModificationTime);
        });

        var modes = entries.ToDictionary(e => e.Name, e => Convert.ToString((int)e.Mode, 8));
        Assert.Equal("755", modes["rootfs/srv/app/"]);
        Assert.Equal("755", modes["rootfs/srv/app/HelloWeb"]);
        Assert.Equal("644", modes["rootfs/srv/app/HelloWeb.dll"]);
        Assert.Equal("644", modes["rootfs/srv/app/appsettings.json"]);
        Assert.Equal("755", modes["rootfs/srv/app/tool.sh"]);
        Assert.Equal("755", modes["rootfs/srv/app/wwwroot/css/"]);
        var link = entries.Single(e => e.Name == "rootfs/srv/app/current.css");
        Assert.Equal(TarEntryType.SymbolicLink, link.EntryType);
        Assert.Equal("wwwroot/css/site.css", link.LinkName);
    }

    [Fact]
    public void DigestDependsOnContentOnly()
    {
        using var a = new TempDirectory();
        using var b = new TempDirectory();
        TestPublishDirectory.Create(a.Path);
        TestPublishDirectory.Create(b.Path);
        File.SetLastWriteTimeUtc(Path.Combine(b.Path, "HelloWeb.dll"), new DateTime(2001, 1, 1, 0, 0, 0, DateTimeKind.Utc));
        var time = DateTimeOffset.FromUnixTimeSeconds(0);
        var first = new AppLayer(a.Path, "/app", "HelloWeb", time).ComputeDigest();
        Assert.Equal(first, new AppLayer(b.Path, "/app", "HelloWeb", time).ComputeDigest());
        Assert.Matches("^sha256:[0-9a-f]{64}$", first);

        File.WriteAllText(Path.Combine(b.Path, "HelloWeb.dll"), "dll v2");
        Assert.NotEqual(first, new AppLayer(b.Path, "/app", "HelloWeb", time).ComputeDigest());
    }
}
