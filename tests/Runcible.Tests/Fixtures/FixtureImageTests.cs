using System.Formats.Tar;
using System.IO.Compression;
using System.Text;
using System.Text.Json;
using Runcible.Tests.Infrastructure;

namespace Runcible.Tests.Fixtures;

/// <summary>The fixture layouts built by eng/fixture-images.sh hold what the other tests rely on.</summary>
public sealed class FixtureImageTests
{
    private static JsonDocument ReadBlob(string layout, string digest) =>
        JsonDocument.Parse(File.ReadAllBytes(BlobPath(layout, digest)));

    private static string BlobPath(string layout, string digest) => Path.Combine(layout, "blobs", "sha256", digest["sha256:".Length..]);

    /// <summary>The manifest tagged latest (for an index, the one for <paramref name="architecture"/>).</summary>
    private static JsonDocument Manifest(string image, string architecture = "amd64")
    {
        var layout = FixtureImages.LayoutPath(image);
        using var index = JsonDocument.Parse(File.ReadAllBytes(Path.Combine(layout, "index.json")));
        var descriptor = index.RootElement.GetProperty("manifests").EnumerateArray()
            .Single(m => m.GetProperty("annotations").GetProperty("org.opencontainers.image.ref.name").GetString() == FixtureImages.Tag);
        var document = ReadBlob(layout, descriptor.GetProperty("digest").GetString()!);
        if (document.RootElement.GetProperty("mediaType").GetString() != "application/vnd.oci.image.index.v1+json")
        {
            return document;
        }

        using (document)
        {
            var chosen = document.RootElement.GetProperty("manifests").EnumerateArray()
                .Single(m => m.GetProperty("platform").GetProperty("architecture").GetString() == architecture);
            return ReadBlob(layout, chosen.GetProperty("digest").GetString()!);
        }
    }

    private static JsonElement Config(string image, string architecture = "amd64")
    {
        using var manifest = Manifest(image, architecture);
        using var config = ReadBlob(FixtureImages.LayoutPath(image), manifest.RootElement.GetProperty("config").GetProperty("digest").GetString()!);
        return config.RootElement.Clone();
    }

    /// <summary>Streams layer <paramref name="index"/> of an image and returns the entries (and contents of the wanted files).</summary>
    private static (Dictionary<string, TarEntryType> Entries, Dictionary<string, string> Files, Dictionary<string, string> Links) ReadLayer(
        string image, int index, params string[] wantedFiles)
    {
        using var manifest = Manifest(image);
        var layer = manifest.RootElement.GetProperty("layers")[index];
        Assert.Equal("application/vnd.oci.image.layer.v1.tar+gzip", layer.GetProperty("mediaType").GetString());
        using var file = File.OpenRead(BlobPath(FixtureImages.LayoutPath(image), layer.GetProperty("digest").GetString()!));
        using var gzip = new GZipStream(file, CompressionMode.Decompress);
        using var reader = new TarReader(gzip);
        var entries = new Dictionary<string, TarEntryType>();
        var files = new Dictionary<string, string>();
        var links = new Dictionary<string, string>();
        while (reader.GetNextEntry() is { } entry)
        {
            var name = entry.Name.TrimEnd('/');
            entries[name] = entry.EntryType;
            if (entry.EntryType is TarEntryType.SymbolicLink or TarEntryType.HardLink)
            {
                links[name] = entry.LinkName;
            }

            if (wantedFiles.Contains(name) && entry.DataStream is { } data)
            {
                using var text = new StreamReader(data, Encoding.UTF8);
                files[name] = text.ReadToEnd();
            }
        }

        return (entries, files, links);
    }

