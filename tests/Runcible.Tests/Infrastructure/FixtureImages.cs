namespace Runcible.Tests.Infrastructure;

/// <summary>
/// The fixture images built by <c>eng/fixture-images.sh</c>, as OCI image layouts (tag <c>latest</c>)
/// under <see cref="RepoPaths.FixtureImages"/><c>/oci/&lt;image&gt;</c>.
/// <para>
/// Public API: <see cref="LayoutPath"/> (<c>FixtureImages.LayoutPath(FixtureImages.Runtime)</c>) returns the
/// layout directory, failing with a message that says to run <c>eng/fixture-images.sh</c> when it is absent;
/// <see cref="LayoutReference"/> gives <c>&lt;dir&gt;:latest</c> (for umoci) and <see cref="SkopeoReference"/>
/// gives <c>oci:&lt;dir&gt;:latest</c> (for skopeo); <see cref="ExportOciArchive"/> and <see cref="ExportDockerArchive"/>
/// write the image as an <c>oci-archive</c> / <c>docker-archive</c> file (for local-source tests). Image names: <see cref="Busybox"/>, <see cref="RuntimeDeps"/>,
/// <see cref="Runtime"/>, <see cref="AspNet"/>, <see cref="MultiArch"/>.
/// </para>
/// </summary>
public static class FixtureImages
{
    /// <summary>busybox-static, 3 layers: applets; a hardlink and /var/lib/removed.txt; a whiteout of that file.</summary>
    public const string Busybox = "busybox";

    /// <summary>Debian bookworm minbase + libicu72 libssl3 ca-certificates, user app 1654, env APP_UID=1654.</summary>
    public const string RuntimeDeps = "runtime-deps";

    /// <summary>runtime-deps + the .NET shared runtime in /usr/share/dotnet and /usr/bin/dotnet.</summary>
    public const string Runtime = "runtime";

    /// <summary>runtime + Microsoft.AspNetCore.App.</summary>
    public const string AspNet = "aspnet";

    /// <summary>An OCI image index: linux/amd64 and linux/arm64 (the arm64 image holds only a text file).</summary>
    public const string MultiArch = "multiarch";

    /// <summary>The tag every fixture layout carries.</summary>
    public const string Tag = "latest";

    public static IReadOnlyList<string> All { get; } = [Busybox, RuntimeDeps, Runtime, AspNet, MultiArch];

    /// <summary>The directory holding the layouts: <c>$RUNCIBLE_FIXTURE_DIR/oci</c>.</summary>
    public static string Root => Path.Combine(RepoPaths.FixtureImages, "oci");

    /// <summary>The OCI layout directory of <paramref name="image"/>; throws when it has not been built.</summary>
    public static string LayoutPath(string image)
    {
        if (!All.Contains(image))
        {
            throw new ArgumentException($"'{image}' is not a fixture image; known: {string.Join(", ", All)}.", nameof(image));
        }

        var path = Path.Combine(Root, image);
        if (!File.Exists(Path.Combine(path, "index.json")) || !File.Exists(Path.Combine(path, "oci-layout")))
        {
            throw new InvalidOperationException(
                $"The fixture image '{image}' is missing at {path}. Build the fixture images with "
                + "'sudo eng/fixture-images.sh' (eng/test.sh does it; set RUNCIBLE_FIXTURE_DIR to use another cache).");
        }

        return path;
    }

    /// <summary><c>&lt;layout&gt;:latest</c>, the form umoci takes for <c>--image</c>.</summary>
    public static string LayoutReference(string image) => LayoutPath(image) + ":" + Tag;

    /// <summary><c>oci:&lt;layout&gt;:latest</c>, the form skopeo takes.</summary>
    public static string SkopeoReference(string image) => "oci:" + LayoutPath(image) + ":" + Tag;

    /// <summary>
    /// Writes <paramref name="image"/> as an <c>oci-archive</c> (a tar of the OCI layout, tagged <paramref name="tag"/>)
    /// to <paramref name="destinationFile"/>, with skopeo. The multiarch index is written whole.
    /// </summary>
    public static void ExportOciArchive(string image, string destinationFile, string tag = Tag) =>
        Export(image, $"oci-archive:{destinationFile}:{tag}", image == MultiArch ? ["--all"] : []);

    /// <summary>
    /// Writes <paramref name="image"/> as a <c>docker-archive</c> (the <c>docker save</c> format, with
    /// <c>manifest.json</c> and <c>repositories</c>, tagged <paramref name="reference"/>) to <paramref name="destinationFile"/>.
    /// Single-platform images only (the format holds no index).
    /// </summary>
    public static void ExportDockerArchive(string image, string destinationFile, string reference = "runcible.test/fixture:latest") =>
        Export(image, $"docker-archive:{destinationFile}:{reference}", []);

    private static void Export(string image, string destination, string[] extra) =>
        ProcessRunner.Run("skopeo", ["copy", "--quiet", "--insecure-policy", .. extra, SkopeoReference(image), destination])
            .EnsureSuccess($"skopeo copy {image} to {destination}");
}
