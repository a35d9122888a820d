using Runcible.Core.Bundle;
using Runcible.Core.Contracts;
using Runcible.Core.Diagnostics;
using Runcible.Core.RuntimeSpec;
using Runcible.Tests.Infrastructure;

namespace Runcible.Tests.RuntimeSpec;

/// <summary>The default seccomp profile (moby's rules, from seccomp-default.profile) and RuncSeccompProfile files.</summary>
public sealed class SeccompProfileTests : IDisposable
{
    private const ulong NamespaceFlags = 0x7e020000; // CLONE_NEWNS|NEWUTS|NEWIPC|NEWUSER|NEWPID|NEWNET|NEWCGROUP
    private static readonly string[] NoCapabilities = [];
    private static readonly string[] RootCapabilities = ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"];

    private readonly TempDirectory _temp = new("runcible-seccomp");

    public void Dispose() => _temp.Dispose();

    private static HashSet<string> Allowed(RuntimeSeccomp profile) =>
        profile.Syscalls!.Where(s => s.Action == "SCMP_ACT_ALLOW" && s.Args is null).SelectMany(s => s.Names).ToHashSet(StringComparer.Ordinal);

    private static IEnumerable<RuntimeSyscall> RulesFor(RuntimeSeccomp profile, string name) => profile.Syscalls!.Where(s => s.Names.Contains(name));

    [Fact]
    public void TheX64DefaultIsAnAllowListFailingWithEpermForX64AndItsCompatArchitectures()
    {
        var profile = SeccompProfiles.Default("amd64", RootCapabilities)!;
        Assert.Equal("SCMP_ACT_ERRNO", profile.DefaultAction);
        Assert.Equal(1u, profile.DefaultErrnoRet);
        Assert.Equal(["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"], profile.Architectures!);
        var allowed = Allowed(profile);
        // ptrace of its own processes, as moby on kernels whose seccomp holds against it.
        Assert.Empty(new[] { "read", "epoll_pwait", "arch_prctl", "modify_ldt", "ptrace" }.Except(allowed));
        Assert.DoesNotContain("set_tls", allowed);
        Assert.DoesNotContain("riscv_flush_icache", allowed);
        // Denied by omission: the default action answers them.
        foreach (var denied in new[] { "keyctl", "add_key", "request_key", "bpf", "userfaultfd", "perf_event_open", "unshare", "setns", "mount", "umount2", "reboot", "kexec_load", "open_by_handle_at", "io_uring_setup" })
        {
            Assert.DoesNotContain(RulesFor(profile, denied), s => s.Action == "SCMP_ACT_ALLOW");
        }
    }

    [Fact]
    public void WithoutSysAdminCloneMayNotCreateNamespacesAndClone3FailsWithEnosys()
    {
        var profile = SeccompProfiles.Default("amd64", NoCapabilities)!;
        var clone = Assert.Single(RulesFor(profile, "clone"));
        Assert.Equal("SCMP_ACT_ALLOW", clone.Action);
        var arg = Assert.Single(clone.Args!);
        Assert.Equal((0u, NamespaceFlags, 0ul, "SCMP_CMP_MASKED_EQ"), (arg.Index, arg.Value, arg.ValueTwo, arg.Op));
        var clone3 = Assert.Single(RulesFor(profile, "clone3"));
        Assert.Equal(("SCMP_ACT_ERRNO", 38u), (clone3.Action, clone3.ErrnoRet));

        // personality: only the five personas moby allows, each an exact match on the first argument.
        Assert.Equal([0x0ul, 0x8, 0x20000, 0x20008, 0xffffffff], RulesFor(profile, "personality").Select(r => Assert.Single(r.Args!)).Where(a => a.Op == "SCMP_CMP_EQ" && a.Index == 0).Select(a => a.Value));
        // socket: every family but AF_ALG (38) and AF_VSOCK (40).
        Assert.Equal([("SCMP_CMP_LT", 38ul), ("SCMP_CMP_EQ", 39ul), ("SCMP_CMP_GT", 40ul)], RulesFor(profile, "socket").Select(r => Assert.Single(r.Args!)).Select(a => (a.Op, a.Value)));
    }

