using System.Text;
using Runcible.Core.Diagnostics;
using Runcible.Core.Registry;
using Runcible.Tests.Infrastructure;
using Runcible.Tests.Infrastructure.Registry;
using static Runcible.Tests.Registry.RegistryTestSupport;

namespace Runcible.Tests.Registry;

/// <summary>Basic auth over TLS against the real registry: TLS trust, every credential source, and the errors.</summary>
public sealed class RegistryAuthTests(SharedRegistries registries)
{
    private static async Task PullBusyboxAsync(RegistryClient client, RegistryServer registry)
    {
        using var source = client.Open(registry.Host, "busybox");
        var manifest = await source.GetManifestAsync("latest", Ct);
        Assert.Equal(SkopeoManifest(registry, "busybox:latest"), manifest.Bytes);
        var config = ConfigOf(manifest);
        Assert.Equal(config.Digest, Sha256(await CopyBlobAsync(source, config)));
    }

    [Fact]
    public async Task BasicAuthOverTLSVerifiedWithATrustedCAWithoutMarkingTheRegistryInsecure()
    {
        var registry = await registries.TlsBasicAuthAsync();
        using var home = new TempDirectory();
        var log = new RecordingBuildLog();
        using var client = new RegistryClient(Options(home, CredentialEnvironment(registry), log, trust: registry, loopbackIsInsecure: false));
        Assert.False(client.IsInsecure(registry.Host));

        await PullBusyboxAsync(client, registry);
        Assert.Empty(log.Warnings);
    }

    [Fact]
    public async Task AnUntrustedCertificateOnARegistryNotListedAsInsecureIsACodedTLSError()
    {
        var registry = await registries.TlsBasicAuthAsync();
        using var home = new TempDirectory();
        using var client = new RegistryClient(Options(home, CredentialEnvironment(registry), loopbackIsInsecure: false));
        using var source = client.Open(registry.Host, "busybox");

        var error = await ThrowsCodeAsync("RUNCIBLE1009", () => source.GetManifestAsync("latest", Ct));
        Assert.Contains("DOTNET_CONTAINER_INSECURE_REGISTRIES", error.Message);
        Assert.Contains(registry.Host, error.Message);
    }

    [Fact]
    public async Task AnInsecureRegistryAcceptsAnUntrustedCertificateWithAWarning()
    {
        var registry = await registries.TlsBasicAuthAsync();
        using var home = new TempDirectory();
        var environment = CredentialEnvironment(registry);
        environment["DOTNET_CONTAINER_INSECURE_REGISTRIES"] = "other.example:5000, " + registry.Host;
        var log = new RecordingBuildLog();
        using var client = new RegistryClient(Options(home, environment, log, loopbackIsInsecure: false));
        Assert.True(client.IsInsecure(registry.Host));
        Assert.False(client.IsInsecure("127.0.0.1:1"));

        await PullBusyboxAsync(client, registry);
        var warning = Assert.Single(log.Warnings);
        Assert.Equal("RUNCIBLE1017", warning.Code);
        Assert.Contains("certificate", warning.Message);
    }

    [Fact]
    public async Task AnInsecureEntryForAnotherPortOfTheSameHostDoesNotRelaxTLSVerification()
    {
        var registry = await registries.TlsBasicAuthAsync();
        using var home = new TempDirectory();
        var environment = CredentialEnvironment(registry);
        environment["DOTNET_CONTAINER_INSECURE_REGISTRIES"] = "127.0.0.1:1";
        var log = new RecordingBuildLog();
        using var client = new RegistryClient(Options(home, environment, log, loopbackIsInsecure: false));
        Assert.False(client.IsInsecure(registry.Host));
        using var source = client.Open(registry.Host, "busybox");

        await ThrowsCodeAsync("RUNCIBLE1009", () => source.GetManifestAsync("latest", Ct));
        Assert.Empty(log.Warnings);
    }

