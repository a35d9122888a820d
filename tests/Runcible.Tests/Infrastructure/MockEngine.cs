using System.Collections;
using Microsoft.Build.Framework;

namespace Runcible.Tests.Infrastructure;

/// <summary>
/// A build-engine double for running Runcible's MSBuild tasks in-process: records every error, warning and message
/// with its code, and keeps registered task objects as MSBuild does for one build (disposed with the engine, as
/// MSBuild disposes build-lifetime objects when the build ends), and answers the project's global properties
/// (IBuildEngine6, which PublishRuncBundle reads to key its early base part). Builds no other projects.
/// </summary>
internal sealed class MockEngine(string projectFile = "/src/app/app.csproj", IReadOnlyDictionary<string, string>? globalProperties = null)
    : IBuildEngine6, IDisposable
{
    private readonly object _gate = new();
    private readonly List<BuildErrorEventArgs> _errors = [];
    private readonly List<BuildWarningEventArgs> _warnings = [];
    private readonly List<BuildMessageEventArgs> _messages = [];
    private readonly Dictionary<(object Key, RegisteredTaskObjectLifetime Lifetime), object> _taskObjects = [];

    public IReadOnlyList<BuildErrorEventArgs> Errors { get { lock (_gate) { return _errors.ToList(); } } }

    public IReadOnlyList<BuildWarningEventArgs> Warnings { get { lock (_gate) { return _warnings.ToList(); } } }

    public IReadOnlyList<BuildMessageEventArgs> Messages { get { lock (_gate) { return _messages.ToList(); } } }

    /// <summary>Everything logged, one line each, for assertion messages.</summary>
    public string Log => string.Join("\n",
        Errors.Select(e => $"error {e.Code}: {e.Message}")
            .Concat(Warnings.Select(w => $"warning {w.Code}: {w.Message}"))
            .Concat(Messages.Select(m => $"message: {m.Message}")));

    public bool ContinueOnError => false;

    public int LineNumberOfTaskNode => 0;

    public int ColumnNumberOfTaskNode => 0;

    public string ProjectFileOfTaskNode { get; } = projectFile;

    public bool IsRunningMultipleNodes => false;

    public void LogErrorEvent(BuildErrorEventArgs e)
    {
        lock (_gate)
        {
            _errors.Add(e);
        }
    }

    public void LogWarningEvent(BuildWarningEventArgs e)
    {
        lock (_gate)
        {
            _warnings.Add(e);
        }
    }

    public void LogMessageEvent(BuildMessageEventArgs e)
    {
        lock (_gate)
        {
            _messages.Add(e);
        }
    }

    public void LogCustomEvent(CustomBuildEventArgs e)
    {
    }

    public bool BuildProjectFile(string projectFileName, string[] targetNames, IDictionary globalProperties, IDictionary targetOutputs) =>
        throw new NotSupportedException("Runcible's tasks build no other project.");

    public bool BuildProjectFile(string projectFileName, string[] targetNames, IDictionary globalProperties, IDictionary targetOutputs, string toolsVersion) =>
        throw new NotSupportedException("Runcible's tasks build no other project.");

    public bool BuildProjectFilesInParallel(string[] projectFileNames, string[] targetNames, IDictionary[] globalProperties, IDictionary[] targetOutputsPerProject, string[] toolsVersion, bool useResultsCache, bool unloadProjectsOnCompletion) =>
        throw new NotSupportedException("Runcible's tasks build no other project.");

    public BuildEngineResult BuildProjectFilesInParallel(string[] projectFileNames, string[] targetNames, IDictionary[] globalProperties, IList<string>[] removeGlobalProperties, string[] toolsVersion, bool returnTargetOutputs) =>
        throw new NotSupportedException("Runcible's tasks build no other project.");

    public void LogTelemetry(string eventName, IDictionary<string, string> properties)
    {
    }

    public IReadOnlyDictionary<string, string> GetGlobalProperties() => globalProperties ?? new Dictionary<string, string>();

    public void Yield()
    {
    }

    public void Reacquire()
    {
    }

    public void RegisterTaskObject(object key, object obj, RegisteredTaskObjectLifetime lifetime, bool allowEarlyCollection)
    {
        lock (_gate)
        {
            _taskObjects[(key, lifetime)] = obj;
        }
    }

    public object? GetRegisteredTaskObject(object key, RegisteredTaskObjectLifetime lifetime)
    {
        lock (_gate)
        {
            return _taskObjects.GetValueOrDefault((key, lifetime));
        }
    }

    public object? UnregisterTaskObject(object key, RegisteredTaskObjectLifetime lifetime)
    {
        lock (_gate)
        {
            return _taskObjects.Remove((key, lifetime), out var obj) ? obj : null;
        }
    }

    /// <summary>The end of the build: disposes what is still registered.</summary>
    public void Dispose()
    {
        List<object> remaining;
        lock (_gate)
        {
            remaining = _taskObjects.Values.ToList();
            _taskObjects.Clear();
        }

        foreach (var obj in remaining)
        {
            (obj as IDisposable)?.Dispose();
        }
    }
}
