using System.Formats.Tar;
using System.IO.Compression;
using System.Security.Cryptography;
using System.Text.Json.Nodes;
using Runcible.Core.Images;
using Runcible.Core.Layers;
using Runcible.Core.Oci;

namespace Runcible.Tests.Layers;

/// <summary>
/// Builds purpose-made OCI image layouts (tag "latest") from layers written with TarWriter, so that
/// the same image can be flattened by us and unpacked by umoci. Layers may be gzip, zstd or plain; a
/// raw layer (bytes as given, e.g. hostile or truncated) can be added too.
/// </summary>
internal sealed class TestImage
{
    private readonly List<(byte[] Blob, string MediaType, string DiffId)> _layers = [];

    public TestImage Layer(Action<TarWriter> write, LayerCompression compression = LayerCompression.Gzip)
    {
        var tar = new MemoryStream();
        using (var writer = new TarWriter(tar, TarEntryFormat.Pax, leaveOpen: true))
        {
            write(writer);
        }

        return RawLayer(tar.ToArray(), compression);
    }

    /// <summary>A layer from uncompressed tar bytes (which need not be a valid tar), compressed as asked.</summary>
    public TestImage RawLayer(byte[] uncompressed, LayerCompression compression = LayerCompression.Gzip, string? diffId = null)
    {
        var diff = diffId ?? "sha256:" + Convert.ToHexString(SHA256.HashData(uncompressed)).ToLowerInvariant();
        var blob = compression switch
        {
            LayerCompression.Gzip => Gzip(uncompressed),
            LayerCompression.Zstd => new ZstdSharp.Compressor(3).Wrap(uncompressed).ToArray(),
            _ => uncompressed,
        };
        var mediaType = compression switch
        {
            LayerCompression.Gzip => MediaTypes.OciLayerGzip,
            LayerCompression.Zstd => MediaTypes.OciLayerZstd,
            _ => MediaTypes.OciLayer,
        };
        _layers.Add((blob, mediaType, diff));
        return this;
    }

    /// <summary>A layer whose compressed bytes are given as they are (truncated, garbage...).</summary>
    public TestImage CompressedBlob(byte[] blob, LayerCompression compression, string diffId)
    {
        _layers.Add((blob, compression == LayerCompression.Gzip ? MediaTypes.OciLayerGzip : compression == LayerCompression.Zstd ? MediaTypes.OciLayerZstd : MediaTypes.OciLayer, diffId));
        return this;
    }

    public string WriteLayout(string directory)
    {
        var blobs = Path.Combine(directory, "blobs", "sha256");
        Directory.CreateDirectory(blobs);
        var layers = new JsonArray();
        foreach (var (blob, mediaType, _) in _layers)
        {
            layers.Add(new JsonObject { ["mediaType"] = mediaType, ["digest"] = Write(blobs, blob), ["size"] = blob.Length });
        }

        var config = System.Text.Encoding.UTF8.GetBytes(new JsonObject
        {
            ["architecture"] = "amd64",
            ["os"] = "linux",
            ["config"] = new JsonObject { ["Env"] = new JsonArray("PATH=/bin") },
            ["rootfs"] = new JsonObject { ["type"] = "layers", ["diff_ids"] = new JsonArray(_layers.Select(l => (JsonNode)l.DiffId).ToArray()) },
        }.ToJsonString());
        var manifest = System.Text.Encoding.UTF8.GetBytes(new JsonObject
        {
            ["schemaVersion"] = 2,
            ["mediaType"] = MediaTypes.OciManifest,
            ["config"] = new JsonObject { ["mediaType"] = MediaTypes.OciConfig, ["digest"] = Write(blobs, config), ["size"] = config.Length },
            ["layers"] = layers,
        }.ToJsonString());
        var index = new JsonObject
        {
            ["schemaVersion"] = 2,
            ["manifests"] = new JsonArray(new JsonObject
            {
                ["mediaType"] = MediaTypes.OciManifest,
                ["digest"] = Write(blobs, manifest),
                ["size"] = manifest.Length,
                ["annotations"] = new JsonObject { ["org.opencontainers.image.ref.name"] = "latest" },
            }),
        };
        System.IO.File.WriteAllText(Path.Combine(directory, "index.json"), index.ToJsonString());
        System.IO.File.WriteAllText(Path.Combine(directory, "oci-layout"), """{"imageLayoutVersion":"1.0.0"}""");
        return directory;
    }

    /// <summary>Writes the layout and pulls it through the real puller (digests verified) into <paramref name="cache"/>.</summary>
    public PulledImage Pull(string directory, string cache)
    {
        WriteLayout(directory);
        return new ImagePuller(new ContentCache(cache), (r, p) => throw new InvalidOperationException(), new ImagePullerOptions(), Runcible.Core.Diagnostics.NullBuildLog.Instance)
            .PullAsync("oci-layout:" + directory + ":latest", PlatformSelector.FromRuntimeIdentifier("linux-x64"), CancellationToken.None).GetAwaiter().GetResult();
    }

    public static PaxTarEntry File(string name, string content, UnixFileMode mode = (UnixFileMode)0x1A4, int uid = 0, int gid = 0, IEnumerable<KeyValuePair<string, string>>? xattrs = null) =>
        new(TarEntryType.RegularFile, name, xattrs ?? [])
        {
            DataStream = new MemoryStream(System.Text.Encoding.UTF8.GetBytes(content)),
            Mode = mode,
            Uid = uid,
            Gid = gid,
            ModificationTime = DateTimeOffset.FromUnixTimeSeconds(1_700_000_000),
        };

    public static PaxTarEntry Dir(string name, UnixFileMode mode = (UnixFileMode)0x1ED, int uid = 0, int gid = 0) =>
        new(TarEntryType.Directory, name, []) { Mode = mode, Uid = uid, Gid = gid, ModificationTime = DateTimeOffset.FromUnixTimeSeconds(1_700_000_000) };

    public static PaxTarEntry Link(TarEntryType type, string name, string target) =>
        new(type, name, []) { LinkName = target, Mode = (UnixFileMode)0x1FF, ModificationTime = DateTimeOffset.FromUnixTimeSeconds(1_700_000_000) };

    private static string Write(string blobs, byte[] content)
    {
        var hex = Convert.ToHexString(SHA256.HashData(content)).ToLowerInvariant();
        System.IO.File.WriteAllBytes(Path.Combine(blobs, hex), content);
        return "sha256:" + hex;
    }

    private static byte[] Gzip(byte[] data)
    {
        var output = new MemoryStream();
        using (var gzip = new GZipStream(output, CompressionLevel.Fastest, leaveOpen: true))
        {
            gzip.Write(data);
        }

        return output.ToArray();
    }
}