    [Fact]
    public async Task WithoutCredentialsTheErrorSaysWhereTheyWereLookedFor()
    {
        var registry = await registries.TlsBasicAuthAsync();
        using var home = new TempDirectory();
        using var client = new RegistryClient(Options(home, trust: registry));
        using var source = client.Open(registry.Host, "busybox");

        var error = await ThrowsCodeAsync("RUNCIBLE1003", () => source.GetManifestAsync("latest", Ct));
        Assert.Contains(Path.Combine(home.Path, ".docker", "config.json"), error.Message);
        Assert.Contains(Path.Combine(home.Path, ".config", "containers", "auth.json"), error.Message);
        Assert.Contains("RUNCIBLE_REGISTRY_USERNAME", error.Message);
        Assert.Contains("DOTNET_CONTAINER_PULL_REGISTRY_UNAME", error.Message);

        // The SDK's push credentials are looked for only when the registry is the project's ContainerRegistry.
        Assert.DoesNotContain("DOTNET_CONTAINER_REGISTRY_UNAME", error.Message);
        using var publishing = new RegistryClient(Options(home, trust: registry, containerRegistry: registry.Host));
        using var fromOutput = publishing.Open(registry.Host, "busybox");
        Assert.Contains("DOTNET_CONTAINER_REGISTRY_UNAME", (await ThrowsCodeAsync("RUNCIBLE1003", () => fromOutput.GetManifestAsync("latest", Ct))).Message);
    }

    [Fact]
    public async Task AWrongPasswordIsACodedErrorNamingWhereTheCredentialsCameFrom()
    {
        var registry = await registries.TlsBasicAuthAsync();
        using var home = new TempDirectory();
        var environment = new Dictionary<string, string>
        {
            ["DOTNET_CONTAINER_PULL_REGISTRY_UNAME"] = registry.Username!,
            ["DOTNET_CONTAINER_PULL_REGISTRY_PWORD"] = "wrong-" + registry.Password,
        };
        using var client = new RegistryClient(Options(home, environment, trust: registry));
        using var source = client.Open(registry.Host, "busybox");

        var error = await ThrowsCodeAsync("RUNCIBLE1004", () => source.GetManifestAsync("latest", Ct));
        Assert.Contains("DOTNET_CONTAINER_PULL_REGISTRY_UNAME", error.Message);
        Assert.DoesNotContain(registry.Password!, error.Message);
    }

    [Fact]
    public async Task TheDotnetSdkEnvironmentVariablesAreCredentials()
    {
        var registry = await registries.TlsBasicAuthAsync();
        using var home = new TempDirectory();
        var pull = new Dictionary<string, string>
        {
            ["DOTNET_CONTAINER_PULL_REGISTRY_UNAME"] = registry.Username!,
            ["DOTNET_CONTAINER_PULL_REGISTRY_PWORD"] = registry.Password!,
        };
        using (var client = new RegistryClient(Options(home, pull, trust: registry)))
        {
            await PullBusyboxAsync(client, registry);
        }

        // The push credentials, for a base image on the project's own ContainerRegistry.
        var push = new Dictionary<string, string>
        {
            ["DOTNET_CONTAINER_REGISTRY_UNAME"] = registry.Username!,
            ["DOTNET_CONTAINER_REGISTRY_PWORD"] = registry.Password!,
        };
        using (var client = new RegistryClient(Options(home, push, trust: registry, containerRegistry: registry.Host)))
        {
            await PullBusyboxAsync(client, registry);
        }
    }

    [Fact]
    public async Task DockerConfigAuthsWithBase64AuthUnderDOCKERCONFIG()
    {
        var registry = await registries.TlsBasicAuthAsync();
        using var home = new TempDirectory();
        var dockerConfig = home.Combine("docker-config");
        Directory.CreateDirectory(dockerConfig);
        var auth = Convert.ToBase64String(Encoding.UTF8.GetBytes($"{registry.Username}:{registry.Password}"));
        File.WriteAllText(Path.Combine(dockerConfig, "config.json"),
            $$$"""{"auths":{"other.example":{"auth":"eDp5"},"https://{{{registry.Host}}}":{"auth":"{{{auth}}}" } } }""");
        using var client = new RegistryClient(Options(home, new Dictionary<string, string> { ["DOCKER_CONFIG"] = dockerConfig }, trust: registry));
        await PullBusyboxAsync(client, registry);
    }

