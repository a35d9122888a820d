namespace Runcible.Core.Diagnostics;

/// <summary>
/// Where Core reports progress and warnings. The MSBuild tasks adapt it to their logger; the tests record it
/// (RecordingBuildLog, test code). Errors are not logged: they are thrown as <see cref="RuncibleException"/>.
/// </summary>
internal interface IBuildLog
{
    /// <summary>A message; <paramref name="important"/> ones (pull progress) show at the default verbosity, others at detailed.</summary>
    void LogMessage(string message, bool important = false);

    /// <summary>A warning with a code from the error table (warnings share <see cref="RuncibleErrors"/>).</summary>
    void LogWarning(ErrorDescriptor warning, params object?[] args);
}

internal sealed class NullBuildLog : IBuildLog
{
    public static readonly NullBuildLog Instance = new();

    public void LogMessage(string message, bool important = false)
    {
    }

    public void LogWarning(ErrorDescriptor warning, params object?[] args)
    {
    }
}

/// <summary>
/// Keeps what is logged, in order, to be replayed into another log later: for work that runs on after the task
/// that started it has returned (MSBuild takes no messages from a task that is no longer executing). Once a task
/// that is executing takes the work over, <see cref="ForwardTo"/> replays what was kept and passes everything
/// logged after it straight on, so that progress is seen as it happens while that task waits.
/// </summary>
internal sealed class BufferedBuildLog : IBuildLog
{
    private readonly object _gate = new();
    private readonly List<Action<IBuildLog>> _entries = [];
    private IBuildLog? _live;

    public void LogMessage(string message, bool important = false) => Add(log => log.LogMessage(message, important));

    public void LogWarning(ErrorDescriptor warning, params object?[] args) => Add(log => log.LogWarning(warning, args));

    /// <summary>Replays what was kept into <paramref name="log"/> and passes on everything logged from now on, until <see cref="StopForwarding"/>.</summary>
    public void ForwardTo(IBuildLog log)
    {
        // Under the lock: a message logged meanwhile waits, so the order stays the order things happened.
        lock (_gate)
        {
            foreach (var entry in _entries)
            {
                entry(log);
            }

            _entries.Clear();
            _live = log;
        }
    }

    /// <summary>Keeps messages again (the log <see cref="ForwardTo"/> was given may be about to go away).</summary>
    public void StopForwarding()
    {
        lock (_gate)
        {
            _live = null;
        }
    }

    private void Add(Action<IBuildLog> entry)
    {
        lock (_gate)
        {
            if (_live is { } live)
            {
                entry(live);
                return;
            }

            _entries.Add(entry);
        }
    }
}

/// <summary>Passes everything on, except a warning identical (code and text) to one already passed: two runs of the same stage warn once.</summary>
internal sealed class DeduplicatingBuildLog(IBuildLog inner) : IBuildLog
{
    private readonly HashSet<(string, string)> _warned = [];

    public void LogMessage(string message, bool important = false) => inner.LogMessage(message, important);

    public void LogWarning(ErrorDescriptor warning, params object?[] args)
    {
        bool first;
        lock (_warned)
        {
            first = _warned.Add((warning.Code, warning.Format(args)));
        }

        if (first)
        {
            inner.LogWarning(warning, args);
        }
    }
}
