using System.Runtime.InteropServices;
using System.Text;

namespace Runcible.Core.IO;

/// <summary>
/// The libc calls extraction needs that .NET does not offer without following symlinks (or at all):
/// creating nodes, owners, modes, extended attributes and times, each on a path's last component
/// itself or on an open descriptor. Paths and names are passed as NUL-terminated UTF-8 bytes.
/// Linux with glibc 2.33 or later (<c>mknod</c> is an exported symbol from there on).
/// </summary>
internal static class PosixFileCalls
{
    public const int AtCurrentDirectory = -100;
    public const int AtSymlinkNoFollow = 0x100;

    private const int OpenWriteOnly = 0x1;
    private const int OpenCreate = 0x40;
    private const int OpenExclusive = 0x80;
    private const int OpenCloseOnExec = 0x80000;

    // O_DIRECTORY and O_NOFOLLOW differ between architectures (arm, arm64 and powerpc use the older values).
    private static readonly bool OlderOpenFlags = RuntimeInformation.ProcessArchitecture is Architecture.Arm or Architecture.Arm64 or Architecture.Armv6 or Architecture.Ppc64le;
    private static readonly int OpenDirectory = OlderOpenFlags ? 0x4000 : 0x10000;
    private static readonly int OpenNoFollow = OlderOpenFlags ? 0x8000 : 0x20000;

    private const uint TypeFifo = 0x1000;
    private const uint TypeCharacterDevice = 0x2000;
    private const uint TypeBlockDevice = 0x6000;

    public const int ErrorNotPermitted = 1;
    public const int ErrorNotSupported = 95;

    /// <summary>A failed call: the call's name and errno.</summary>
    public sealed class CallFailedException(string call, int errno)
        : IOException($"{call}: {Marshal.GetPInvokeErrorMessage(errno)} (errno {errno})")
    {
        public int Errno { get; } = errno;
    }

    public static bool RunningAsRoot => geteuid() == 0;

    public static uint EffectiveUserId => geteuid();

    public static byte[] Bytes(string text)
    {
        var bytes = new byte[Encoding.UTF8.GetByteCount(text) + 1];
        Encoding.UTF8.GetBytes(text, bytes);
        return bytes;
    }

    /// <summary>Creates a new regular file (never an existing one, never through a symlink), open for writing.</summary>
    public static int CreateFile(string path, uint mode) =>
        Check(open(Bytes(path), OpenWriteOnly | OpenCreate | OpenExclusive | OpenNoFollow | OpenCloseOnExec, mode), "open");

    /// <summary>Opens a directory for its metadata; refuses a symlink in its place.</summary>
    public static int OpenDirectoryNoFollow(string path) =>
        Check(open(Bytes(path), OpenDirectory | OpenNoFollow | OpenCloseOnExec, 0), "open");

    public static void Close(int descriptor) => close(descriptor);

    public static void MakeDirectory(string path, uint mode) => Check(mkdir(Bytes(path), mode), "mkdir");

    public static void MakeSymbolicLink(string target, string path) => Check(symlink(Bytes(target), Bytes(path)), "symlink");

    public static void MakeHardLink(string existing, string path) => Check(link(Bytes(existing), Bytes(path)), "link");

    public static void MakeFifo(string path, uint mode) => Check(mknod(Bytes(path), TypeFifo | mode, 0), "mknod");

    public static void MakeDevice(string path, bool block, uint mode, int major, int minor) =>
        Check(mknod(Bytes(path), (block ? TypeBlockDevice : TypeCharacterDevice) | mode, DeviceNumber((uint)major, (uint)minor)), "mknod");

    public static void ChangeOwner(int descriptor, int uid, int gid) => Check(fchown(descriptor, (uint)uid, (uint)gid), "fchown");

    public static void ChangeOwnerNoFollow(string path, int uid, int gid) => Check(lchown(Bytes(path), (uint)uid, (uint)gid), "lchown");

    public static void ChangeMode(int descriptor, uint mode) => Check(fchmod(descriptor, mode), "fchmod");

    /// <summary>chmod of a path's last component itself; glibc refuses (EOPNOTSUPP) when it is a symlink.</summary>
    public static void ChangeModeNoFollow(string path, uint mode) =>
        Check(fchmodat(AtCurrentDirectory, Bytes(path), mode, AtSymlinkNoFollow), "fchmodat");

