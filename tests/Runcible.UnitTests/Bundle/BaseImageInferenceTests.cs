using Runcible.Core.Bundle;
using Runcible.Core.Diagnostics;

namespace Runcible.Tests.Bundle;

/// <summary>
/// The inference's rules one by one; <see cref="Sdk.SdkBaseImageInferenceTests"/> proves the whole of it equal to the
/// .NET SDK's own targets for the same project properties.
/// </summary>
public class BaseImageInferenceTests
{
    private static BaseImageInputs Inputs(string framework, string rid = "linux-x64", bool selfContained = false, bool web = false, string? sdk = "10.0.401") =>
        new(framework, selfContained, web, [rid], sdk);

    [Theory]
    [InlineData("net10.0", false, false, "mcr.microsoft.com/dotnet/runtime:10.0")]
    [InlineData("net10.0", false, true, "mcr.microsoft.com/dotnet/aspnet:10.0")]
    [InlineData("net10.0", true, true, "mcr.microsoft.com/dotnet/runtime-deps:10.0")]
    [InlineData("v9.0", false, false, "mcr.microsoft.com/dotnet/runtime:9.0")]
    [InlineData("8.0", true, false, "mcr.microsoft.com/dotnet/runtime-deps:8.0")]
    public void ChoosesTheRepositoryAndTheFrameworksTag(string framework, bool selfContained, bool web, string expected) =>
        Assert.Equal(expected, new BaseImageInference().Infer(Inputs(framework, selfContained: selfContained, web: web)));

    [Fact]
    public void MuslRuntimeIdentifiersGetAlpine()
    {
        var inference = new BaseImageInference();
        Assert.Equal("mcr.microsoft.com/dotnet/aspnet:10.0-alpine", inference.Infer(Inputs("net10.0", "linux-musl-x64", web: true)));
        Assert.Equal("mcr.microsoft.com/dotnet/runtime:6.0-alpine", inference.Infer(Inputs("net6.0", "linux-musl-arm64")));
        Assert.Equal("mcr.microsoft.com/dotnet/runtime-deps:10.0-alpine-extra", inference.Infer(Inputs("net10.0", "linux-musl-x64", selfContained: true) with { PublishAot = true }));
    }

    [Fact]
    public void AotAndTrimmedAppsGetChiseledAndExtraUnlessInvariant()
    {
        var inference = new BaseImageInference();
        var aot = Inputs("net10.0", selfContained: true) with { PublishAot = true };
        Assert.Equal("mcr.microsoft.com/dotnet/runtime-deps:10.0-noble-chiseled-extra", inference.Infer(aot));
        Assert.Equal("mcr.microsoft.com/dotnet/runtime-deps:10.0-noble-chiseled", inference.Infer(aot with { InvariantGlobalization = true }));
        Assert.Equal("mcr.microsoft.com/dotnet/runtime-deps:10.0-noble-chiseled-extra", inference.Infer(aot with { PublishAot = false, PublishTrimmed = true }));
        // SDKs before 8.0.300 chose jammy; .NET 7 images have no variants.
        Assert.Equal("mcr.microsoft.com/dotnet/runtime-deps:8.0-jammy-chiseled-extra", inference.Infer(aot with { TargetFramework = "net8.0", SdkVersion = "8.0.204" }));
        Assert.Equal("mcr.microsoft.com/dotnet/runtime-deps:7.0", inference.Infer(aot with { TargetFramework = "net7.0" }));
    }

    [Fact]
    public void AChiseledFamilyGetsExtraForGlobalizedAppsOnStableSdks()
    {
        var inference = new BaseImageInference();
        var chiseled = Inputs("net10.0", web: true) with { ContainerFamily = "noble-chiseled" };
        Assert.Equal("mcr.microsoft.com/dotnet/aspnet:10.0-noble-chiseled-extra", inference.Infer(chiseled));
        Assert.Equal("mcr.microsoft.com/dotnet/aspnet:10.0-noble-chiseled", inference.Infer(chiseled with { InvariantGlobalization = true }));
        Assert.Equal("mcr.microsoft.com/dotnet/aspnet:11.0.0-preview.3-noble-chiseled", inference.Infer(chiseled with { TargetFramework = "net11.0", SdkVersion = "11.0.100-preview.3.25201.16" }));
        Assert.Equal("mcr.microsoft.com/dotnet/aspnet:10.0-alpine", inference.Infer(chiseled with { ContainerFamily = "alpine", RuntimeIdentifiers = ["linux-musl-x64"] }));
        Assert.Equal("mcr.microsoft.com/dotnet/aspnet:7.0-jammy-chiseled", inference.Infer(chiseled with { TargetFramework = "net7.0", ContainerFamily = "jammy-chiseled" }));
    }

    [Theory]
    [InlineData("net11.0", "11.0.100-preview.3.25201.16", "11.0.0-preview.3")]
    [InlineData("net10.0", "10.0.100-rc.2.25502.107", "10.0.0-rc.2")]
    [InlineData("net11.0", "11.0.100-alpha.1.25100.1", "11.0-preview")]
    [InlineData("net11.0", "11.0.200-preview.1.25300.1", "11.0")]
    [InlineData("net10.0", "11.0.100-preview.3.25201.16", "10.0")]
    [InlineData("net10.0", "", "10.0")]
    public void PreviewSdksUseTheirChannelsTagForTheirOwnFramework(string framework, string sdk, string tag) =>
        Assert.Equal("mcr.microsoft.com/dotnet/runtime:" + tag, new BaseImageInference().Infer(Inputs(framework, sdk: sdk)));

    [Theory]
    [InlineData("netstandard2.0")]
    [InlineData("net48")]
    [InlineData("netcoreapp3.1")]
    [InlineData("")]
    public void FrameworksWithoutImagesAreCodedErrors(string framework)
    {
        var error = Assert.Throws<RuncibleException>(() => new BaseImageInference().Infer(Inputs(framework)));
        Assert.Equal("RUNCIBLE4012", error.Code);
    }

    [Fact]
    public void WhatTheSdkCannotInferIsACodedError()
    {
        var inference = new BaseImageInference();
        Assert.Equal("RUNCIBLE4012", Assert.Throws<RuncibleException>(() => inference.Infer(Inputs("net10.0") with { ContainerFamily = "bad/family" })).Code);
        Assert.Equal("RUNCIBLE4040", Assert.Throws<RuncibleException>(() => inference.Infer(Inputs("net10.0") with { RuntimeIdentifiers = ["linux-musl-x64", "linux-x64"] })).Code);
        Assert.Equal("RUNCIBLE4040", Assert.Throws<RuncibleException>(() => inference.Infer(Inputs("net11.0", sdk: "11.0.100-beta.1"))).Code);
        Assert.Equal("RUNCIBLE4040", Assert.Throws<RuncibleException>(() => inference.Infer(Inputs("net11.0", sdk: "eleven"))).Code);
    }
}