    [Fact]
    public void CapabilityRulesFollowTheCapabilitiesTheConfigGrants()
    {
        var admin = SeccompProfiles.Default("amd64", ["CAP_SYS_ADMIN"])!;
        Assert.Empty(new[] { "unshare", "setns", "mount", "clone", "clone3" }.Except(Allowed(admin)));
        Assert.DoesNotContain(admin.Syscalls!, s => s.Args is not null && s.Names.Contains("clone"));
        Assert.DoesNotContain(admin.Syscalls!, s => s.Names.Contains("clone3") && s.Action == "SCMP_ACT_ERRNO");

        var others = Allowed(SeccompProfiles.Default("amd64", ["CAP_SYS_PTRACE", "CAP_SYS_TIME", "CAP_BPF", "CAP_PERFMON", "CAP_DAC_READ_SEARCH"])!);
        foreach (var name in new[] { "kcmp", "process_madvise", "clock_settime", "bpf", "perf_event_open", "open_by_handle_at" })
        {
            Assert.Contains(name, others);
        }

        Assert.DoesNotContain("unshare", others);
        Assert.DoesNotContain("kcmp", Allowed(SeccompProfiles.Default("amd64", RootCapabilities)!));
    }

    [Fact]
    public void TheArm64DefaultHasArmCallsAndNoX86Ones()
    {
        var profile = SeccompProfiles.Default("arm64", NoCapabilities)!;
        Assert.Equal(["SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"], profile.Architectures!);
        var allowed = Allowed(profile);
        Assert.Contains("set_tls", allowed);
        Assert.Contains("arm_fadvise64_64", allowed);
        Assert.DoesNotContain("arch_prctl", allowed);
        Assert.DoesNotContain("modify_ldt", allowed);
        Assert.Single(RulesFor(profile, "clone"));
    }

    [Fact]
    public void EveryArchitectureABundleCanBeBuiltForHasADefault()
    {
        foreach (var rid in new[] { "linux-x64", "linux-arm64", "linux-arm", "linux-x86", "linux-s390x", "linux-ppc64le", "linux-riscv64", "linux-loongarch64" })
        {
            Assert.NotNull(SeccompProfiles.Default(BundleSettingsValidator.OciArchitecture(rid), NoCapabilities));
        }

        // s390x passes clone's flags second.
        Assert.Equal(1u, Assert.Single(Assert.Single(RulesFor(SeccompProfiles.Default("s390x", NoCapabilities)!, "clone")).Args!).Index);
        Assert.Null(SeccompProfiles.Default("mips64le", NoCapabilities));
    }

    [Fact]
    public void TheDataFormatRejectsWhatItDoesNotDefine()
    {
        const string Header = "default errno EPERM\nkernel-floor 4.8\narch amd64 = SCMP_ARCH_X86_64\n";
        var ok = SeccompProfiles.ResolveData(Header + "[allow if kernel>=5.0]\nread\n[allow if kernel>=4.8 arg2&0xf0==0x10]\nwrite\n", "amd64", NoCapabilities)!;
        var write = Assert.Single(ok.Syscalls!);
        Assert.Equal(["write"], write.Names);
        Assert.Equal((2u, 0xf0ul, 0x10ul, "SCMP_CMP_MASKED_EQ"), (write.Args![0].Index, write.Args[0].Value, write.Args[0].ValueTwo, write.Args[0].Op));

        foreach (var bad in new[] { "[deny]\nread\n", "[allow if colour=red]\nread\n", "[allow arg9==1]\nread\n", "[allow]\nre-ad\n", "[allow\nread\n", "[allow]\n", "arch amd64 = SCMP_ARCH_VAX\n[allow]\nread\n", "[errno EWHAT]\nread\n" })
        {
            Assert.Throws<InvalidDataException>(() => SeccompProfiles.ResolveData(Header + bad, "amd64", NoCapabilities));
        }
    }

    private string Profile(string json)
    {
        var path = _temp.Combine(Guid.NewGuid().ToString("N") + ".json");
        File.WriteAllText(path, json);
        return path;
    }

