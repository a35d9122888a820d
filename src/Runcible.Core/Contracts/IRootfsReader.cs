namespace Runcible.Core.Contracts;

/// <summary>
/// Reads single files of a root filesystem (a flattened image or an extracted directory) without
/// extracting anything, for things like <c>/etc/passwd</c>.
/// </summary>
internal interface IRootfsReader
{
    /// <summary>
    /// Reads the regular file at <paramref name="path"/> (absolute inside the tree), following
    /// symlinks only inside the tree (an absolute target means the tree's root, <c>..</c> stops at
    /// the root). Returns null when nothing is there or it is not a regular file. Throws a
    /// <see cref="Diagnostics.RuncibleException"/> when the file is larger than <paramref name="maxBytes"/>.
    /// </summary>
    byte[]? ReadFile(string path, int maxBytes);

    /// <summary>
    /// Walks <paramref name="path"/> (absolute, normalised) from the root following no symlink, and returns the first
    /// component that is present and not a directory (a symlink, a file…): its path and kind. Null when every
    /// component present is a directory (the rest, if any, is absent).
    /// </summary>
    (string Path, RootfsNodeKind Kind)? FindNonDirectoryComponent(string path);
}

/// <summary>What a node of the flattened tree is.</summary>
internal enum RootfsNodeKind
{
    Directory,
    RegularFile,
    SymbolicLink,
    CharacterDevice,
    BlockDevice,
    Fifo,
}
