namespace Runcible.Core.Diagnostics;

/// <summary>Fetch stage, registry transport (1000–1099): HTTP, TLS, authentication, credentials.</summary>
internal static partial class RuncibleErrors
{
    public static readonly ErrorDescriptor RegistryManifestNotFound = new(
        "RUNCIBLE1001",
        "{0}: the registry has no manifest '{1}' (404). Check the repository name and the tag or digest of the base image (ContainerBaseImage), and that it was pushed to this registry.");

    public static readonly ErrorDescriptor RegistryBlobNotFound = new(
        "RUNCIBLE1002",
        "{0}: the registry has no blob {1}, which the image's manifest lists (404). The image is incomplete on the registry; push it again or use another tag.");

    public static readonly ErrorDescriptor RegistryUnauthorized = new(
        "RUNCIBLE1003",
        "{0}: the registry refused access ({1}). Credentials were looked for in: {2}. Log in (docker login or podman login {3}) or set RUNCIBLE_REGISTRY_USERNAME and RUNCIBLE_REGISTRY_PASSWORD.");

    public static readonly ErrorDescriptor RegistryCredentialsRejected = new(
        "RUNCIBLE1004",
        "{0}: the credentials for {1} from {2} were rejected ({3}). Log in again (docker login {1}) or fix them there.");

    public static readonly ErrorDescriptor CredentialHelperMissing = new(
        "RUNCIBLE1005",
        "The credential helper 'docker-credential-{0}' named in {1} is not on PATH. Install it, or remove '{0}' from credsStore/credHelpers in {1}.");

    public static readonly ErrorDescriptor CredentialHelperFailed = new(
        "RUNCIBLE1006",
        "The credential helper 'docker-credential-{0}' failed for {1}: {2}. Run 'echo {1} | docker-credential-{0} get' to see why, or log in again.");

    public static readonly ErrorDescriptor CredentialFileInvalid = new(
        "RUNCIBLE1007",
        "The credentials file '{0}' cannot be used: {1}. Fix it (or log in again with docker login / podman login), or remove it.");

    public static readonly ErrorDescriptor RegistryResponseTooLarge = new(
        "RUNCIBLE1008",
        "{0}: the {1} is larger than {2} bytes; Runcible refuses it. Check that the reference points to a container image on the right registry.");

    public static readonly ErrorDescriptor RegistryTlsFailure = new(
        "RUNCIBLE1009",
        "{0}: the TLS connection failed ({1}). If the registry's certificate comes from a private CA, add the CA to the system trust store (update-ca-certificates); only for a test registry without valid TLS, list it in RuncInsecureRegistries or DOTNET_CONTAINER_INSECURE_REGISTRIES.");

    public static readonly ErrorDescriptor RegistryUnreachable = new(
        "RUNCIBLE1010",
        "{0}: cannot reach the registry ({1}). Check the registry host name and port, the network, and the proxy settings (HTTPS_PROXY, NO_PROXY).");

    public static readonly ErrorDescriptor RegistryRetriesExhausted = new(
        "RUNCIBLE1011",
        "{0}: fetching {1} failed {2} times (last: {3}). The registry is overloaded or the connection unstable; try again later.");

    public static readonly ErrorDescriptor RegistryMalformedResponse = new(
        "RUNCIBLE1012",
        "{0}: the registry sent a malformed response for {1}: {2}. Check that the registry address is right and that it speaks the OCI distribution API.");

    public static readonly ErrorDescriptor RegistryManifestDigestMismatch = new(
        "RUNCIBLE1013",
        "{0}: the manifest '{1}' arrived twice with digest {2} where {3} was expected (the digest asked for, or the registry's Docker-Content-Digest). Something between the registry and you alters it, or the registry's store is corrupt; try again, or pin another digest.");

    public static readonly ErrorDescriptor RegistryUnsupportedManifest = new(
        "RUNCIBLE1014",
        "{0}: '{1}' is served as '{2}', which is not an OCI or Docker schema 2 manifest or index. Docker schema 1 and non-image artifacts are not supported; use a current image.");

    public static readonly ErrorDescriptor RegistryBlobSizeMismatch = new(
        "RUNCIBLE1015",
        "{0}: the blob {1} served by the registry has {2} bytes where the manifest says {3}. The image on the registry is corrupt; push it again or use another tag.");

    public static readonly ErrorDescriptor InvalidRegistryName = new(
        "RUNCIBLE1016",
        "'{1}' is not a valid {0}. Registry hosts look like registry.example.com or localhost:5000; repositories are lower-case path components like library/debian; tags are up to 128 letters, digits, '_', '.' and '-'.");

    public static readonly ErrorDescriptor RegistryInsecureTransport = new(
        "RUNCIBLE1017",
        "{0}: {1}, because the registry is {2}. Content is still verified by digest, but credentials sent to it are not protected.");

    public static readonly ErrorDescriptor RegistryRequestFailed = new(
        "RUNCIBLE1018",
        "{0}: fetching {1} failed with HTTP {2}: {3}. Check the base image reference and the registry's status.");

    public static readonly ErrorDescriptor RegistryRedirectChallenged = new(
        "RUNCIBLE1019",
        "{0}: the registry redirected {1} to {2}, which asked for credentials (401). Credentials for {3} are never sent to another origin, nor to a token service that origin names. Check that the registry address is right; a registry whose redirects need credentials of their own is not supported.");

    public static readonly ErrorDescriptor RegistryRedirectToPlainHttp = new(
        "RUNCIBLE1020",
        "{0}: the registry redirected {1} to plain HTTP ({2}), which is not followed: from HTTPS never (not even to a loopback address), from plain HTTP only to a registry listed as insecure. Content and tokens would travel unprotected; have the registry redirect to HTTPS.");
}
