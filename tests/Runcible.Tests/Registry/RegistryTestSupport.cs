using System.Diagnostics;
using System.Security.Cryptography;
using System.Text.Json;
using Runcible.Core.Contracts;
using Runcible.Core.Diagnostics;
using Runcible.Core.Images;
using Runcible.Core.Oci;
using Runcible.Core.Registry;
using Runcible.Tests.Infrastructure;
using Runcible.Tests.Infrastructure.Registry;

namespace Runcible.Tests.Registry;

/// <summary>Options isolated from the machine (empty environment, temp home), fast retries, a recording log.</summary>
internal static class RegistryTestSupport
{
    public static CancellationToken Ct => TestContext.Current.CancellationToken;

    public static RegistryClientOptions Options(
        TempDirectory home,
        IReadOnlyDictionary<string, string>? environment = null,
        RecordingBuildLog? log = null,
        RegistryServer? trust = null,
        bool loopbackIsInsecure = true,
        int maxAttempts = 4,
        TimeSpan? requestTimeout = null,
        string? containerRegistry = null) => new()
        {
            Environment = environment ?? new Dictionary<string, string>(),
            HomeDirectory = home.Path,
            RetryBaseDelay = TimeSpan.FromMilliseconds(5),
            MaxRetryDelay = TimeSpan.FromMilliseconds(50),
            MaxAttempts = maxAttempts,
            RequestTimeout = requestTimeout ?? TimeSpan.FromSeconds(30),
            Log = log ?? new RecordingBuildLog(),
            TrustedCertificates = trust?.CaCertificate is { } ca ? [ca] : [],
            LoopbackIsInsecure = loopbackIsInsecure,
            ContainerRegistry = containerRegistry,
        };

    /// <summary>Environment with the registry's own user and password in the RUNCIBLE_ variables.</summary>
    public static Dictionary<string, string> CredentialEnvironment(RegistryServer registry) => new()
    {
        ["RUNCIBLE_REGISTRY_USERNAME"] = registry.Username!,
        ["RUNCIBLE_REGISTRY_PASSWORD"] = registry.Password!,
    };

    /// <summary>skopeo's raw bytes on stdout (ProcessRunner splits lines; a byte comparison needs the exact stream).</summary>
    public static byte[] SkopeoRaw(params IEnumerable<string> arguments)
    {
        var startInfo = new ProcessStartInfo("skopeo") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var argument in arguments)
        {
            startInfo.ArgumentList.Add(argument);
        }

        using var process = Process.Start(startInfo)!;
        var error = process.StandardError.ReadToEndAsync();
        using var output = new MemoryStream();
        process.StandardOutput.BaseStream.CopyTo(output);
        if (!process.WaitForExit(TimeSpan.FromMinutes(2)))
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException("skopeo did not finish");
        }

        Assert.True(process.ExitCode == 0, $"skopeo {string.Join(' ', arguments)} failed: {error.Result}");
        return output.ToArray();
    }

    /// <summary>The manifest as skopeo sees it: <c>skopeo inspect --raw</c>.</summary>
    public static byte[] SkopeoManifest(RegistryServer registry, string repositoryAndTag) =>
        SkopeoRaw(["inspect", "--raw", .. registry.InspectArguments(), $"docker://{registry.Host}/{repositoryAndTag}"]);

    /// <summary>The largest layer of an image manifest (for tests that want a blob spanning many reads).</summary>
    public static Descriptor LargestLayer(ManifestContent manifest)
    {
        var parsed = JsonSerializer.Deserialize<ImageManifest>(manifest.Bytes, OciJson.Options)!;
        return parsed.Layers!.MaxBy(l => l.Size)!;
    }

    public static Descriptor ConfigOf(ManifestContent manifest) =>
        JsonSerializer.Deserialize<ImageManifest>(manifest.Bytes, OciJson.Options)!.Config!;

    /// <summary>Copies a blob into memory (test blobs are small) and returns its bytes.</summary>
    public static async Task<byte[]> CopyBlobAsync(IImageSource source, Descriptor blob)
    {
        using var destination = new MemoryStream();
        await source.CopyBlobAsync(blob, destination, Ct);
        return destination.ToArray();
    }

    public static string Sha256(byte[] bytes) => "sha256:" + Convert.ToHexStringLower(SHA256.HashData(bytes));

    public static async Task<RuncibleException> ThrowsCodeAsync(string code, Func<Task> action)
    {
        var error = await Assert.ThrowsAsync<RuncibleException>(action);
        Assert.True(error.Code == code, $"expected {code}, got {error.Code}: {error.Message}");
        return error;
    }
}
