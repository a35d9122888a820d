using Microsoft.Build.Framework;
using Runcible.Core.Diagnostics;
using MSBuildTask = Microsoft.Build.Utilities.Task;

namespace Runcible.Tasks;

/// <summary>
/// Base of every Runcible task: Core reports failures as <see cref="RuncibleException"/>s, which
/// become one coded error with the message only; anything else is a bug, reported as RUNCIBLE9001
/// without a stack trace on the console (the full exception goes to the diagnostic log).
/// </summary>
public abstract class RuncibleTask : MSBuildTask, ICancelableTask
{
    private readonly CancellationTokenSource _cancellation = new();

    protected CancellationToken CancellationToken => _cancellation.Token;

    public void Cancel() => _cancellation.Cancel();

    public sealed override bool Execute()
    {
        try
        {
            ExecuteCore();
        }
        catch (RuncibleException e)
        {
            Log.LogError(subcategory: null, e.Code, helpKeyword: null, file: null, lineNumber: 0, columnNumber: 0, endLineNumber: 0, endColumnNumber: 0, message: e.Message);
        }
        catch (OperationCanceledException) when (_cancellation.IsCancellationRequested)
        {
            Log.LogMessage(MessageImportance.High, "Runcible: cancelled.");
            return false;
        }
        catch (Exception e)
        {
            Log.LogMessage(MessageImportance.Low, e.ToString());
            var error = RuncibleErrors.InternalError;
            Log.LogError(subcategory: null, error.Code, helpKeyword: null, file: null, lineNumber: 0, columnNumber: 0, endLineNumber: 0, endColumnNumber: 0, message: error.Format($"{e.GetType().Name}: {e.Message}"));
        }

        return !Log.HasLoggedErrors;
    }

    /// <summary>The task's work; throw <see cref="RuncibleException"/> for anything the user must fix.</summary>
    protected abstract void ExecuteCore();

    /// <summary>Core's log, routed to this task's logger.</summary>
    private protected IBuildLog BuildLog => new TaskBuildLog(this);

    /// <summary>
    /// Writes <paramref name="content"/> to <paramref name="path"/> only when it differs from what is
    /// there, so the file's timestamp moves only on real changes (it drives Inputs/Outputs).
    /// Returns true when it wrote.
    /// </summary>
    public static bool WriteIfChanged(string path, byte[] content)
    {
        if (File.Exists(path))
        {
            var existing = File.ReadAllBytes(path);
            if (existing.AsSpan().SequenceEqual(content))
            {
                return false;
            }
        }

        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
        var temp = path + "." + Guid.NewGuid().ToString("N") + ".tmp";
        File.WriteAllBytes(temp, content);
        File.Move(temp, path, overwrite: true);
        return true;
    }

    private sealed class TaskBuildLog(RuncibleTask task) : IBuildLog
    {
        // Important messages (pull progress, throttled) at high importance: a default `dotnet publish` shows them, as it shows the SDK's own pull and push progress.
        public void LogMessage(string message, bool important = false) =>
            task.Log.LogMessage(important ? MessageImportance.High : MessageImportance.Low, message);

        public void LogWarning(ErrorDescriptor warning, params object?[] args) =>
            task.Log.LogWarning(subcategory: null, warning.Code, helpKeyword: null, file: null, lineNumber: 0, columnNumber: 0, endLineNumber: 0, endColumnNumber: 0, message: warning.Format(args));
    }
}
