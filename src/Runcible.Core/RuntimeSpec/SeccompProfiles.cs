using System.Globalization;
using System.Text.Json;
using Runcible.Core.Diagnostics;
using Runcible.Core.Contracts;

namespace Runcible.Core.RuntimeSpec;

/// <summary>Which seccomp filter a config gets (<c>RuncSeccompProfile</c>).</summary>
internal sealed class SeccompSetting
{
    private SeccompSetting(RuntimeSeccomp? profile, bool unconfined)
    {
        Profile = profile;
        IsUnconfined = unconfined;
    }

    /// <summary>The default profile, resolved for the bundle's architecture and capabilities.</summary>
    public static SeccompSetting Default { get; } = new(null, false);

    /// <summary>No <c>linux.seccomp</c> at all.</summary>
    public static SeccompSetting Unconfined { get; } = new(null, true);

    /// <summary>A profile the project gives, embedded as it is.</summary>
    public static SeccompSetting FromProfile(RuntimeSeccomp profile) => new(profile ?? throw new ArgumentNullException(nameof(profile)), false);

    public RuntimeSeccomp? Profile { get; }

    public bool IsUnconfined { get; }
}

/// <summary>
/// The default seccomp profile (the data file <c>seccomp-default.profile</c>, moby's default profile's rules) and
/// the validation of a profile file given by <c>RuncSeccompProfile</c>.
/// </summary>
internal static class SeccompProfiles
{
    private const string DefaultResource = "Runcible.Core.RuntimeSpec.seccomp-default.profile";

    // A profile is a few kilobytes; this only stops a wrong path (a disk image, /dev/zero) from being read whole.
    private const int MaxProfileBytes = 4 * 1024 * 1024;

    // What runc 1.1 and the OCI runtime-spec schema accept.
    private static readonly HashSet<string> Actions = new(StringComparer.Ordinal)
    {
        "SCMP_ACT_KILL", "SCMP_ACT_KILL_PROCESS", "SCMP_ACT_KILL_THREAD", "SCMP_ACT_TRAP", "SCMP_ACT_ERRNO",
        "SCMP_ACT_TRACE", "SCMP_ACT_ALLOW", "SCMP_ACT_LOG", "SCMP_ACT_NOTIFY",
    };

    private static readonly HashSet<string> Architectures = new(StringComparer.Ordinal)
    {
        "SCMP_ARCH_X86", "SCMP_ARCH_X86_64", "SCMP_ARCH_X32", "SCMP_ARCH_ARM", "SCMP_ARCH_AARCH64", "SCMP_ARCH_MIPS",
        "SCMP_ARCH_MIPS64", "SCMP_ARCH_MIPS64N32", "SCMP_ARCH_MIPSEL", "SCMP_ARCH_MIPSEL64", "SCMP_ARCH_MIPSEL64N32",
        "SCMP_ARCH_PPC", "SCMP_ARCH_PPC64", "SCMP_ARCH_PPC64LE", "SCMP_ARCH_S390", "SCMP_ARCH_S390X",
        "SCMP_ARCH_PARISC", "SCMP_ARCH_PARISC64", "SCMP_ARCH_RISCV64",
    };

    private static readonly HashSet<string> Flags = new(StringComparer.Ordinal)
    {
        "SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW", "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV",
    };

    private static readonly HashSet<string> Operators = new(StringComparer.Ordinal)
    {
        "SCMP_CMP_NE", "SCMP_CMP_LT", "SCMP_CMP_LE", "SCMP_CMP_EQ", "SCMP_CMP_GE", "SCMP_CMP_GT", "SCMP_CMP_MASKED_EQ",
    };

    // The errnos the data file names; the same numbers on every architecture Runcible builds for.
    private static readonly Dictionary<string, uint> Errnos = new(StringComparer.Ordinal) { ["EPERM"] = 1, ["ENOSYS"] = 38 };

    private static readonly Lazy<DefaultProfileData> DefaultData = new(() =>
    {
        using var stream = typeof(SeccompProfiles).Assembly.GetManifestResourceStream(DefaultResource)
            ?? throw new InvalidOperationException($"The resource {DefaultResource} is missing from Runcible.Core.");
        using var reader = new StreamReader(stream);
        return DefaultProfileData.Parse(reader.ReadToEnd());
    });

    /// <summary>The image architectures (<c>amd64</c>, <c>arm64</c>…) the default profile has rules for.</summary>
    public static IReadOnlyCollection<string> DefaultArchitectures => DefaultData.Value.Architectures.Keys;

