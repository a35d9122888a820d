using Runcible.Core.Bundle;
using Runcible.Core.Diagnostics;

namespace Runcible.Tests.Bundle;

public class BaseImageInferenceTests
{
    [Theory]
    [InlineData("net10.0", false, false, false, null, null, "mcr.microsoft.com/dotnet/runtime:10.0")]
    [InlineData("net10.0", false, false, true, null, null, "mcr.microsoft.com/dotnet/aspnet:10.0")]
    [InlineData("net10.0", true, false, true, null, null, "mcr.microsoft.com/dotnet/runtime-deps:10.0")]
    [InlineData("net8.0", false, true, false, null, null, "mcr.microsoft.com/dotnet/runtime-deps:8.0")]
    [InlineData("net9.0", false, false, true, "noble-chiseled", null, "mcr.microsoft.com/dotnet/aspnet:9.0-noble-chiseled")]
    [InlineData("v10.0", false, false, false, "alpine", null, "mcr.microsoft.com/dotnet/runtime:10.0-alpine")]
    [InlineData("10.0", true, false, false, "", null, "mcr.microsoft.com/dotnet/runtime-deps:10.0")]
    [InlineData("net11.0", false, false, true, "noble", "preview.3", "mcr.microsoft.com/dotnet/aspnet:11.0-preview.3-noble")]
    public void InfersAsTheDotnetSdkDoes(string framework, bool selfContained, bool aot, bool web, string? family, string? channel, string expected)
    {
        var image = new BaseImageInference().Infer(new BaseImageInputs(framework, selfContained, aot, web, family, channel));
        Assert.Equal(expected, image);
    }

    [Theory]
    [InlineData("netstandard2.0")]
    [InlineData("net48")]
    [InlineData("netcoreapp3.1")]
    [InlineData("")]
    public void FrameworksWithoutImagesAreCodedErrors(string framework)
    {
        var error = Assert.Throws<RuncibleException>(() => new BaseImageInference().Infer(new BaseImageInputs(framework, false, false, false)));
        Assert.Equal("RUNCIBLE4012", error.Code);
    }

    [Fact]
    public void AFamilyThatIsNotATagPartIsRejected()
    {
        var error = Assert.Throws<RuncibleException>(() => new BaseImageInference().Infer(new BaseImageInputs("net10.0", false, false, false, "bad/family")));
        Assert.Equal("RUNCIBLE4012", error.Code);
    }
}
