namespace Runcible.Tests.Infrastructure;

/// <summary>Unprivileged host users the tests run things as, created on first use (a fresh machine has none).</summary>
public static class SystemUsers
{
    /// <summary>The system user the rootless tests run as.</summary>
    public const string Rootless = "runcible-rootless";

    private static readonly object Gate = new();

    /// <summary>Creates the system user (no home, no login shell) unless it exists; tests in parallel get it once.</summary>
    public static string Ensure(string name)
    {
        lock (Gate)
        {
            if (ProcessRunner.Run("id", ["-u", name]).ExitCode != 0)
            {
                ProcessRunner.Run("useradd", ["--system", "--no-create-home", "--shell", "/usr/sbin/nologin", name]).EnsureSuccess("useradd " + name);
            }
        }

        return name;
    }
}