    /// <summary>
    /// The default profile for a bundle of <paramref name="architecture"/> (an OCI image architecture) whose process has
    /// <paramref name="boundingCapabilities"/>: conditions on capabilities, architectures and the kernel are resolved here,
    /// as moby resolves them when it creates a container. Null when there are no rules for the architecture.
    /// </summary>
    public static RuntimeSeccomp? Default(string architecture, IReadOnlyCollection<string> boundingCapabilities) =>
        DefaultData.Value.Resolve(architecture, boundingCapabilities);

    /// <summary>Parses the default profile's data from <paramref name="text"/>; exposed for tests of the format.</summary>
    internal static RuntimeSeccomp? ResolveData(string text, string architecture, IReadOnlyCollection<string> boundingCapabilities) =>
        DefaultProfileData.Parse(text).Resolve(architecture, boundingCapabilities);

    /// <summary>
    /// Reads and validates an OCI seccomp profile (the <c>linux.seccomp</c> object of a config.json): well-formed, every
    /// property one the spec defines, known actions, architectures, flags and operators, non-empty syscall names.
    /// Anything else is RUNCIBLE3012.
    /// </summary>
    public static RuntimeSeccomp LoadProfile(string path)
    {
        byte[] bytes;
        try
        {
            using var file = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read);
            if (!file.CanSeek || file.Length > MaxProfileBytes)
            {
                throw Bad(path, $"it is not a regular file of at most {MaxProfileBytes / (1024 * 1024)} MiB");
            }

            bytes = new byte[file.Length];
            file.ReadExactly(bytes);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new RuncibleException(e, RuncibleErrors.BadSeccompProfile, path, "it cannot be read (" + e.Message + ")");
        }

        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(bytes);
        }
        catch (JsonException e)
        {
            throw new RuncibleException(e, RuncibleErrors.BadSeccompProfile, path, "it is not well-formed JSON (" + e.Message + ")");
        }

        using (document)
        {
            try
            {
                return ReadProfile(document.RootElement);
            }
            catch (ProfileProblem problem)
            {
                throw Bad(path, problem.Message);
            }
        }
    }

    private static RuncibleException Bad(string path, string problem) => new(RuncibleErrors.BadSeccompProfile, path, problem);

    private static RuntimeSeccomp ReadProfile(JsonElement root)
    {
        if (root.ValueKind != JsonValueKind.Object)
        {
            throw new ProfileProblem("it is not a JSON object");
        }

        var profile = new RuntimeSeccomp();
        var sawDefault = false;
        foreach (var property in root.EnumerateObject())
        {
            switch (property.Name)
            {
                case "defaultAction":
                    profile.DefaultAction = Known(property.Value, "defaultAction", Actions, "action");
                    sawDefault = true;
                    break;
                case "defaultErrnoRet":
                    profile.DefaultErrnoRet = UInt32(property.Value, "defaultErrnoRet");
                    break;
                case "architectures":
                    profile.Architectures = Strings(property.Value, "architectures").Select(a => KnownValue(a, "architectures", Architectures, "architecture")).ToList();
                    break;
                case "flags":
                    profile.Flags = Strings(property.Value, "flags").Select(f => KnownValue(f, "flags", Flags, "flag")).ToList();
                    break;
                case "listenerPath":
                    profile.ListenerPath = ReadString(property.Value, "listenerPath");
                    break;
                case "listenerMetadata":
                    profile.ListenerMetadata = ReadString(property.Value, "listenerMetadata");
                    break;
                case "syscalls":
                    profile.Syscalls = ReadArray(property.Value, "syscalls").Select((s, i) => ReadSyscall(s, $"syscalls[{i}]")).ToList();
                    break;
                default:
                    throw new ProfileProblem($"'{property.Name}' is not a property of an OCI seccomp profile" +
                        (property.Name is "archMap" or "defaultErrno" ? " (a Docker profile must be written out as an OCI one: architectures, no includes/excludes)" : ""));
            }
        }

        if (!sawDefault)
        {
            throw new ProfileProblem("it has no defaultAction");
        }

        CheckErrno(profile.DefaultAction, profile.DefaultErrnoRet, "defaultErrnoRet");
        return profile;
    }

    private static RuntimeSyscall ReadSyscall(JsonElement element, string where)
    {
        if (element.ValueKind != JsonValueKind.Object)
        {
            throw new ProfileProblem($"{where} is not an object");
        }

        var syscall = new RuntimeSyscall();
        var sawAction = false;
        foreach (var property in element.EnumerateObject())
        {
            switch (property.Name)
            {
                case "names":
                    syscall.Names = Strings(property.Value, where + ".names");
                    break;
                case "action":
                    syscall.Action = Known(property.Value, where + ".action", Actions, "action");
                    sawAction = true;
                    break;
                case "errnoRet":
                    syscall.ErrnoRet = UInt32(property.Value, where + ".errnoRet");
                    break;
                case "args":
                    syscall.Args = ReadArray(property.Value, where + ".args").Select((a, i) => ReadArg(a, $"{where}.args[{i}]")).ToList();
                    break;
                default:
                    throw new ProfileProblem($"'{property.Name}' in {where} is not a property of an OCI seccomp rule" +
                        (property.Name is "includes" or "excludes" or "name" ? " (Docker profile syntax)" : ""));
            }
        }

        if (syscall.Names.Count == 0)
        {
            throw new ProfileProblem($"{where} names no syscall");
        }

        if (syscall.Names.FirstOrDefault(n => n.Length == 0 || n.Any(c => !(char.IsAsciiLetterOrDigit(c) || c == '_'))) is { } badName)
        {
            throw new ProfileProblem($"'{badName}' in {where}.names is not a syscall name");
        }

        if (!sawAction)
        {
            throw new ProfileProblem($"{where} has no action");
        }

        CheckErrno(syscall.Action, syscall.ErrnoRet, where + ".errnoRet");
        return syscall;
    }

    private static RuntimeSyscallArg ReadArg(JsonElement element, string where)
    {
        if (element.ValueKind != JsonValueKind.Object)
        {
            throw new ProfileProblem($"{where} is not an object");
        }

        var arg = new RuntimeSyscallArg();
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (var property in element.EnumerateObject())
        {
            seen.Add(property.Name);
            switch (property.Name)
            {
                case "index":
                    arg.Index = UInt32(property.Value, where + ".index");
                    // Syscalls take at most six arguments.
                    if (arg.Index > 5)
                    {
                        throw new ProfileProblem($"{where}.index is {arg.Index}; a syscall argument index is 0 to 5");
                    }

                    break;
                case "value":
                    arg.Value = UInt64(property.Value, where + ".value");
                    break;
                case "valueTwo":
                    arg.ValueTwo = UInt64(property.Value, where + ".valueTwo");
                    break;
                case "op":
                    arg.Op = Known(property.Value, where + ".op", Operators, "operator");
                    break;
                default:
                    throw new ProfileProblem($"'{property.Name}' in {where} is not a property of a seccomp argument filter");
            }
        }

        foreach (var required in new[] { "index", "value", "op" })
        {
            if (!seen.Contains(required))
            {
                throw new ProfileProblem($"{where} has no {required}");
            }
        }

        return arg;
    }

    // runc refuses an errno for actions that return none.
    private static void CheckErrno(string action, uint? errno, string where)
    {
        if (errno is not null && action is not ("SCMP_ACT_ERRNO" or "SCMP_ACT_TRACE"))
        {
            throw new ProfileProblem($"{where} is set but the action {action} returns no errno");
        }
    }

    private static string Known(JsonElement value, string where, HashSet<string> known, string what) =>
        KnownValue(ReadString(value, where), where, known, what);

    private static string KnownValue(string value, string where, HashSet<string> known, string what) =>
        known.Contains(value) ? value : throw new ProfileProblem($"'{value}' in {where} is not a seccomp {what} runc knows");

    private static string ReadString(JsonElement value, string where) =>
        value.ValueKind == JsonValueKind.String ? value.GetString()! : throw new ProfileProblem($"{where} is not a string");

    private static List<JsonElement> ReadArray(JsonElement value, string where) =>
        value.ValueKind == JsonValueKind.Array ? value.EnumerateArray().ToList() : throw new ProfileProblem($"{where} is not an array");

    private static List<string> Strings(JsonElement value, string where) =>
        ReadArray(value, where).Select((e, i) => ReadString(e, $"{where}[{i}]")).ToList();

    private static uint UInt32(JsonElement value, string where) =>
        value.ValueKind == JsonValueKind.Number && value.TryGetUInt32(out var number) ? number : throw new ProfileProblem($"{where} is not a whole number from 0 to 4294967295");

    private static ulong UInt64(JsonElement value, string where) =>
        value.ValueKind == JsonValueKind.Number && value.TryGetUInt64(out var number) ? number : throw new ProfileProblem($"{where} is not a whole number from 0 to 2^64-1");

    private sealed class ProfileProblem(string message) : Exception(message);

    /// <summary>The parsed data file: rules with their conditions, not yet resolved for a bundle.</summary>
    private sealed class DefaultProfileData
    {
        private readonly List<Rule> _rules = [];

        private uint _defaultErrno;
        private (int Major, int Minor) _kernelFloor;

        public Dictionary<string, List<string>> Architectures { get; } = new(StringComparer.Ordinal);

        public RuntimeSeccomp? Resolve(string architecture, IReadOnlyCollection<string> bounding)
        {
            if (!Architectures.TryGetValue(architecture, out var seccompArches))
            {
                return null;
            }

            var syscalls = new List<RuntimeSyscall>();
            foreach (var rule in _rules)
            {
                if (rule.Applies(architecture, bounding, _kernelFloor))
                {
                    syscalls.Add(new RuntimeSyscall
                    {
                        Names = rule.Names.ToList(),
                        Action = rule.Action,
                        ErrnoRet = rule.Errno,
                        Args = rule.Args.Count == 0 ? null : rule.Args.Select(a => new RuntimeSyscallArg { Index = a.Index, Value = a.Value, ValueTwo = a.ValueTwo, Op = a.Op }).ToList(),
                    });
                }
            }

            return new RuntimeSeccomp
            {
                DefaultAction = "SCMP_ACT_ERRNO",
                DefaultErrnoRet = _defaultErrno,
                Architectures = seccompArches.Count == 0 ? null : seccompArches.ToList(),
                Syscalls = syscalls,
            };
        }

        public static DefaultProfileData Parse(string text)
        {
            var data = new DefaultProfileData();
            Rule? current = null;
            var lineNumber = 0;
            foreach (var rawLine in text.Split('\n'))
            {
                lineNumber++;
                var hash = rawLine.IndexOf('#', StringComparison.Ordinal);
                var line = (hash < 0 ? rawLine : rawLine[..hash]).Trim();
                if (line.Length == 0)
                {
                    continue;
                }

                var words = line.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries);
                try
                {
                    if (line[0] == '[')
                    {
                        if (line[^1] != ']')
                        {
                            throw new FormatException("a rule header ends with ']'");
                        }

                        current = Rule.Parse(line[1..^1].Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries));
                        data._rules.Add(current);
                    }
                    else if (words[0] == "default" && current is null)
                    {
                        data._defaultErrno = words is [_, "errno", var name] ? Errno(name) : throw new FormatException("expected 'default errno <ERRNO>'");
                    }
                    else if (words[0] == "kernel-floor" && current is null)
                    {
                        data._kernelFloor = words.Length == 2 ? KernelVersion(words[1]) : throw new FormatException("expected 'kernel-floor <major>.<minor>'");
                    }
                    else if (words[0] == "arch" && current is null)
                    {
                        if (words.Length < 3 || words[2] != "=" || words.Skip(3).Any(a => !SeccompProfiles.Architectures.Contains(a)))
                        {
                            throw new FormatException("expected 'arch <image-arch> = <SCMP_ARCH_...>...' with known architectures");
                        }

                        data.Architectures[words[1]] = words.Skip(3).ToList();
                    }
                    else if (current is not null)
                    {
                        if (words.FirstOrDefault(w => !w.All(c => char.IsAsciiLetterOrDigit(c) || c == '_')) is { } bad)
                        {
                            throw new FormatException($"'{bad}' is not a syscall name");
                        }

                        current.Names.AddRange(words);
                    }
                    else
                    {
                        throw new FormatException($"'{words[0]}' is not a statement");
                    }
                }
                catch (FormatException e)
                {
                    throw new InvalidDataException($"seccomp-default.profile line {lineNumber}: {e.Message}", e);
                }
            }

            if (data._defaultErrno == 0 || data._kernelFloor == default || data._rules.Count == 0 || data._rules.Any(r => r.Names.Count == 0))
            {
                throw new InvalidDataException("seccomp-default.profile needs 'default errno', 'kernel-floor' and rules that each name a syscall.");
            }

            return data;
        }

        private static uint Errno(string name) =>
            Errnos.TryGetValue(name, out var number) ? number : throw new FormatException($"unknown errno '{name}'");

        private static (int, int) KernelVersion(string text)
        {
            var parts = text.Split('.');
            return parts.Length == 2 && int.TryParse(parts[0], NumberStyles.None, CultureInfo.InvariantCulture, out var major) &&
                int.TryParse(parts[1], NumberStyles.None, CultureInfo.InvariantCulture, out var minor)
                ? (major, minor)
                : throw new FormatException($"'{text}' is not a kernel version <major>.<minor>");
        }

        private static ulong Number(string text)
        {
            var ok = text.StartsWith("0x", StringComparison.OrdinalIgnoreCase)
                ? ulong.TryParse(text.AsSpan(2), NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out var value)
                : ulong.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out value);
            return ok ? value : throw new FormatException($"'{text}' is not a number");
        }

        private sealed record Arg(uint Index, ulong Value, ulong ValueTwo, string Op);

        private sealed class Rule
        {
            private static readonly (string Token, string Op)[] Comparisons =
            [
                ("<=", "SCMP_CMP_LE"), (">=", "SCMP_CMP_GE"), ("==", "SCMP_CMP_EQ"), ("!=", "SCMP_CMP_NE"), ("<", "SCMP_CMP_LT"), (">", "SCMP_CMP_GT"),
            ];

            public string Action { get; private init; } = "";
            public uint? Errno { get; private init; }
            public List<string> Names { get; } = [];
            public List<Arg> Args { get; } = [];
            private List<string> IfCaps { get; } = [];
            private List<string> UnlessCaps { get; } = [];
            private List<string>? IfArches { get; set; }
            private List<string>? UnlessArches { get; set; }
            private (int Major, int Minor)? MinKernel { get; set; }

            // moby's semantics: an exclusion drops the rule when any of its arches or capabilities applies;
            // an inclusion keeps it only when all of its capabilities are granted and the arch is listed.
            public bool Applies(string architecture, IReadOnlyCollection<string> bounding, (int Major, int Minor) kernelFloor) =>
                !(UnlessArches?.Contains(architecture) ?? false) &&
                !UnlessCaps.Any(bounding.Contains) &&
                (IfArches?.Contains(architecture) ?? true) &&
                IfCaps.All(bounding.Contains) &&
                (MinKernel is not { } min || kernelFloor.CompareTo(min) >= 0);

            public static Rule Parse(string[] words)
            {
                if (words.Length == 0)
                {
                    throw new FormatException("a rule header names an action");
                }

                var index = 1;
                var rule = words[0] switch
                {
                    "allow" => new Rule { Action = "SCMP_ACT_ALLOW" },
                    "errno" when words.Length > 1 => new Rule { Action = "SCMP_ACT_ERRNO", Errno = SeccompProfiles.DefaultProfileData.Errno(words[index++]) },
                    _ => throw new FormatException($"'{words[0]}' is not an action (allow, errno <ERRNO>)"),
                };

                while (index < words.Length)
                {
                    var word = words[index++];
                    if (word is "if" or "unless")
                    {
                        var include = word == "if";
                        var condition = index < words.Length ? words[index++] : throw new FormatException($"'{word}' needs a condition");
                        if (condition.StartsWith("cap=", StringComparison.Ordinal))
                        {
                            (include ? rule.IfCaps : rule.UnlessCaps).Add(condition[4..]);
                        }
                        else if (condition.StartsWith("arch=", StringComparison.Ordinal))
                        {
                            var arches = condition[5..].Split(',').ToList();
                            if (include)
                            {
                                rule.IfArches = arches;
                            }
                            else
                            {
                                rule.UnlessArches = arches;
                            }
                        }
                        else if (include && condition.StartsWith("kernel>=", StringComparison.Ordinal))
                        {
                            rule.MinKernel = KernelVersion(condition[8..]);
                        }
                        else
                        {
                            throw new FormatException($"'{word} {condition}' is not a condition");
                        }
                    }
                    else if (word.StartsWith("arg", StringComparison.Ordinal) && word.Length > 4 && word[3] is >= '0' and <= '5')
                    {
                        rule.Args.Add(ParseArg(word));
                    }
                    else
                    {
                        throw new FormatException($"'{word}' is not a clause");
                    }
                }

                return rule;
            }

            private static Arg ParseArg(string word)
            {
                var argIndex = (uint)(word[3] - '0');
                var rest = word[4..];
                if (rest.StartsWith('&'))
                {
                    var equals = rest.IndexOf("==", StringComparison.Ordinal);
                    return equals > 1
                        ? new Arg(argIndex, Number(rest[1..equals]), Number(rest[(equals + 2)..]), "SCMP_CMP_MASKED_EQ")
                        : throw new FormatException($"'{word}' is not arg<i>&<mask>==<value>");
                }

                foreach (var (token, op) in Comparisons)
                {
                    if (rest.StartsWith(token, StringComparison.Ordinal))
                    {
                        return new Arg(argIndex, Number(rest[token.Length..]), 0, op);
                    }
                }

                throw new FormatException($"'{word}' has no comparison (< <= == != >= >)");
            }
        }
    }
}
