namespace Runcible.Tests.Layering.Probe.Upper;

/// <summary>Uses <c>Probe.Lower</c> only inside a method body, fully qualified, with no using.</summary>
internal static class Caller
{
    public static void Call() => Runcible.Tests.Layering.Probe.Lower.Target.Touch();
}
