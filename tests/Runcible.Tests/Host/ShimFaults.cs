using System.Globalization;
using System.Text.RegularExpressions;

namespace Runcible.Tests.Host;

/// <summary>Where a command run by <see cref="ShimFaults.HoldAtRename"/> stopped.</summary>
/// <param name="Held">The command's process tree is frozen just before its N-th rename, which has not happened.</param>
/// <param name="Call">The held rename as strace printed it (<c>pid renameat2(AT_FDCWD, "from", AT_FDCWD, "to", …</c>), empty when completed.</param>
/// <param name="Renames">Completed: how many renames the whole command made.</param>
/// <param name="ExitCode">Completed: the command's exit code.</param>
/// <param name="Output">Completed: the command's stdout and stderr.</param>
/// <param name="Directory">The injector's directory in the host (<c>/run/hold-at-rename.*</c>: trace, output, exit code).</param>
internal sealed record RenameFault(bool Held, string Call, int Renames, int ExitCode, string Output, string Directory);

/// <summary>
/// Fault injection from outside the product: the shim runs as it is, under strace inside the host. strace's own
/// <c>inject=…:when=N</c> counts per process and per syscall number, and the shim renames through a new <c>mv</c>
/// (one <c>renameat2</c>) each time, so the count over the whole command is kept here: every
/// <c>rename</c>/<c>renameat</c>/<c>renameat2</c> of the command's process tree is held at its entry for a while
/// (<c>delay_enter</c>; strace writes the entry to its log at once), a watcher counts the entries, and at the N-th
/// it stops strace itself: the rename stays unexecuted and every other process of the tree stops at its next
/// system call (strace traces them all, and nothing resumes them). The host is then in the state a power cut
/// just before that rename leaves; <see cref="HostContainer.CutPower"/> makes it one.
/// </summary>
internal static class ShimFaults
{
    private const string DriverPath = "/usr/local/sbin/hold-at-rename";

    // $1 N, $2 hold (strace delay), $3 command (sh -c), $4 an awk regex the counted renames match, $5 one they
    // do not match (renames under /run: a tmpfs, gone with the power, so never a commit point). Prints its
    // directory, then "held <call>", "completed <rc> <renames>" and the command's output, "missed <call>" (the
    // hold ran out before the watcher stopped strace) or "timeout".
    private const string Driver = """
        #!/bin/sh
        n="$1" hold="$2" command="$3" match="$4" skip="$5"
        dir="$(mktemp -d /run/hold-at-rename.XXXXXX)"
        echo "$dir"
        : >"$dir/trace"
        strace -f -qq -e signal=none -o "$dir/trace" -e trace=rename,renameat,renameat2 \
          -e inject=rename,renameat,renameat2:delay_enter="$hold" \
          sh -c "($command)"' >"$0/out" 2>&1; echo $? >"$0/rc"' "$dir" </dev/null >"$dir/strace.out" 2>&1 &
        tracer=$!
        echo "$tracer" >"$dir/tracer"
        # The hold points: rename entries matching $match and not $skip. A rename/renameat right after a
        # renameat2(…, RENAME_NOREPLACE) of the same process is mv retrying over an existing target: the state
        # before it is the state before the first try, so it is not a hold point of its own.
        points='
          function point(retry) {
            if ($0 !~ /^[0-9]+ +(rename|renameat|renameat2)\(/ || $0 !~ m || $0 ~ s) return 0
            retry = $2 ~ /^(rename|renameat)\(/ && last[$1] ~ /RENAME_NOREPLACE/
            last[$1] = $0
            return !retry
          }'
        # 0: the N-th hold point is entered and not finished; 1: it finished; 2: not reached yet.
        nth() {
          awk -v n="$n" -v m="$match" -v s="$skip" "$points"'
            point() { k++; if (k == n) { pid = $1; call = $0; done = ($0 ~ /\) = /); next } }
            k >= n && $1 == pid && /resumed>/ { done = 1 }
            END { if (k < n) exit 2; print call; exit done }' "$dir/trace"
        }
        i=0
        while :; do
          call="$(nth)"
          case $? in
            0) kill -STOP "$tracer"; call="$(nth)" && echo "held $call" || echo "missed $call"; exit 0 ;;
            1) kill -STOP "$tracer"; echo "missed $call"; exit 0 ;;
          esac
          if [ -s "$dir/rc" ]; then
            # Let go of what the command left running (an OpenRC service's supervise-daemon, runc, the app): the
            # kernel detaches and resumes the tracees of a tracer that dies (strace's own detach on SIGTERM can hang on them).
            kill -KILL "$tracer" 2>/dev/null; wait "$tracer"
            echo "completed $(cat "$dir/rc") $(awk -v m="$match" -v s="$skip" "$points"' point() { k++ } END { print k + 0 }' "$dir/trace")"
            cat "$dir/out"
            exit 0
          fi
          i=$((i + 1))
          [ "$i" -lt 3000 ] || { echo timeout; kill -STOP "$tracer"; tail -n 5 "$dir/trace"; ps -e -o pid,ppid,stat,args; exit 0; }
          sleep 0.02
        done
        """;

    private static readonly Regex Completed = new(@"^completed (\d+) (\d+)$", RegexOptions.CultureInvariant);

