using Runcible.Core.Diagnostics;
using Runcible.Core.Images;
using Runcible.Core.Registry;

namespace Runcible.Tests.Images;

/// <summary>
/// One reference grammar: what <see cref="ImageReference"/> parses and what <see cref="RegistryNames"/> lets into a URL
/// agree, and both are distribution's ASCII grammar.
/// </summary>
public class ReferenceGrammarTests
{
    private static bool ParsesAsTag(string tag) => ImageReference.TryParse("registry.example/app:" + tag, out _, out _);

    private static bool ValidatesAsTag(string tag)
    {
        try
        {
            RegistryNames.ValidateTagOrDigest(tag);
            return true;
        }
        catch (RuncibleException e) when (e.Code == "RUNCIBLE1016")
        {
            return false;
        }
    }

    // The drift: ImageReference's tag pattern was [\w][\w.-]{0,127}, and .NET's \w is Unicode (letters, digits and
    // connector punctuation of any script), so these parsed as tags and went on to the registry.
    [Theory]
    [InlineData("bookwörm")]
    [InlineData("版本")]
    [InlineData("v١٢")]
    [InlineData("a‿b")]
    [InlineData("ｖ1")]
    public void TagsAreASCIIOnlyInReferencesAndInURLs(string tag)
    {
        var error = Assert.Throws<RuncibleException>(() => ImageReference.Parse("debian:" + tag));
        Assert.Equal("RUNCIBLE1101", error.Code);
        Assert.False(ValidatesAsTag(tag));
    }

    // $ also matches before a final newline: a name ending in one passed the check before going into a URL.
    [Fact]
    public void ATrailingNewlineIsNotPartOfAnyName()
    {
        Assert.Equal("RUNCIBLE1016", Assert.Throws<RuncibleException>(() => RegistryNames.ValidateTagOrDigest("latest\n")).Code);
        Assert.Equal("RUNCIBLE1016", Assert.Throws<RuncibleException>(() => RegistryNames.ValidateRepository("library/debian\n")).Code);
        Assert.Equal("RUNCIBLE1016", Assert.Throws<RuncibleException>(() => RegistryNames.ValidateRegistry("localhost:5000\n")).Code);
    }

    [Theory]
    [InlineData("latest", true)]
    [InlineData("_x", true)]
    [InlineData("1.0-rc_2", true)]
    [InlineData("A", true)]
    [InlineData(".hidden", false)]
    [InlineData("-x", false)]
    [InlineData("a+b", false)]
    [InlineData("", false)]
    public void TheParserAndTheURLCheckAgreeOnTags(string tag, bool valid)
    {
        Assert.Equal(valid, ParsesAsTag(tag));
        Assert.Equal(valid, ValidatesAsTag(tag));
        var longest = new string('t', 128);
        Assert.True(ParsesAsTag(longest) && ValidatesAsTag(longest));
        Assert.False(ParsesAsTag(longest + "t") || ValidatesAsTag(longest + "t"));
    }

    [Theory]
    [InlineData("registry.example", true)]
    [InlineData("localhost:5000", true)]
    [InlineData("[::1]:5000", true)]
    [InlineData("[::ffff:127.0.0.1]:5000", false)]
    [InlineData("bad_host.example", false)]
    [InlineData("host.example:123456", false)]
    [InlineData("exämple.com", false)]
    public void TheParserAndTheURLCheckAgreeOnRegistryHosts(string registry, bool valid)
    {
        Assert.Equal(valid, ImageReference.TryParse(registry + "/app", out _, out _));
        var validated = true;
        try
        {
            RegistryNames.ValidateRegistry(registry);
        }
        catch (RuncibleException e) when (e.Code == "RUNCIBLE1016")
        {
            validated = false;
        }

        Assert.Equal(valid, validated);
    }
}
