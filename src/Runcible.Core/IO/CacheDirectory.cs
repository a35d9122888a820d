using Runcible.Core.Diagnostics;

namespace Runcible.Core.IO;

/// <summary>
/// The build cache (<c>RuncCacheDirectory</c>) holds what goes into every bundle: base image layers, compressed base
/// parts, remembered files of images. Whoever can write to it can put files into those bundles, so its directories are
/// created <c>0700</c>, and a cache directory owned by another user or writable by group or others is refused
/// (<see cref="RuncibleErrors.CacheDirectoryNotPrivate"/>), the way ssh treats <c>~/.ssh</c>.
/// </summary>
internal static class CacheDirectory
{
    private const UnixFileMode PrivateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute;
    private const uint TypeMask = 0xf000;
    private const uint TypeDirectory = 0x4000;
    private const uint GroupOrOtherWrite = 0x12;

    /// <summary>
    /// Creates the cache root <c>0700</c> if it is missing, then checks it and every directory of <see cref="CacheLayout.Subdirectories"/>
    /// that exists. A few <c>statx</c> calls: every build does it before it reads anything from the cache.
    /// </summary>
    public static void Prepare(string root)
    {
        root = Path.GetFullPath(root);
        Create(root);
        foreach (var subdirectory in CacheLayout.Subdirectories)
        {
            var path = Path.Combine(root, subdirectory);
            if (Directory.Exists(path))
            {
                Check(path);
            }
        }
    }

    /// <summary>Creates <paramref name="path"/> (and missing parents) <c>0700</c> and checks it; returns it.</summary>
    public static string Create(string path)
    {
        try
        {
            if (OperatingSystem.IsWindows())
            {
                Directory.CreateDirectory(path);
            }
            else
            {
                // Each missing level with the mode (Directory.CreateDirectory gives it to the last one only).
                var missing = new Stack<string>();
                for (var level = Path.GetFullPath(path); !Directory.Exists(level); level = Path.GetDirectoryName(level)!)
                {
                    missing.Push(level);
                }

                while (missing.TryPop(out var level))
                {
                    Directory.CreateDirectory(level, PrivateMode);
                }
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new RuncibleException(e, RuncibleErrors.ContentCacheUnusable, path, e.Message);
        }

        Check(path);
        return path;
    }

    /// <summary>Refuses <paramref name="path"/> (followed if a symlink: the directory it names is the one used) unless it is a directory of this user that only this user can write.</summary>
    public static void Check(string path)
    {
        if (!OperatingSystem.IsLinux() || FileIdentity.OwnerAndMode(path, followLinks: true) is not { } status)
        {
            return;
        }

        var user = PosixFileCalls.EffectiveUserId;
        string? problem = null;
        if ((status.Mode & TypeMask) != TypeDirectory)
        {
            problem = "is not a directory";
        }
        else if (status.Uid != user)
        {
            problem = $"is owned by user {status.Uid}, not by you ({user})";
        }
        else if ((status.Mode & GroupOrOtherWrite) != 0)
        {
            problem = $"is writable by {((status.Mode & 0x10) != 0 ? "its group" : "")}{((status.Mode & GroupOrOtherWrite) == GroupOrOtherWrite ? " and " : "")}{((status.Mode & 0x2) != 0 ? "other users" : "")} (mode {Convert.ToString(status.Mode & 0xfff, 8)})";
        }

        if (problem is not null)
        {
            throw new RuncibleException(RuncibleErrors.CacheDirectoryNotPrivate, path, problem, user);
        }
    }
}