    /// <summary>
    /// Runs <paramref name="command"/> (a shell command) in the host under the fault injector and stops its whole
    /// process tree just before its <paramref name="n"/>-th rename, or lets it complete when it makes fewer.
    /// Every rename of the command is delayed by <paramref name="hold"/> (default 400 ms): the watcher must see it in that time.
    /// Renames under /run are not counted (a tmpfs: gone with the power, never a commit point; runc renames its state there).
    /// </summary>
    public static RenameFault HoldAtRename(HostContainer host, string command, int n, TimeSpan? hold = null, string match = ".")
    {
        InstallDriver(host);
        var delay = (int)(hold ?? TimeSpan.FromMilliseconds(400)).TotalMilliseconds;
        var result = host.Exec($"{DriverPath} {n} {delay}ms {Quote(command)} {Quote(match)} {Quote("\"/run/")}", TimeSpan.FromMinutes(3));
        var lines = result.StandardOutput.Split('\n', 3);
        var (directory, first) = (lines[0], lines.Length > 1 ? lines[1] : "");
        if (first.StartsWith("held ", StringComparison.Ordinal))
        {
            return new RenameFault(true, first["held ".Length..], 0, 0, "", directory);
        }

        var completed = Completed.Match(first);
        if (completed.Success)
        {
            return new RenameFault(false, "", int.Parse(completed.Groups[2].Value, CultureInfo.InvariantCulture),
                int.Parse(completed.Groups[1].Value, CultureInfo.InvariantCulture), lines.Length > 2 ? lines[2] : "", directory);
        }

        throw new InvalidOperationException(first.StartsWith("missed ", StringComparison.Ordinal)
            ? $"The fault injector missed rename {n} of '{command}' (the {delay} ms hold ran out before the watcher stopped strace; the machine is too loaded): {first}"
            : $"The fault injector failed on '{command}' at rename {n}: {result.StandardOutput}{result.StandardError}");
    }

    /// <summary>
    /// Lets a command held by <see cref="HoldAtRename"/> go on (the held rename happens) and waits until it
    /// completes; strace is then killed, which lets go of what it left running.
    /// </summary>
    public static async Task<(int ExitCode, string Output)> ReleaseAsync(HostContainer host, RenameFault held, int seconds = 120)
    {
        host.ExecOk($"kill -CONT $(cat {held.Directory}/tracer)");
        var deadline = System.Diagnostics.Stopwatch.StartNew();
        while (deadline.Elapsed < TimeSpan.FromSeconds(seconds))
        {
            var rc = host.Exec($"cat {held.Directory}/rc").StandardOutput.Trim();
            if (rc.Length > 0)
            {
                host.Exec($"kill -KILL $(cat {held.Directory}/tracer) 2>/dev/null");
                return (int.Parse(rc, CultureInfo.InvariantCulture), host.Exec($"cat {held.Directory}/out").StandardOutput);
            }

            await Task.Delay(200);
        }

        throw new TimeoutException($"the released command ({held.Call}) did not finish in {seconds}s.");
    }

    /// <summary>
    /// Starts a shell command in the host in the background, in a session of its own; its exit code and output go
    /// to <c>/run/&lt;label&gt;.rc</c> and <c>.out</c>.
    /// </summary>
    public static void Start(HostContainer host, string label, string command) =>
        host.ExecOk($"rm -f /run/{label}.rc /run/{label}.out; setsid sh -c {Quote($"echo $$ >/run/{label}.pid; ({command}) >/run/{label}.out 2>&1; echo $? >/run/{label}.rc.tmp; mv /run/{label}.rc.tmp /run/{label}.rc")} </dev/null >/dev/null 2>&1 &");

    /// <summary>SIGKILL to every process of the session of a command started by <see cref="Start"/> (what the init system started is in sessions of its own).</summary>
    public static void Kill(HostContainer host, string label) =>
        host.ExecOk($"kill -KILL -- -$(cat /run/{label}.pid) 2>/dev/null; true");

    /// <summary>The exit code and output of a command started by <see cref="Start"/>, or null while it runs.</summary>
    public static (int ExitCode, string Output)? Finished(HostContainer host, string label)
    {
        var result = host.Exec($"cat /run/{label}.rc && cat /run/{label}.out");
        if (result.ExitCode != 0)
        {
            return null;
        }

        var parts = result.StandardOutput.Split('\n', 2);
        return (int.Parse(parts[0], CultureInfo.InvariantCulture), parts.Length > 1 ? parts[1] : "");
    }

    /// <summary>Waits for a command started by <see cref="Start"/>.</summary>
    public static async Task<(int ExitCode, string Output)> WaitAsync(HostContainer host, string label, int seconds = 120)
    {
        var deadline = System.Diagnostics.Stopwatch.StartNew();
        while (deadline.Elapsed < TimeSpan.FromSeconds(seconds))
        {
            if (Finished(host, label) is { } done)
            {
                return done;
            }

            await Task.Delay(200);
        }

        throw new TimeoutException($"'{label}' did not finish in {seconds}s.");
    }

    private static string Quote(string value) => "'" + value.Replace("'", "'\\''", StringComparison.Ordinal) + "'";

    private static void InstallDriver(HostContainer host)
    {
        var path = Path.Combine(host.Root, DriverPath.TrimStart('/'));
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        File.WriteAllText(path, Driver.Replace("\r\n", "\n", StringComparison.Ordinal) + "\n");
        Runcible.Tests.Infrastructure.ProcessRunner.Run("chmod", ["0755", path]).EnsureSuccess("chmod");
    }
}
