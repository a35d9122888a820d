using System.Diagnostics;
using System.Text;

namespace Runcible.Tests.Infrastructure;

/// <summary>A long-running process started by a test, its standard output and error collected as they come; stdin is closed.</summary>
internal sealed class BackgroundProcess
{
    private readonly StringBuilder _output = new();

    public BackgroundProcess(Process process)
    {
        Process = process;
        process.OutputDataReceived += (_, e) => Append(e.Data);
        process.ErrorDataReceived += (_, e) => Append(e.Data);
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        process.StandardInput.Close();
    }

    public Process Process { get; }

    public string Output
    {
        get
        {
            lock (_output)
            {
                return _output.ToString();
            }
        }
    }

    public int WaitForExit(TimeSpan timeout)
    {
        if (!Process.WaitForExit(timeout))
        {
            throw new TimeoutException($"the process did not exit within {timeout}:\n{Output}");
        }

        Process.WaitForExit();
        return Process.ExitCode;
    }

    private void Append(string? line)
    {
        if (line is not null)
        {
            lock (_output)
            {
                _output.AppendLine(line);
            }
        }
    }
}
