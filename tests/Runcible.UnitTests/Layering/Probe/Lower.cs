namespace Runcible.Tests.Layering.Probe.Lower;

/// <summary>The lower namespace of the probe <see cref="NamespaceLayerTests"/> checks its analysis on.</summary>
internal static class Target
{
    public static void Touch()
    {
    }
}