    [Fact]
    public void AGivenProfileIsEmbeddedAsWritten()
    {
        var path = Profile("""
            {
              "defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 1, "architectures": ["SCMP_ARCH_X86_64"], "flags": ["SECCOMP_FILTER_FLAG_LOG"],
              "syscalls": [
                { "names": ["read", "write"], "action": "SCMP_ACT_ALLOW" },
                { "names": ["personality"], "action": "SCMP_ACT_ALLOW", "args": [{ "index": 0, "value": 8, "op": "SCMP_CMP_EQ" }] },
                { "names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38 }
              ]
            }
            """);
        var setting = ContainerSettingsValidator.ParseSeccomp(path);
        var profile = setting.Profile!;
        Assert.Equal(("SCMP_ACT_ERRNO", 1u), (profile.DefaultAction, profile.DefaultErrnoRet));
        Assert.Equal(["SCMP_ARCH_X86_64"], profile.Architectures!);
        Assert.Equal(["SECCOMP_FILTER_FLAG_LOG"], profile.Flags!);
        Assert.Equal(["read", "write"], profile.Syscalls![0].Names);
        Assert.Equal((0u, 8ul, "SCMP_CMP_EQ"), (profile.Syscalls[1].Args![0].Index, profile.Syscalls[1].Args![0].Value, profile.Syscalls[1].Args![0].Op));
        Assert.Equal(38u, profile.Syscalls[2].ErrnoRet);

        Assert.Same(SeccompSetting.Default, ContainerSettingsValidator.ParseSeccomp(null));
        Assert.Same(SeccompSetting.Default, ContainerSettingsValidator.ParseSeccomp(" "));
        Assert.Same(SeccompSetting.Unconfined, ContainerSettingsValidator.ParseSeccomp("Unconfined"));
    }

    [Theory]
    [InlineData("{", "well-formed")]
    [InlineData("[]", "not a JSON object")]
    [InlineData("""{ "syscalls": [] }""", "no defaultAction")]
    [InlineData("""{ "defaultAction": "SCMP_ACT_DENY" }""", "SCMP_ACT_DENY")]
    [InlineData("""{ "defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_VAX"] }""", "SCMP_ARCH_VAX")]
    [InlineData("""{ "defaultAction": "SCMP_ACT_ALLOW", "flags": ["SECCOMP_FILTER_FLAG_FAST"] }""", "SECCOMP_FILTER_FLAG_FAST")]
    [InlineData("""{ "defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{ "names": [], "action": "SCMP_ACT_ERRNO" }] }""", "names no syscall")]
    [InlineData("""{ "defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{ "names": [""], "action": "SCMP_ACT_ERRNO" }] }""", "not a syscall name")]
    [InlineData("""{ "defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{ "names": ["read"] }] }""", "no action")]
    [InlineData("""{ "defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{ "names": ["read"], "action": "SCMP_ACT_ERRNO", "args": [{ "index": 0, "value": 1, "op": "SCMP_CMP_ABOUT" }] }] }""", "SCMP_CMP_ABOUT")]
    [InlineData("""{ "defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{ "names": ["read"], "action": "SCMP_ACT_ERRNO", "args": [{ "index": 6, "value": 1, "op": "SCMP_CMP_EQ" }] }] }""", "0 to 5")]
    [InlineData("""{ "defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{ "names": ["read"], "action": "SCMP_ACT_ALLOW", "errnoRet": 1 }] }""", "returns no errno")]
    [InlineData("""{ "defaultAction": "SCMP_ACT_ERRNO", "archMap": [] }""", "Docker profile")]
    [InlineData("""{ "defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{ "names": ["read"], "action": "SCMP_ACT_ALLOW", "includes": {} }] }""", "Docker profile syntax")]
    [InlineData("""{ "defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": -1 }""", "whole number")]
    public void ABadProfileFileIsRuncible3012(string json, string expected)
    {
        var path = Profile(json);
        var e = Assert.Throws<RuncibleException>(() => ContainerSettingsValidator.ParseSeccomp(path));
        Assert.Equal("RUNCIBLE3012", e.Error.Code);
        Assert.Contains(path, e.Message);
        Assert.Contains(expected, e.Message);
    }

    [Fact]
    public void AMissingProfileFileIsRuncible3012()
    {
        var e = Assert.Throws<RuncibleException>(() => ContainerSettingsValidator.ParseSeccomp(_temp.Combine("absent.json")));
        Assert.Equal("RUNCIBLE3012", e.Error.Code);
        Assert.Contains("cannot be read", e.Message);
    }
}
