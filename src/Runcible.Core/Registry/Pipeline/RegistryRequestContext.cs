namespace Runcible.Core.Registry.Pipeline;

/// <summary>
/// What the handlers of the pipeline need to know about a request beyond its URI: the image it is for (for messages),
/// the registry as the reference writes it (insecure lists, credentials and tokens are keyed by it), the repository
/// (the token scope, credential scoping), what is fetched (for retry messages) and the retry budget of that fetch.
/// Carried in <see cref="HttpRequestMessage.Options"/>, so no handler keeps per-request state of its own.
/// </summary>
internal sealed class RegistryRequestContext
{
    private static readonly HttpRequestOptionsKey<RegistryRequestContext> Key = new("Runcible.RegistryRequest");

    public RegistryRequestContext(string name, string registry, string repository, string what, RetryBudget budget)
    {
        Name = name;
        Registry = registry;
        Repository = repository;
        What = what;
        Budget = budget;
    }

    /// <summary>The image as messages name it (<c>registry/repository</c>).</summary>
    public string Name { get; }

    public string Registry { get; }

    public string Repository { get; }

    public string What { get; }

    /// <summary>Shared by <see cref="RetryHandler"/> (failed exchanges) and <see cref="RegistryClient.WithRetriesAsync{T}"/> (cut bodies).</summary>
    public RetryBudget Budget { get; }

    /// <summary>The pull scope the token and credentials are asked for.</summary>
    public string Scope => $"repository:{Repository}:pull";

    public void AttachTo(HttpRequestMessage request) => request.Options.Set(Key, this);

    public static RegistryRequestContext? Find(HttpRequestMessage request) =>
        request.Options.TryGetValue(Key, out var context) ? context : null;

    /// <summary>The context of a request that cannot be sent without one (auth and endpoint choice are per registry).</summary>
    public static RegistryRequestContext Require(HttpRequestMessage request, string handler) =>
        Find(request) ?? throw new InvalidOperationException($"{handler} needs a {nameof(RegistryRequestContext)} on the request");
}
