using Runcible.Core.Bundle;

namespace Runcible.Tests;

/// <summary>Prepare and commit in one call, for the tests (the product prepares, checks, then commits).</summary>
internal static class BundleWriterExtensions
{
    public static BundleWriteResult Write(this BundleWriter writer, BundleContent content, string outputDirectory)
    {
        using var pending = writer.Prepare(content, outputDirectory);
        return pending.Commit();
    }
}
