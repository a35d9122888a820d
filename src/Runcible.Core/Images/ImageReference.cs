using System.Diagnostics.CodeAnalysis;
using Runcible.Core.Diagnostics;
using Runcible.Core.Oci;

namespace Runcible.Core.Images;

/// <summary>
/// A registry image reference, parsed with the grammar of distribution's <c>reference</c> package (what
/// docker and skopeo accept): <c>[registry[:port]/]repository[:tag][@digest]</c>, with <c>docker.io</c>
/// as the default registry and <c>library/</c> for its single-component names.
/// </summary>
internal sealed record ImageReference
{
    public const string DefaultRegistry = "docker.io";
    public const string DefaultTag = "latest";
    private const int MaxNameLength = ReferenceGrammar.MaxNameLength;

    private ImageReference(string registry, string repository, string? tag, Digest? digest)
    {
        Registry = registry;
        Repository = repository;
        Tag = tag;
        Digest = digest;
    }

    /// <summary>Registry host as written (<c>docker.io</c> when none was), with its port.</summary>
    public string Registry { get; }

    /// <summary>Repository path, with <c>library/</c> added for single names on docker.io.</summary>
    public string Repository { get; }

    /// <summary>The tag as written; null when there was none (then <see cref="DefaultTag"/> applies unless a digest pins it).</summary>
    public string? Tag { get; }

    public Digest? Digest { get; }

    /// <summary>What to ask the registry for: the digest when pinned, else the tag (or <c>latest</c>).</summary>
    public string ManifestReference => Digest?.ToString() ?? Tag ?? DefaultTag;

    public override string ToString() =>
        $"{Registry}/{Repository}{(Tag is null && Digest is null ? ":" + DefaultTag : Tag is null ? "" : ":" + Tag)}{(Digest is null ? "" : "@" + Digest)}";

    public static ImageReference Parse(string value) =>
        TryParse(value, out var reference, out var problem)
            ? reference
            : throw new RuncibleException(RuncibleErrors.InvalidImageReference, value, problem);

    public static bool TryParse(string? value, [NotNullWhen(true)] out ImageReference? reference, [NotNullWhen(false)] out string? problem)
    {
        reference = null;
        if (string.IsNullOrEmpty(value))
        {
            problem = "it is empty";
            return false;
        }

        if (value.Any(c => char.IsWhiteSpace(c) || char.IsControl(c)))
        {
            problem = "it contains white space or control characters";
            return false;
        }

        var rest = value;
        Digest? digest = null;
        var at = rest.IndexOf('@');
        if (at >= 0)
        {
            var digestText = rest[(at + 1)..];
            if (!Oci.Digest.TryParse(digestText, out var parsed))
            {
                problem = $"'{digestText}' is not a digest (sha256:<64 lower-case hex> or sha512:<128>)";
                return false;
            }

            digest = parsed;
            rest = rest[..at];
        }

        string? tag = null;
        var lastSlash = rest.LastIndexOf('/');
        var colon = rest.LastIndexOf(':');
        if (colon > lastSlash)
        {
            tag = rest[(colon + 1)..];
            rest = rest[..colon];
            if (!ReferenceGrammar.IsTag(tag))
            {
                problem = $"'{tag}' is not a tag (letters, digits, '_', '.', '-', at most 128, not starting with '.' or '-')";
                return false;
            }
        }

        if (rest.Length == 0)
        {
            problem = "the repository name is missing";
            return false;
        }

        if (rest.Length > MaxNameLength)
        {
            problem = $"the name is longer than {MaxNameLength} characters";
            return false;
        }

        var registry = DefaultRegistry;
        var repository = rest;
        var firstSlash = rest.IndexOf('/');
        if (firstSlash > 0)
        {
            var first = rest[..firstSlash];
            // As docker: the first component is a registry when it looks like a host (a dot, a port, localhost).
            if (first.Contains('.') || first.Contains(':') || first == "localhost" || first.StartsWith('['))
            {
                if (!ReferenceGrammar.IsDomain(first))
                {
                    problem = $"'{first}' is not a registry host (host or host:port)";
                    return false;
                }

                registry = first;
                repository = rest[(firstSlash + 1)..];
            }
        }

        if (repository.Length == 0 || !ReferenceGrammar.IsRepositoryPath(repository))
        {
            problem = repository.Any(char.IsUpper)
                ? $"the repository '{repository}' must be lower case"
                : $"'{repository}' is not a repository name (lower-case letters, digits and separators '.', '_', '__', '-' in '/'-separated components)";
            return false;
        }

        if (registry is DefaultRegistry or "index.docker.io" && !repository.Contains('/'))
        {
            repository = "library/" + repository;
        }

        if (registry == "index.docker.io")
        {
            registry = DefaultRegistry;
        }

        reference = new ImageReference(registry, repository, tag, digest);
        problem = null;
        return true;
    }
}

/// <summary>The kinds of local image source, as skopeo names its transports.</summary>
internal enum LocalSourceKind
{
    OciLayout,
    OciArchive,
    DockerArchive,
}

/// <summary>
/// A local image source: <c>oci-layout:&lt;dir&gt;[:tag|@digest]</c>, <c>oci-archive:&lt;file&gt;[:tag]</c>,
/// <c>docker-archive:&lt;file&gt;[:repo:tag]</c>. As skopeo reads these, the path ends at the first ':'
/// (so it cannot contain one); a layout's <c>@digest</c> suffix is recognised first.
/// </summary>
internal sealed record LocalImageReference(LocalSourceKind Kind, string Path, string? Tag, Digest? Digest)
{
    public static bool IsLocal(string value) =>
        value.StartsWith("oci-layout:", StringComparison.Ordinal)
        || value.StartsWith("oci-archive:", StringComparison.Ordinal)
        || value.StartsWith("docker-archive:", StringComparison.Ordinal);

    public static LocalImageReference Parse(string value)
    {
        var colon = value.IndexOf(':');
        var kind = value[..Math.Max(colon, 0)] switch
        {
            "oci-layout" => LocalSourceKind.OciLayout,
            "oci-archive" => LocalSourceKind.OciArchive,
            "docker-archive" => LocalSourceKind.DockerArchive,
            _ => throw new RuncibleException(RuncibleErrors.InvalidImageReference, value, "it does not start with oci-layout:, oci-archive: or docker-archive:"),
        };
        var rest = value[(colon + 1)..];
        string? tag = null;
        Digest? digest = null;

        var at = kind == LocalSourceKind.OciLayout ? rest.LastIndexOf('@') : -1;
        if (at > 0 && rest.IndexOf('/', at) < 0)
        {
            var digestText = rest[(at + 1)..];
            if (!Oci.Digest.TryParse(digestText, out var parsed))
            {
                throw new RuncibleException(RuncibleErrors.InvalidImageReference, value, $"'{digestText}' is not a digest");
            }

            digest = parsed;
            rest = rest[..at];
        }
        else
        {
            // As skopeo: the path ends at the first ':' (docker-archive's reference may itself hold one: repo:tag).
            var split = rest.IndexOf(':');
            if (split >= 0)
            {
                tag = rest[(split + 1)..];
                rest = rest[..split];
                if (tag.Length == 0)
                {
                    throw new RuncibleException(RuncibleErrors.InvalidImageReference, value, "the tag after ':' is empty");
                }
            }
        }

        if (rest.Length == 0 || rest.Contains('\0'))
        {
            throw new RuncibleException(RuncibleErrors.InvalidImageReference, value, "the path is missing");
        }

        return new LocalImageReference(kind, rest, tag, digest);
    }
}
