using Runcible.Core.Diagnostics;

namespace Runcible.Tests;

/// <summary>Keeps everything logged, thread-safe, for the tests to read back.</summary>
internal sealed class RecordingBuildLog : IBuildLog
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
