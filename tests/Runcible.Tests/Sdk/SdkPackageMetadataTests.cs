using System.IO.Compression;
using System.Xml.Linq;
using Runcible.Tests.Infrastructure;

namespace Runcible.Tests.Sdk;

/// <summary>What a user sees of the package on a feed: licence, project, readme, tags; and the files those name.</summary>
[Collection(SdkPackageCollection.Name)]
public class SdkPackageMetadataTests(SdkPackageFixture sdk)
{
    [Fact]
    public void ThePackageCarriesItsLicenceProjectUrlReadmeAndTags()
    {
        using var zip = ZipFile.OpenRead(sdk.PackagePath);
        var nuspecEntry = zip.Entries.Single(e => e.FullName.EndsWith(".nuspec", StringComparison.Ordinal));
        XDocument nuspec;
        using (var stream = nuspecEntry.Open())
        {
            nuspec = XDocument.Load(stream);
        }

        string Meta(string name) => nuspec.Descendants().Single(e => e.Name.LocalName == name).Value;
        var license = nuspec.Descendants().Single(e => e.Name.LocalName == "license");
        Assert.Equal("expression", license.Attribute("type")?.Value);
        Assert.Equal("MIT", license.Value);
        Assert.Equal(SdkPackageFixture.ProjectUrl, Meta("projectUrl"));
        Assert.Equal("README.md", Meta("readme"));
        Assert.Contains("runc", Meta("tags").Split(' '));
        Assert.Equal("Runcible contributors", Meta("authors"));

        using (var readme = new StreamReader(zip.GetEntry("README.md")!.Open()))
        {
            Assert.Equal(File.ReadAllText(Path.Combine(RepoPaths.Root, "README.md")), readme.ReadToEnd());
        }

        using var licence = new StreamReader(zip.GetEntry("LICENSE")!.Open());
        var text = licence.ReadToEnd();
        Assert.StartsWith("MIT License", text);
        Assert.Contains("Copyright (c) Runcible contributors", text);
    }
}