    [Fact]
    public async Task DockerConfigInTheHomeDirectoryWithUsernameAndPassword()
    {
        var registry = await registries.TlsBasicAuthAsync();
        using var home = new TempDirectory();
        Directory.CreateDirectory(home.Combine(".docker"));
        File.WriteAllText(home.Combine(".docker", "config.json"),
            $$$"""{"auths":{"{{{registry.Host}}}":{"username":"{{{registry.Username}}}","password":"{{{registry.Password}}}" } } }""");
        using var client = new RegistryClient(Options(home, trust: registry));
        await PullBusyboxAsync(client, registry);
    }

    [Fact]
    public async Task PodmanAuthJsonFromREGISTRYAUTHFILETheMostSpecificKeyWinning()
    {
        var registry = await registries.TlsBasicAuthAsync();
        using var home = new TempDirectory();
        var authFile = home.Combine("auth.json");
        var good = Convert.ToBase64String(Encoding.UTF8.GetBytes($"{registry.Username}:{registry.Password}"));
        var bad = Convert.ToBase64String(Encoding.UTF8.GetBytes($"{registry.Username}:wrong"));
        File.WriteAllText(authFile, $$$"""{"auths":{"{{{registry.Host}}}":{"auth":"{{{bad}}}"},"{{{registry.Host}}}/busybox":{"auth":"{{{good}}}" } } }""");
        using var client = new RegistryClient(Options(home, new Dictionary<string, string> { ["REGISTRY_AUTH_FILE"] = authFile }, trust: registry));
        await PullBusyboxAsync(client, registry);
    }

    [Fact]
    public async Task PodmanAuthJsonUnderXDGRUNTIMEDIR()
    {
        var registry = await registries.TlsBasicAuthAsync();
        using var home = new TempDirectory();
        var runtimeDirectory = home.Combine("run");
        Directory.CreateDirectory(Path.Combine(runtimeDirectory, "containers"));
        var auth = Convert.ToBase64String(Encoding.UTF8.GetBytes($"{registry.Username}:{registry.Password}"));
        File.WriteAllText(Path.Combine(runtimeDirectory, "containers", "auth.json"), $$$"""{"auths":{"{{{registry.Host}}}":{"auth":"{{{auth}}}" } } }""");
        using var client = new RegistryClient(Options(home, new Dictionary<string, string> { ["XDG_RUNTIME_DIR"] = runtimeDirectory }, trust: registry));
        await PullBusyboxAsync(client, registry);
    }

    /// <summary>Writes <c>docker-credential-test</c> into a fresh PATH directory: it logs the server it was asked for and answers the registry's account.</summary>
    private static (Dictionary<string, string> Environment, string LogFile) FakeHelper(TempDirectory home, RegistryServer registry, string dockerConfigJson)
    {
        var bin = home.Combine("bin");
        Directory.CreateDirectory(bin);
        var logFile = home.Combine("helper.log");
        var script = Path.Combine(bin, "docker-credential-test");
        File.WriteAllText(script, $$"""
            #!/bin/sh
            [ "$1" = get ] || exit 2
            server=$(cat)
            echo "$server" >> '{{logFile}}'
            if [ "$server" = '{{registry.Host}}' ]; then
              printf '{"ServerURL":"%s","Username":"{{registry.Username}}","Secret":"{{registry.Password}}"}' "$server"
            else
              echo "credentials not found in native keychain"
              exit 1
            fi
            """.Replace("\r", ""));
        ProcessRunner.Run("chmod", "700", script).EnsureSuccess("chmod");
        Directory.CreateDirectory(home.Combine(".docker"));
        File.WriteAllText(home.Combine(".docker", "config.json"), dockerConfigJson);
        return (new Dictionary<string, string> { ["PATH"] = bin + ":/usr/bin:/bin" }, logFile);
    }

