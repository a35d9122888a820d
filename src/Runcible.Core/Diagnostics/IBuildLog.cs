namespace Runcible.Core.Diagnostics;

/// <summary>
/// Where Core reports progress and warnings. The MSBuild tasks adapt it to their logger; tests use
/// <see cref="RecordingBuildLog"/>. Errors are not logged: they are thrown as <see cref="RuncibleException"/>.
/// </summary>
public interface IBuildLog
{
    /// <summary>A message; <paramref name="important"/> ones show at normal verbosity, others at detailed.</summary>
    void LogMessage(string message, bool important = false);

    /// <summary>A warning with a code from the error table (warnings share <see cref="RuncibleErrors"/>).</summary>
    void LogWarning(ErrorDescriptor warning, params object?[] args);
}

public sealed class NullBuildLog : IBuildLog
{
    public static readonly NullBuildLog Instance = new();

    public void LogMessage(string message, bool important = false)
    {
    }

    public void LogWarning(ErrorDescriptor warning, params object?[] args)
    {
    }
}

/// <summary>Keeps everything logged, thread-safe; for tests and for callers that replay logs.</summary>
public sealed class RecordingBuildLog : IBuildLog
{
    private readonly object _gate = new();
    private readonly List<string> _messages = [];
    private readonly List<(string Code, string Message)> _warnings = [];

    public IReadOnlyList<string> Messages { get { lock (_gate) { return _messages.ToList(); } } }

    public IReadOnlyList<(string Code, string Message)> Warnings { get { lock (_gate) { return _warnings.ToList(); } } }

    public void LogMessage(string message, bool important = false)
    {
        lock (_gate)
        {
            _messages.Add(message);
        }
    }

    public void LogWarning(ErrorDescriptor warning, params object?[] args)
    {
        lock (_gate)
        {
            _warnings.Add((warning.Code, warning.Format(args)));
        }
    }
}
