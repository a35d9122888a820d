using System.ComponentModel;
using System.Diagnostics;
using System.Text;
using System.Text.Json;
using Runcible.Core.Diagnostics;

namespace Runcible.Core.Registry;

/// <summary>
/// Credentials for one registry: a user name and password (or token), or an identity (refresh) token.
/// <see cref="Source"/> says where they came from, for messages; the secret never appears in messages.
/// </summary>
internal sealed record RegistryCredential(string? Username, string? Password, string? IdentityToken, string Source)
{
    public override string ToString() => $"credentials for {Username ?? "<identity token>"} from {Source}";
}

/// <summary>
/// Finds registry credentials for a pull the way docker, podman and the .NET SDK do, in this order:
/// <list type="number">
/// <item>environment: <c>RUNCIBLE_REGISTRY_USERNAME</c>/<c>RUNCIBLE_REGISTRY_PASSWORD</c>, then the .NET SDK's pull
/// credentials <c>DOTNET_CONTAINER_PULL_REGISTRY_UNAME</c>/<c>DOTNET_CONTAINER_PULL_REGISTRY_PWORD</c>; then, only for the
/// registry the project publishes to (<see cref="RegistryClientOptions.ContainerRegistry"/>), the SDK's push credentials
/// <c>DOTNET_CONTAINER_REGISTRY_UNAME</c>/<c>DOTNET_CONTAINER_REGISTRY_PWORD</c> and the older <c>SDK_CONTAINER_REGISTRY_*</c>
/// (the SDK scopes them the same way: a CI set up to push to a private registry must not hand them to the base image's);</item>
/// <item>Docker's <c>$DOCKER_CONFIG/config.json</c> or <c>~/.docker/config.json</c>: <c>credHelpers</c> for the host,
/// then <c>auths</c> (base64 <c>auth</c>, <c>username</c>/<c>password</c>, <c>identitytoken</c>), then <c>credsStore</c>;</item>
/// <item>containers (podman, skopeo, buildah) <c>auth.json</c>: <c>$REGISTRY_AUTH_FILE</c>,
/// <c>$XDG_RUNTIME_DIR/containers/auth.json</c>, <c>$XDG_CONFIG_HOME/containers/auth.json</c> (default
/// <c>~/.config/containers/auth.json</c>); keys may name a repository namespace (<c>host/ns</c>), the most specific wins.</item>
/// </list>
/// Helpers run as <c>docker-credential-&lt;name&gt; get</c>, found on the <c>PATH</c> of the options' environment.
/// </summary>
internal sealed class CredentialStore
{
    private const int MaxConfigBytes = 4 * 1024 * 1024;

    private readonly RegistryClientOptions _options;

    public CredentialStore(RegistryClientOptions options)
    {
        _options = options;
    }

    /// <summary>Credentials for <paramref name="repository"/> on <paramref name="registry"/> (as written in the image reference), or null.</summary>
    public RegistryCredential? Find(string registry, string repository)
    {
        foreach (var (userVariable, passwordVariable) in EnvironmentPairsFor(registry))
        {
            var user = _options.GetEnvironment(userVariable);
            var password = _options.GetEnvironment(passwordVariable);
            if (user is not null && password is not null)
            {
                return new RegistryCredential(user, password, null, $"the environment variables {userVariable}/{passwordVariable}");
            }
        }

        foreach (var file in ConfigFiles())
        {
            if (FindInConfigFile(file, registry, repository) is { } credential)
            {
                return credential;
            }
        }

        return null;
    }

    /// <summary>Where <see cref="Find"/> looks for <paramref name="registry"/>, for the message of an authorization failure.</summary>
    public string DescribeLocations(string registry) =>
        string.Join(", ", EnvironmentPairsFor(registry).Select(p => $"{p.User}/{p.Password}")
            .Concat(ConfigFiles().Select(f => File.Exists(f) ? f : f + " (absent)")));

    /// <summary>The environment variable pairs that may hold credentials for a pull from <paramref name="registry"/>, first match wins.</summary>
    private IEnumerable<(string User, string Password)> EnvironmentPairsFor(string registry)
    {
        yield return ("RUNCIBLE_REGISTRY_USERNAME", "RUNCIBLE_REGISTRY_PASSWORD");
        yield return ("DOTNET_CONTAINER_PULL_REGISTRY_UNAME", "DOTNET_CONTAINER_PULL_REGISTRY_PWORD");
        if (_options.ContainerRegistry is { Length: > 0 } output && RegistryNames.AreSame(output, registry))
        {
            yield return ("DOTNET_CONTAINER_REGISTRY_UNAME", "DOTNET_CONTAINER_REGISTRY_PWORD");
            yield return ("SDK_CONTAINER_REGISTRY_UNAME", "SDK_CONTAINER_REGISTRY_PWORD");
        }
    }