    [Fact]
    public void BusyboxUnpacksWithItsHardlinkAndWithoutTheWhitedOutFile()
    {
        using var manifest = Manifest(FixtureImages.Busybox);
        Assert.Equal(3, manifest.RootElement.GetProperty("layers").GetArrayLength());
        var (second, _, links) = ReadLayer(FixtureImages.Busybox, 1);
        Assert.Equal(TarEntryType.HardLink, second["usr/share/fixture/data.txt"]);
        Assert.Equal("usr/share/fixture/data-hardlink.txt", links["usr/share/fixture/data.txt"]);
        var (whiteouts, _, _) = ReadLayer(FixtureImages.Busybox, 2);
        Assert.Contains("var/lib/.wh.removed.txt", whiteouts.Keys);

        // umoci, the oracle, applies the layers.
        using var bundle = new TempDirectory("runcible-fixture-unpack");
        var arguments = new List<string> { "unpack", "--image", FixtureImages.LayoutReference(FixtureImages.Busybox) };
        if (Environment.UserName != "root")
        {
            arguments.Add("--rootless");
        }

        arguments.Add(bundle.Combine("bundle"));
        ProcessRunner.Run("umoci", arguments).EnsureSuccess("umoci unpack busybox");
        var rootfs = bundle.Combine("bundle", "rootfs");
        Assert.False(File.Exists(Path.Combine(rootfs, "var/lib/removed.txt")));
        Assert.True(File.Exists(Path.Combine(rootfs, "var/lib/kept.txt")));
        Assert.Equal("busybox", new FileInfo(Path.Combine(rootfs, "bin/sh")).LinkTarget);
        Assert.Equal(
            File.ReadAllText(Path.Combine(rootfs, "usr/share/fixture/data.txt")),
            File.ReadAllText(Path.Combine(rootfs, "usr/share/fixture/data-hardlink.txt")));
        var stat = ProcessRunner.Run("stat", "-c", "%i", Path.Combine(rootfs, "usr/share/fixture/data.txt"), Path.Combine(rootfs, "usr/share/fixture/data-hardlink.txt"))
            .EnsureSuccess("stat").StandardOutput.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(stat[0], stat[1]);
    }

    [Fact]
    public void RuntimeDepsIsDebianBookwormWithTheAppUserAndTheDotnetDependencies()
    {
        var (entries, files, _) = ReadLayer(FixtureImages.RuntimeDeps, 0, "etc/passwd", "etc/group", "etc/debian_version");
        Assert.StartsWith("12.", files["etc/debian_version"]);
        Assert.Contains("app:x:1654:1654::/home/app:", files["etc/passwd"]);
        Assert.Contains("app:x:1654:", files["etc/group"]);
        Assert.Contains(entries.Keys, name => name.StartsWith("usr/lib/x86_64-linux-gnu/libicuuc.so.72", StringComparison.Ordinal));
        Assert.Contains(entries.Keys, name => name.StartsWith("usr/lib/x86_64-linux-gnu/libssl.so.3", StringComparison.Ordinal));
        Assert.Contains("etc/ssl/certs/ca-certificates.crt", entries.Keys);
        Assert.DoesNotContain(entries.Keys, name => name.StartsWith("var/lib/apt/lists/", StringComparison.Ordinal) && name.EndsWith("_Packages", StringComparison.Ordinal));

        var config = Config(FixtureImages.RuntimeDeps).GetProperty("config");
        Assert.Contains("APP_UID=1654", config.GetProperty("Env").EnumerateArray().Select(e => e.GetString()));
        Assert.False(config.TryGetProperty("Entrypoint", out var entrypoint) && entrypoint.ValueKind == JsonValueKind.Array);
    }

