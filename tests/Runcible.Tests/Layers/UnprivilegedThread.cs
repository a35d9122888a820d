using System.Runtime.ExceptionServices;
using System.Runtime.InteropServices;

namespace Runcible.Tests.Layers;

/// <summary>
/// Runs code in this (root) test process as an ordinary user: on a new thread whose Linux credentials
/// alone are switched with the raw setgroups/setresgid/setresuid system calls (glibc's wrappers would
/// switch every thread of the process). The thread's effective and file-system ids become the user's,
/// with no supplementary groups; the kernel clears its effective capabilities on leaving uid 0, so
/// chown, mknod of devices, security.* attributes and permission checks behave as for that user. The
/// thread ends with the action, so no other test ever runs with these credentials.
/// </summary>
internal static class UnprivilegedThread
{
    public static T Run<T>(int uid, int gid, Func<T> action)
    {
        T result = default!;
        Exception? failure = null;
        var thread = new Thread(() =>
        {
            try
            {
                Check(syscall(Numbers.SetGroups, 0, 0, 0), "setgroups");
                Check(syscall(Numbers.SetResGid, gid, gid, -1), "setresgid");
                Check(syscall(Numbers.SetResUid, uid, uid, -1), "setresuid");
                result = action();
            }
            catch (Exception e)
            {
                failure = e;
            }
        });
        thread.Start();
        thread.Join();
        if (failure is not null)
        {
            ExceptionDispatchInfo.Throw(failure);
        }

        return result;
    }

    private static void Check(long result, string call)
    {
        if (result != 0)
        {
            throw new InvalidOperationException($"{call} failed: errno {Marshal.GetLastPInvokeError()}");
        }
    }

    private static class Numbers
    {
        private static readonly bool Arm64 = RuntimeInformation.ProcessArchitecture == Architecture.Arm64;

        public static long SetGroups => Arm64 ? 159 : 116;

        public static long SetResGid => Arm64 ? 149 : 119;

        public static long SetResUid => Arm64 ? 147 : 117;
    }

    [DllImport("libc", SetLastError = true)]
    private static extern long syscall(long number, long first, long second, long third);
}