    private IEnumerable<string> ConfigFiles()
    {
        var home = _options.ResolveHomeDirectory();
        yield return Path.Combine(_options.GetEnvironment("DOCKER_CONFIG") ?? Path.Combine(home, ".docker"), "config.json");
        if (_options.GetEnvironment("REGISTRY_AUTH_FILE") is { } authFile)
        {
            yield return authFile;
        }

        if (_options.GetEnvironment("XDG_RUNTIME_DIR") is { } runtimeDirectory)
        {
            yield return Path.Combine(runtimeDirectory, "containers", "auth.json");
        }

        yield return Path.Combine(_options.GetEnvironment("XDG_CONFIG_HOME") ?? Path.Combine(home, ".config"), "containers", "auth.json");
    }

    private RegistryCredential? FindInConfigFile(string path, string registry, string repository)
    {
        if (!File.Exists(path))
        {
            return null;
        }

        JsonDocument document;
        try
        {
            using var stream = File.OpenRead(path);
            if (stream.Length > MaxConfigBytes)
            {
                throw new RuncibleException(RuncibleErrors.CredentialFileInvalid, path, $"it is larger than {MaxConfigBytes} bytes");
            }

            document = JsonDocument.Parse(stream);
        }
        catch (JsonException e)
        {
            throw new RuncibleException(e, RuncibleErrors.CredentialFileInvalid, path, "it is not valid JSON: " + e.Message);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new RuncibleException(e, RuncibleErrors.CredentialFileInvalid, path, e.Message);
        }

        using (document)
        {
            var root = document.RootElement;
            if (root.ValueKind != JsonValueKind.Object)
            {
                throw new RuncibleException(RuncibleErrors.CredentialFileInvalid, path, "its top level is not a JSON object");
            }

            if (BestMatch(root, "credHelpers", registry, repository) is { } helperEntry)
            {
                if (helperEntry.ValueKind != JsonValueKind.String || string.IsNullOrEmpty(helperEntry.GetString()))
                {
                    throw new RuncibleException(RuncibleErrors.CredentialFileInvalid, path, $"credHelpers for {registry} is not a helper name");
                }

                return RunHelper(helperEntry.GetString()!, path, registry);
            }

            if (BestMatch(root, "auths", registry, repository) is { } entry && ReadAuthEntry(entry, path, registry) is { } credential)
            {
                return credential;
            }

            if (root.TryGetProperty("credsStore", out var store) && store.ValueKind == JsonValueKind.String && !string.IsNullOrEmpty(store.GetString()))
            {
                return RunHelper(store.GetString()!, path, registry);
            }

            return null;
        }
    }

    /// <summary>The value under <paramref name="section"/> whose key names this registry (and the longest repository prefix).</summary>
    private static JsonElement? BestMatch(JsonElement root, string section, string registry, string repository)
    {
        if (!root.TryGetProperty(section, out var map) || map.ValueKind != JsonValueKind.Object)
        {
            return null;
        }

        JsonElement? best = null;
        var bestLength = -1;
        foreach (var property in map.EnumerateObject())
        {
            var length = MatchLength(property.Name, registry, repository);
            if (length > bestLength)
            {
                best = property.Value;
                bestLength = length;
            }
        }

        return best;
    }

    /// <summary>
    /// -1 when <paramref name="key"/> (a config key: <c>host</c>, <c>https://host/v1/</c>, <c>host/namespace</c>)
    /// does not name this registry, else how specific it is (length of the matched repository prefix).
    /// </summary>
    internal static int MatchLength(string key, string registry, string repository)
    {
        var explicitScheme = key.StartsWith("https://", StringComparison.OrdinalIgnoreCase) || key.StartsWith("http://", StringComparison.OrdinalIgnoreCase);
        var withoutScheme = explicitScheme ? key[(key.IndexOf("//", StringComparison.Ordinal) + 2)..] : key;
        var slash = withoutScheme.IndexOf('/');
        var host = slash < 0 ? withoutScheme : withoutScheme[..slash];
        var path = slash < 0 ? "" : withoutScheme[(slash + 1)..].TrimEnd('/');

        var sameHost = string.Equals(host, registry, StringComparison.OrdinalIgnoreCase)
            || (RegistryNames.IsDockerHub(host.ToLowerInvariant()) && RegistryNames.IsDockerHub(registry));
        if (!sameHost)
        {
            return -1;
        }

        // Docker keys carry API paths (https://index.docker.io/v1/); podman keys may carry a repository namespace.
        if (path.Length == 0 || explicitScheme)
        {
            return 0;
        }

        return repository == path || repository.StartsWith(path + "/", StringComparison.Ordinal) ? path.Length : -1;
    }