    [Fact]
    public void RuntimeAndAspnetAddTheSharedFrameworksInTheirOwnLayers()
    {
        var (runtime, _, runtimeLinks) = ReadLayer(FixtureImages.Runtime, 1);
        Assert.Equal("../share/dotnet/dotnet", runtimeLinks["usr/bin/dotnet"]);
        Assert.Contains("usr/share/dotnet/dotnet", runtime.Keys);
        Assert.Contains(runtime.Keys, name => name.StartsWith("usr/share/dotnet/host/fxr/", StringComparison.Ordinal) && name.EndsWith("libhostfxr.so", StringComparison.Ordinal));
        Assert.Contains(runtime.Keys, name => name.StartsWith("usr/share/dotnet/shared/Microsoft.NETCore.App/", StringComparison.Ordinal) && name.EndsWith("System.Private.CoreLib.dll", StringComparison.Ordinal));

        var (aspnet, _, _) = ReadLayer(FixtureImages.AspNet, 2);
        Assert.Contains(aspnet.Keys, name => name.StartsWith("usr/share/dotnet/shared/Microsoft.AspNetCore.App/", StringComparison.Ordinal) && name.EndsWith("Microsoft.AspNetCore.dll", StringComparison.Ordinal));

        var env = Config(FixtureImages.AspNet).GetProperty("config").GetProperty("Env").EnumerateArray().Select(e => e.GetString()!).ToList();
        Assert.Contains(env, e => e.StartsWith("DOTNET_VERSION=", StringComparison.Ordinal));
        Assert.Contains(env, e => e.StartsWith("ASPNET_VERSION=", StringComparison.Ordinal));
        Assert.Contains("APP_UID=1654", env);
    }

    [Fact]
    public void MultiarchIsAnIndexWhosePlatformsMatchTheirConfigs()
    {
        foreach (var architecture in new[] { "amd64", "arm64" })
        {
            var config = Config(FixtureImages.MultiArch, architecture);
            Assert.Equal(architecture, config.GetProperty("architecture").GetString());
            Assert.Equal("linux", config.GetProperty("os").GetString());
        }
    }

    [Fact]
    public void TheBuildScriptReusesTheCacheWhenNothingChanged()
    {
        var result = ProcessRunner.Run("bash", [Path.Combine(RepoPaths.Root, "eng", "fixture-images.sh")], timeout: TimeSpan.FromSeconds(30));
        result.EnsureSuccess("eng/fixture-images.sh");
        Assert.DoesNotContain("building", result.StandardError);
        foreach (var image in FixtureImages.All)
        {
            Assert.True(File.Exists(Path.Combine(FixtureImages.Root, image + ".stamp")), $"{image}.stamp");
        }
    }

    [Fact]
    public void ImagesExportToOciAndDockerArchivesThatSkopeoReadsBack()
    {
        using var directory = new TempDirectory("runcible-fixture-archives");
        var ociArchive = directory.Combine("busybox.oci.tar");
        var dockerArchive = directory.Combine("busybox.docker.tar");
        FixtureImages.ExportOciArchive(FixtureImages.Busybox, ociArchive);
        FixtureImages.ExportDockerArchive(FixtureImages.Busybox, dockerArchive);

        using var oci = JsonDocument.Parse(ProcessRunner.Run("skopeo", "inspect", "--raw", $"oci-archive:{ociArchive}:latest").EnsureSuccess("inspect oci-archive").StandardOutput);
        Assert.Equal(3, oci.RootElement.GetProperty("layers").GetArrayLength());
        using var docker = JsonDocument.Parse(ProcessRunner.Run("skopeo", "inspect", $"docker-archive:{dockerArchive}").EnsureSuccess("inspect docker-archive").StandardOutput);
        Assert.Equal(3, docker.RootElement.GetProperty("Layers").GetArrayLength());
        var manifestJson = ProcessRunner.Run("tar", "-xOf", dockerArchive, "manifest.json").EnsureSuccess("tar").StandardOutput;
        using var saved = JsonDocument.Parse(manifestJson);
        Assert.Equal(["runcible.test/fixture:latest"], saved.RootElement[0].GetProperty("RepoTags").EnumerateArray().Select(t => t.GetString()));
    }

    [Fact]
    public void AnUnknownFixtureNameIsRefused()
    {
        var error = Assert.Throws<ArgumentException>(() => FixtureImages.LayoutPath("no-such-image"));
        Assert.Contains("busybox", error.Message);
    }
}