    public static int TrySetAttribute(int descriptor, string name, byte[] value) =>
        fsetxattr(descriptor, Bytes(name), value, (nuint)value.Length, 0) == 0 ? 0 : Marshal.GetLastPInvokeError();

    public static int TrySetAttributeNoFollow(string path, string name, byte[] value) =>
        lsetxattr(Bytes(path), Bytes(name), value, (nuint)value.Length, 0) == 0 ? 0 : Marshal.GetLastPInvokeError();

    /// <summary>Sets access and modification time to <paramref name="seconds"/>.</summary>
    public static void SetTimes(int descriptor, long seconds) => Check(futimens(descriptor, [seconds, 0, seconds, 0]), "futimens");

    public static void SetTimesNoFollow(string path, long seconds) =>
        Check(utimensat(AtCurrentDirectory, Bytes(path), [seconds, 0, seconds, 0], AtSymlinkNoFollow), "utimensat");

    // glibc's gnu_dev_makedev.
    private static ulong DeviceNumber(uint major, uint minor) =>
        ((ulong)(major & 0xfffff000) << 32) | ((ulong)(major & 0xfff) << 8) | ((ulong)(minor & 0xffffff00) << 12) | (minor & 0xff);

    private static int Check(int result, string call) =>
        result >= 0 ? result : throw new CallFailedException(call, Marshal.GetLastPInvokeError());

    /// <summary>
    /// Swaps two existing paths atomically (renameat2 with RENAME_EXCHANGE). False where the kernel or file
    /// system cannot (or a path has gone): the caller falls back to a plain rename.
    /// </summary>
    public static bool TryExchange(string first, string second)
    {
        const uint renameExchange = 2;
        try
        {
            return renameat2(AtCurrentDirectory, Bytes(first), AtCurrentDirectory, Bytes(second), renameExchange) == 0;
        }
        catch (Exception e) when (e is EntryPointNotFoundException or DllNotFoundException)
        {
            return false;
        }
    }

    /// <summary>rename(2) and nothing else: false where it fails (another mount, say), never a copy.</summary>
    public static bool TryRename(string from, string to)
    {
        try
        {
            return rename(Bytes(from), Bytes(to)) == 0;
        }
        catch (Exception e) when (e is EntryPointNotFoundException or DllNotFoundException)
        {
            return false;
        }
    }

    [DllImport("libc", SetLastError = true)]
    private static extern int rename(byte[] oldPath, byte[] newPath);

    [DllImport("libc", SetLastError = true)]
    private static extern int renameat2(int oldDirectoryFd, byte[] oldPath, int newDirectoryFd, byte[] newPath, uint flags);

    [DllImport("libc", SetLastError = true)]
    private static extern int open(byte[] path, int flags, uint mode);

    [DllImport("libc", SetLastError = true)]
    private static extern int close(int fd);

    [DllImport("libc", SetLastError = true)]
    private static extern int mkdir(byte[] path, uint mode);

    [DllImport("libc", SetLastError = true)]
    private static extern int symlink(byte[] target, byte[] linkPath);

    [DllImport("libc", SetLastError = true)]
    private static extern int link(byte[] oldPath, byte[] newPath);

    [DllImport("libc", SetLastError = true)]
    private static extern int mknod(byte[] path, uint mode, ulong device);

    [DllImport("libc", SetLastError = true)]
    private static extern int fchown(int fd, uint uid, uint gid);

    [DllImport("libc", SetLastError = true)]
    private static extern int lchown(byte[] path, uint uid, uint gid);

    [DllImport("libc", SetLastError = true)]
    private static extern int fchmod(int fd, uint mode);

    [DllImport("libc", SetLastError = true)]
    private static extern int fchmodat(int directoryFd, byte[] path, uint mode, int flags);

    [DllImport("libc", SetLastError = true)]
    private static extern int fsetxattr(int fd, byte[] name, byte[] value, nuint size, int flags);

    [DllImport("libc", SetLastError = true)]
    private static extern int lsetxattr(byte[] path, byte[] name, byte[] value, nuint size, int flags);

    [DllImport("libc", SetLastError = true)]
    private static extern int futimens(int fd, long[] times);

    [DllImport("libc", SetLastError = true)]
    private static extern int utimensat(int directoryFd, byte[] path, long[] times, int flags);

    [DllImport("libc")]
    private static extern uint geteuid();
}