    private static RegistryCredential? ReadAuthEntry(JsonElement entry, string path, string registry)
    {
        if (entry.ValueKind != JsonValueKind.Object)
        {
            throw new RuncibleException(RuncibleErrors.CredentialFileInvalid, path, $"auths entry for {registry} is not an object");
        }

        var source = $"{path} (auths)";
        string? identityToken = GetString(entry, "identitytoken");
        string? user = GetString(entry, "username");
        string? password = GetString(entry, "password");
        if (GetString(entry, "auth") is { } auth)
        {
            string decoded;
            try
            {
                decoded = Encoding.UTF8.GetString(Convert.FromBase64String(auth));
            }
            catch (FormatException)
            {
                throw new RuncibleException(RuncibleErrors.CredentialFileInvalid, path, $"the auth value for {registry} is not base64");
            }

            var colon = decoded.IndexOf(':');
            if (colon < 0)
            {
                throw new RuncibleException(RuncibleErrors.CredentialFileInvalid, path, $"the auth value for {registry} is not base64 of user:password");
            }

            user = decoded[..colon];
            password = decoded[(colon + 1)..];
        }

        if (identityToken is not null)
        {
            return new RegistryCredential(user, null, identityToken, source);
        }

        return user is not null && password is not null ? new RegistryCredential(user, password, null, source) : null;
    }

    private static string? GetString(JsonElement entry, string name) =>
        entry.TryGetProperty(name, out var value) && value.ValueKind == JsonValueKind.String && !string.IsNullOrEmpty(value.GetString())
            ? value.GetString()
            : null;

    private RegistryCredential? RunHelper(string helper, string configPath, string registry)
    {
        if (helper.IndexOfAny(['/', '\\', '\0']) >= 0)
        {
            throw new RuncibleException(RuncibleErrors.CredentialFileInvalid, configPath, $"the credential helper name '{helper}' contains a path separator");
        }

        var executable = FindOnPath("docker-credential-" + helper)
            ?? throw new RuncibleException(RuncibleErrors.CredentialHelperMissing, helper, configPath);
        var server = RegistryNames.IsDockerHub(registry) ? RegistryNames.DockerHubCredentialKey : registry;

        var startInfo = new ProcessStartInfo(executable)
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        startInfo.ArgumentList.Add("get");
        startInfo.Environment.Clear();
        foreach (var (key, value) in _options.Environment)
        {
            startInfo.Environment[key] = value;
        }

        startInfo.Environment["HOME"] = _options.ResolveHomeDirectory();

        string output, error;
        int exitCode;
        try
        {
            using var process = Process.Start(startInfo) ?? throw new InvalidOperationException("the process did not start");
            var outputTask = process.StandardOutput.ReadToEndAsync();
            var errorTask = process.StandardError.ReadToEndAsync();
            process.StandardInput.Write(server);
            process.StandardInput.Close();
            if (!process.WaitForExit(_options.CredentialHelperTimeout))
            {
                process.Kill(entireProcessTree: true);
                process.WaitForExit();
                throw new RuncibleException(RuncibleErrors.CredentialHelperFailed, helper, server, $"it did not answer within {_options.CredentialHelperTimeout.TotalSeconds:0} s");
            }

            output = outputTask.GetAwaiter().GetResult();
            error = errorTask.GetAwaiter().GetResult();
            exitCode = process.ExitCode;
        }
        catch (Exception e) when (e is Win32Exception or IOException or InvalidOperationException)
        {
            throw new RuncibleException(e, RuncibleErrors.CredentialHelperFailed, helper, server, e.Message);
        }

        if (exitCode != 0)
        {
            // The helper protocol's "no credentials for this server" answer.
            if (output.Contains("credentials not found", StringComparison.OrdinalIgnoreCase)
                || error.Contains("credentials not found", StringComparison.OrdinalIgnoreCase))
            {
                return null;
            }

            throw new RuncibleException(RuncibleErrors.CredentialHelperFailed, helper, server,
                $"exit code {exitCode}: {Excerpt(error.Length > 0 ? error : output)}");
        }

        try
        {
            using var document = JsonDocument.Parse(output);
            var root = document.RootElement;
            var user = root.ValueKind == JsonValueKind.Object ? GetString(root, "Username") : null;
            var secret = root.ValueKind == JsonValueKind.Object ? GetString(root, "Secret") : null;
            if (secret is null)
            {
                throw new RuncibleException(RuncibleErrors.CredentialHelperFailed, helper, server, "its answer has no Secret");
            }

            var source = $"the credential helper docker-credential-{helper} (from {configPath})";
            // By the helper protocol, the user name "<token>" marks an identity token.
            return user == "<token>"
                ? new RegistryCredential(null, null, secret, source)
                : new RegistryCredential(user ?? "", secret, null, source);
        }
        catch (JsonException e)
        {
            throw new RuncibleException(e, RuncibleErrors.CredentialHelperFailed, helper, server, "its answer is not JSON");
        }
    }

    private string? FindOnPath(string name)
    {
        foreach (var directory in (_options.GetEnvironment("PATH") ?? "").Split(':', StringSplitOptions.RemoveEmptyEntries))
        {
            var candidate = Path.Combine(directory, name);
            if (File.Exists(candidate))
            {
                return candidate;
            }
        }

        return null;
    }

    private static string Excerpt(string text)
    {
        text = text.Trim();
        return text.Length <= 300 ? text : text[..300] + "…";
    }
}
