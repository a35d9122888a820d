using Runcible.Core.Diagnostics;

namespace Runcible.Tests.Diagnostics;

/// <summary>The early base part's log: kept while no task can take it, then shown in order and, while a task waits, as it happens.</summary>
public class BufferedBuildLogTests
{
    [Fact]
    public void KeptMessagesAreReplayedInOrderThenLaterOnesPassStraightOn()
    {
        var buffered = new BufferedBuildLog();
        buffered.LogMessage("pulling 1", important: true);
        buffered.LogWarning(RuncibleErrors.UnhonouredContainerProperty, "a", "b");
        var live = new RecordingBuildLog();
        Assert.Empty(live.Messages);

        buffered.ForwardTo(live);
        Assert.Equal(["pulling 1"], live.Messages);
        Assert.Single(live.Warnings);

        // While forwarding, a message reaches the task's log when it is logged, not at the end.
        buffered.LogMessage("pulling 2", important: true);
        Assert.Equal(["pulling 1", "pulling 2"], live.Messages);

        buffered.StopForwarding();
        buffered.LogMessage("after");
        Assert.Equal(["pulling 1", "pulling 2"], live.Messages);
    }
}
