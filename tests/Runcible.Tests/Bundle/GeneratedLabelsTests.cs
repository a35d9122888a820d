using Runcible.Core.Bundle;

namespace Runcible.Tests.Bundle;

public class GeneratedLabelsTests
{
    private static readonly KeyValuePair<string, string>[] Generated = [new("org.opencontainers.image.title", "Generated"), new("net.dot.sdk.version", "10.0.401")];

    [Fact]
    public void TheCreationTimeComesOnlyFromSourceDateEpochAndTheProjectsLabelsWin()
    {
        var labels = GeneratedLabels.Merge(Generated, "registry.test/aspnet:10.0", DateTimeOffset.FromUnixTimeSeconds(1700000000), [new("org.opencontainers.image.title", "Mine")]);
        var byKey = labels.ToDictionary(l => l.Key, l => l.Value);
        Assert.Equal("Mine", byKey["org.opencontainers.image.title"]);
        Assert.Single(labels, l => l.Key == "org.opencontainers.image.title");
        Assert.Equal("registry.test/aspnet:10.0", byKey["org.opencontainers.image.base.name"]);
        Assert.Equal("2023-11-14T22:13:20.0000000Z", byKey["org.opencontainers.image.created"]);
        Assert.Equal("2023-11-14T22:13:20.0000000Z", byKey["org.opencontainers.artifact.created"]);

        var noEpoch = GeneratedLabels.Merge(Generated, null, null, []);
        Assert.DoesNotContain(noEpoch, l => l.Key.EndsWith(".created", StringComparison.Ordinal) || l.Key.EndsWith("base.name", StringComparison.Ordinal));
        Assert.Equal(2, noEpoch.Count);
    }
}
