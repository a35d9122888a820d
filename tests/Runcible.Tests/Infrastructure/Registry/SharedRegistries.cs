using Runcible.Tests.Infrastructure.Registry;

[assembly: AssemblyFixture(typeof(SharedRegistries))]

namespace Runcible.Tests.Infrastructure.Registry;

/// <summary>
/// Registries shared by the whole test run (an xunit v3 assembly fixture): each starts on first use, with the
/// fixture images pushed, and stops when the run ends.
/// <para>Public API: take <c>SharedRegistries registries</c> as a constructor parameter of a test class, then</para>
/// <list type="bullet">
/// <item><c>await registries.AnonymousAsync()</c>: plain HTTP, anonymous; holds every image of
/// <see cref="AnonymousImages"/>: <c>&lt;image&gt;:latest</c> (OCI) for every fixture image (multiarch as an OCI index),
/// and for <c>busybox</c> and <c>runtime</c> also <c>:v2s2</c>, <c>:zstd</c>, <c>:uncompressed</c>;
/// <c>multiarch:v2s2</c> is a Docker manifest list.</item>
/// <item><c>await registries.TlsBasicAuthAsync()</c> and <c>await registries.TokenAuthAsync()</c>: hold
/// <c>busybox:latest</c> and <c>multiarch:latest</c>.</item>
/// <item><see cref="RepositoryTag"/>(image, format) gives the <c>repository:tag</c> used above.</item>
/// </list>
/// Tests must not delete or overwrite these tags; push under your own repository name if you need to.
/// Tests that corrupt registry storage or need fresh state should start their own <see cref="RegistryServer"/>.
/// </summary>
public sealed class SharedRegistries : IAsyncDisposable
{
    private static readonly PushFormat[] AllFormats = [PushFormat.Oci, PushFormat.DockerV2S2, PushFormat.Zstd, PushFormat.Uncompressed];

    private readonly Lazy<Task<RegistryServer>> _anonymous;
    private readonly Lazy<Task<RegistryServer>> _tlsBasic;
    private readonly Lazy<Task<RegistryServer>> _token;

    public SharedRegistries()
    {
        _anonymous = new(() => StartAsync(RegistryAuthMode.Anonymous, AnonymousImages));
        _tlsBasic = new(() => StartAsync(RegistryAuthMode.TlsBasic, AuthenticatedImages));
        _token = new(() => StartAsync(RegistryAuthMode.Token, AuthenticatedImages));
    }

    /// <summary>What the anonymous registry holds: (fixture image, format, repository:tag).</summary>
    public static IReadOnlyList<(string Image, PushFormat Format, string RepositoryTag)> AnonymousImages { get; } =
    [
        .. AllFormats.Select(f => (FixtureImages.Busybox, f, RepositoryTag(FixtureImages.Busybox, f))),
        (FixtureImages.RuntimeDeps, PushFormat.Oci, RepositoryTag(FixtureImages.RuntimeDeps, PushFormat.Oci)),
        .. AllFormats.Select(f => (FixtureImages.Runtime, f, RepositoryTag(FixtureImages.Runtime, f))),
        (FixtureImages.AspNet, PushFormat.Oci, RepositoryTag(FixtureImages.AspNet, PushFormat.Oci)),
        (FixtureImages.MultiArch, PushFormat.Oci, RepositoryTag(FixtureImages.MultiArch, PushFormat.Oci)),
        (FixtureImages.MultiArch, PushFormat.DockerV2S2, RepositoryTag(FixtureImages.MultiArch, PushFormat.DockerV2S2)),
    ];

    /// <summary>What the TLS and token registries hold.</summary>
    public static IReadOnlyList<(string Image, PushFormat Format, string RepositoryTag)> AuthenticatedImages { get; } =
    [
        (FixtureImages.Busybox, PushFormat.Oci, RepositoryTag(FixtureImages.Busybox, PushFormat.Oci)),
        (FixtureImages.MultiArch, PushFormat.Oci, RepositoryTag(FixtureImages.MultiArch, PushFormat.Oci)),
    ];

    /// <summary><c>&lt;image&gt;:latest</c> for OCI, else <c>&lt;image&gt;:v2s2|zstd|uncompressed</c>.</summary>
    public static string RepositoryTag(string image, PushFormat format) => image + ":" + format switch
    {
        PushFormat.Oci => "latest",
        PushFormat.DockerV2S2 => "v2s2",
        PushFormat.Zstd => "zstd",
        PushFormat.Uncompressed => "uncompressed",
        _ => throw new ArgumentOutOfRangeException(nameof(format)),
    };

    public Task<RegistryServer> AnonymousAsync() => _anonymous.Value;

    public Task<RegistryServer> TlsBasicAuthAsync() => _tlsBasic.Value;

    public Task<RegistryServer> TokenAuthAsync() => _token.Value;

    private static async Task<RegistryServer> StartAsync(RegistryAuthMode mode, IReadOnlyList<(string Image, PushFormat Format, string RepositoryTag)> images)
    {
        var server = await RegistryServer.StartAsync(mode);
        try
        {
            // Two repositories at a time (skopeo spends most of its time compressing, and the machine is shared);
            // the tags of one repository one after the other, so no two uploads of one blob race.
            using var slots = new SemaphoreSlim(2);
            await Task.WhenAll(images.GroupBy(item => item.Image).Select(async group =>
            {
                await slots.WaitAsync();
                try
                {
                    foreach (var item in group)
                    {
                        await server.PushAsync(item.Image, item.RepositoryTag, item.Format);
                    }
                }
                finally
                {
                    slots.Release();
                }
            }));
            return server;
        }
        catch
        {
            await server.DisposeAsync();
            throw;
        }
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var lazy in new[] { _anonymous, _tlsBasic, _token })
        {
            if (!lazy.IsValueCreated)
            {
                continue;
            }

            try
            {
                await (await lazy.Value).DisposeAsync();
            }
            catch (Exception)
            {
                // A registry that failed to start already cleaned up after itself.
            }
        }
    }
}
