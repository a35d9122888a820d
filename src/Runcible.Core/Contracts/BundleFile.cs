namespace Runcible.Core.Contracts;

/// <summary>A file the bundle carries beside rootfs/ (the shim, service files), path relative to the bundle directory.</summary>
internal sealed record BundleFile(string RelativePath, byte[] Content, UnixFileMode Mode);