    [Fact]
    public async Task CredsStoreRunsTheDockerCredentialHelperWithTheServerOnStdin()
    {
        var registry = await registries.TlsBasicAuthAsync();
        using var home = new TempDirectory();
        var (environment, logFile) = FakeHelper(home, registry, $$$"""{"auths":{"{{{registry.Host}}}":{}},"credsStore":"test"}""");
        using var client = new RegistryClient(Options(home, environment, trust: registry));

        await PullBusyboxAsync(client, registry);
        // Looked up once per repository, not once per request.
        Assert.Equal([registry.Host], File.ReadAllLines(logFile));
    }

    [Fact]
    public async Task CredHelpersNameAHelperPerRegistry()
    {
        var registry = await registries.TlsBasicAuthAsync();
        using var home = new TempDirectory();
        var (environment, logFile) = FakeHelper(home, registry, $$$"""{"credHelpers":{"{{{registry.Host}}}":"test","other.example":"absent"}}""");
        using var client = new RegistryClient(Options(home, environment, trust: registry));

        await PullBusyboxAsync(client, registry);
        Assert.Equal([registry.Host], File.ReadAllLines(logFile));
    }

    [Fact]
    public async Task AMissingCredentialHelperIsACodedErrorNamingIt()
    {
        var registry = await registries.TlsBasicAuthAsync();
        using var home = new TempDirectory();
        Directory.CreateDirectory(home.Combine(".docker"));
        File.WriteAllText(home.Combine(".docker", "config.json"), """{"credsStore":"nonexistent-helper"}""");
        using var client = new RegistryClient(Options(home, new Dictionary<string, string> { ["PATH"] = home.Path }, trust: registry));
        using var source = client.Open(registry.Host, "busybox");

        var error = await ThrowsCodeAsync("RUNCIBLE1005", () => source.GetManifestAsync("latest", Ct));
        Assert.Contains("docker-credential-nonexistent-helper", error.Message);
        Assert.Contains(home.Combine(".docker", "config.json"), error.Message);
    }

    [Fact]
    public async Task AMalformedConfigFileIsACodedError()
    {
        var registry = await registries.TlsBasicAuthAsync();
        using var home = new TempDirectory();
        Directory.CreateDirectory(home.Combine(".docker"));
        File.WriteAllText(home.Combine(".docker", "config.json"), """{"auths": {"x": """);
        using var client = new RegistryClient(Options(home, trust: registry));
        using var source = client.Open(registry.Host, "busybox");

        var error = await ThrowsCodeAsync("RUNCIBLE1007", () => source.GetManifestAsync("latest", Ct));
        Assert.Contains(home.Combine(".docker", "config.json"), error.Message);
    }

    [Fact]
    public void DockerHubCredentialsAreFoundUnderTheIndexKeyAndPassedToHelpersByIt()
    {
        Assert.Equal(0, CredentialStore.MatchLength("https://index.docker.io/v1/", "docker.io", "library/debian"));
        Assert.Equal(0, CredentialStore.MatchLength("docker.io", "docker.io", "library/debian"));
        Assert.Equal(0, CredentialStore.MatchLength("registry-1.docker.io", "docker.io", "library/debian"));
        Assert.Equal(0, CredentialStore.MatchLength("http://localhost:5000", "localhost:5000", "a/b"));
        Assert.Equal(-1, CredentialStore.MatchLength("localhost:5001", "localhost:5000", "a/b"));
        Assert.Equal(1, CredentialStore.MatchLength("localhost:5000/a", "localhost:5000", "a/b"));
        Assert.Equal(-1, CredentialStore.MatchLength("localhost:5000/ab", "localhost:5000", "a/b"));

        using var home = new TempDirectory();
        Directory.CreateDirectory(home.Combine(".docker"));
        File.WriteAllText(home.Combine(".docker", "config.json"),
            """{"auths":{"https://index.docker.io/v1/":{"auth":"aHViLXVzZXI6aHViLXBhc3M=" } } }""");
        var store = new CredentialStore(Options(home));
        var credential = store.Find("docker.io", "library/debian");
        Assert.NotNull(credential);
        Assert.Equal("hub-user", credential.Username);
        Assert.Equal("hub-pass", credential.Password);
        Assert.Null(store.Find("ghcr.io", "x/y"));
    }
}
