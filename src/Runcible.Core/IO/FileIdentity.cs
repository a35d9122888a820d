using System.Globalization;
using System.Runtime.InteropServices;

namespace Runcible.Core.IO;

/// <summary>
/// What the kernel says identifies a file's current content without reading it: device, inode, size,
/// modification and status-change times (statx(2), which has one layout on every architecture). Any write,
/// truncation or replacement changes at least one of them, and the status-change time cannot be set back
/// from user space. Null where statx is not available (not Linux, or an old kernel).
/// </summary>
internal sealed record FileIdentity(ulong Device, ulong Inode, long Size, long ModifiedNanoseconds, long ChangedNanoseconds)
{
    private const int AtCurrentDirectory = -100;
    private const int AtSymlinkNoFollow = 0x100;
    private const uint StatxBasicStats = 0x7ff;

    // What the identity needs the kernel to have filled in (STATX_MTIME | STATX_CTIME | STATX_INO | STATX_SIZE).
    private const uint StatxNeeded = 0x40 | 0x80 | 0x100 | 0x200;

    // STATX_TYPE | STATX_MODE | STATX_UID.
    private const uint StatxOwnerAndMode = 0x1 | 0x2 | 0x8;

    // Offsets in struct statx (include/uapi/linux/stat.h).
    private const int UidOffset = 20;
    private const int ModeOffset = 28;
    private const int InodeOffset = 32;
    private const int SizeOffset = 40;
    private const int ChangeTimeOffset = 96;
    private const int ModifyTimeOffset = 112;
    private const int DeviceMajorOffset = 136;
    private const int DeviceMinorOffset = 140;

    private static bool s_unavailable;

    /// <summary>The identity of the file at <paramref name="path"/> itself (a symlink is not followed), or null.</summary>
    public static FileIdentity? Of(string path)
    {
        if (Statx(path, followLinks: false) is not { } buffer)
        {
            return null;
        }

        var span = buffer.AsSpan();
        if ((BitConverter.ToUInt32(span) & StatxNeeded) != StatxNeeded)
        {
            // A file system that does not report all of them: no identity, so nothing is trusted without hashing.
            return null;
        }

        ulong major = BitConverter.ToUInt32(span[DeviceMajorOffset..]);
        ulong minor = BitConverter.ToUInt32(span[DeviceMinorOffset..]);
        return new FileIdentity(
            (major << 32) | minor,
            BitConverter.ToUInt64(span[InodeOffset..]),
            BitConverter.ToInt64(span[SizeOffset..]),
            Nanoseconds(span[ModifyTimeOffset..]),
            Nanoseconds(span[ChangeTimeOffset..]));
    }

    /// <summary>Owner and mode (file type and permission bits, <c>st_mode</c>) of <paramref name="path"/>, or null when it cannot be had.</summary>
    public static (uint Uid, uint Mode)? OwnerAndMode(string path, bool followLinks)
    {
        if (Statx(path, followLinks) is not { } buffer)
        {
            return null;
        }

        var span = buffer.AsSpan();
        if ((BitConverter.ToUInt32(span) & StatxOwnerAndMode) != StatxOwnerAndMode)
        {
            return null;
        }

        return (BitConverter.ToUInt32(span[UidOffset..]), BitConverter.ToUInt16(span[ModeOffset..]));
    }

    /// <summary>struct statx of <paramref name="path"/>, or null (absent, or no statx here).</summary>
    private static byte[]? Statx(string path, bool followLinks)
    {
        if (s_unavailable || !OperatingSystem.IsLinux())
        {
            return null;
        }

        var buffer = new byte[256];
        try
        {
            return statx(AtCurrentDirectory, PosixFileCalls.Bytes(path), followLinks ? 0 : AtSymlinkNoFollow, StatxBasicStats, buffer) == 0 ? buffer : null;
        }
        catch (Exception e) when (e is EntryPointNotFoundException or DllNotFoundException)
        {
            s_unavailable = true;
            return null;
        }
    }

    /// <summary>One line that is equal for two identities exactly when they are equal.</summary>
    public string Format() => string.Create(CultureInfo.InvariantCulture, $"{Device} {Inode} {Size} {ModifiedNanoseconds} {ChangedNanoseconds}");

    // struct statx_timestamp: __s64 tv_sec, __u32 tv_nsec.
    private static long Nanoseconds(ReadOnlySpan<byte> timestamp) =>
        BitConverter.ToInt64(timestamp) * 1_000_000_000 + BitConverter.ToUInt32(timestamp[8..]);

    [DllImport("libc", SetLastError = true)]
    private static extern int statx(int directoryFd, byte[] path, int flags, uint mask, byte[] buffer);
}
