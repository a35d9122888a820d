#!/usr/bin/env bash
# Runcible benchmark (not a test): the same deployable tree made three ways, side by side, in one
# process tree, on samples/HelloWeb over the fixture "aspnet" base image served by a loopback registry.
#
#   cold  (empty image caches, app already compiled)
#     runcible : dotnet publish --no-build -p:PublishRuncBundle=true
#     seeds    : dotnet publish --no-build -t:PublishContainer to an archive (the .NET SDK)
#                -> skopeo copy docker-archive: oci:  -> umoci unpack -> tar | gzip -6
#   warm  (the app changed and was rebuilt, base image cached)
#     runcible : dotnet publish --no-build -p:PublishRuncBundle=true
#     sdk      : dotnet publish --no-build -t:PublishContainer to an archive
#   no-build  (the app changed and was rebuilt, base image cached), alternately, three ways of naming the base:
#     runcible : dotnet publish --no-build -p:PublishRuncBundle=true, the base pinned by digest (no registry
#                request), by tag with RuncOffline=true (none either), and by tag (one manifest request)
#     plain    : dotnet publish --no-build (no bundle, no container), after the same change
#   peak memory (max RSS, GNU time) of each, and the bundle's size against `tar | gzip -6` of the same tree.
#
# BENCH_CASES (default "cold warm nobuild") picks the cases. Prints every run, the median of BENCH_RUNS runs (default 3) of each and the ratios, then one no-build publish of
# each kind with -v:d and -clp:PerformanceSummary: Runcible's own timings and MSBuild's per-target and per-task
# times (those that differ from the plain publish's). docs/performance.md records them.
# Needs root (umoci unpack keeps owners; runc-style tree) and what eng/install-deps.sh installs.
set -euo pipefail
cd "$(dirname "$0")/.."
repo="$PWD"
runs="${BENCH_RUNS:-3}"
cases=" ${BENCH_CASES:-cold warm nobuild} "

[ "$(id -u)" -eq 0 ] || { echo "bench/run.sh: run as root" >&2; exit 1; }
bash eng/install-deps.sh >/dev/null
bash eng/fixture-images.sh
fixture_dir="${RUNCIBLE_FIXTURE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/runcible-fixtures}"

work="$(mktemp -d /tmp/runcible-bench.XXXXXX)"
registry_pid=""
cleanup() {
  set +e
  [ -n "$registry_pid" ] && kill "$registry_pid" 2>/dev/null && wait "$registry_pid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT INT TERM

registry_port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
mkdir -p "$work/registry"
printf 'version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: %s\nhttp:\n  addr: 127.0.0.1:%s\n' \
  "$work/registry/storage" "$registry_port" > "$work/registry/config.yml"
docker-registry serve "$work/registry/config.yml" > "$work/registry/log" 2>&1 &
registry_pid=$!
for _ in $(seq 1 50); do curl -fsS "http://127.0.0.1:$registry_port/v2/" >/dev/null 2>&1 && break; sleep 0.2; done
base_image="127.0.0.1:$registry_port/dotnet/aspnet:10.0"
skopeo copy --quiet --dest-tls-verify=false "oci:$fixture_dir/oci/aspnet:latest" "docker://$base_image"

export NUGET_PACKAGES="$work/nuget-packages" DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
export MSBUILDDISABLENODEREUSE=1 DOTNET_CLI_USE_MSBUILD_SERVER=0
export DOTNET_CONTAINER_INSECURE_REGISTRIES="127.0.0.1:$registry_port"
dotnet pack sdk/Runcible.Sdk.csproj -c Release -o artifacts/packages -nologo -v:q
cp -r samples "$work/samples"
ln -s "$repo/artifacts" "$work/artifacts"
cp Directory.Build.props Directory.Packages.props "$work/"
project="$work/samples/HelloWeb"
rm -rf "${project:?}/bin" "${project:?}/obj"
common=(-c Release -r linux-x64 -nologo -v:q -nodeReuse:false "-p:ContainerBaseImage=$base_image")
dotnet build "$project" "${common[@]}" >/dev/null

# timed <name> <command…>: appends "seconds maxrss_kib" to $work/<name>.times
timed() {
  local name="$1"; shift
  /usr/bin/time -f '%e %M' -o "$work/time.out" "$@" >"$work/$name.log" 2>&1 || { cat "$work/$name.log"; exit 1; }
  cat "$work/time.out" >> "$work/$name.times"
  echo "  $name: $(cut -d' ' -f1 "$work/time.out") s" >&2
}

pipelines="$repo/bench/pipelines.sh"
[[ "$cases" == *" cold "* ]] && for i in $(seq 1 "$runs"); do
  [ "$i" -gt 1 ] || echo "cold: $runs runs each (load: $(cut -d' ' -f1-3 /proc/loadavg))" >&2
  rm -rf "$work/out"
  timed cold-runcible bash "$pipelines" runcible "$project" "$base_image" "$work/cache-cold-$i" "$work/out/"
  timed cold-seeds bash "$pipelines" seeds "$project" "$base_image" "$work/seeds-$i"
  rm -rf "$work/seeds-$i" "$work/cache-cold-$i"
done

mkdir -p "$work/sdk-tmp"
# The cold loop's last tarball is still in out/: without removing it, the priming build would be skipped as
# up to date and the first timed warm run would be a cold one.
rm -rf "$work/out"
bash "$pipelines" runcible "$project" "$base_image" "$work/cache-warm" "$work/out/" >/dev/null
[[ "$cases" == *" warm "* ]] && TMPDIR="$work/sdk-tmp" bash "$pipelines" sdk "$project" "$base_image" "$work/warm-image.tar.gz" >/dev/null
[[ "$cases" == *" warm "* ]] && for i in $(seq 1 "$runs"); do
  [ "$i" -gt 1 ] || echo "warm: $runs runs each (load: $(cut -d' ' -f1-3 /proc/loadavg))" >&2
  sed -i "s/Hello from [^{]*{/Hello from build $i of {/" "$project/Program.cs"
  dotnet build "$project" "${common[@]}" >/dev/null
  timed warm-runcible bash "$pipelines" runcible "$project" "$base_image" "$work/cache-warm" "$work/out/"
  TMPDIR="$work/sdk-tmp" timed warm-sdk bash "$pipelines" sdk "$project" "$base_image" "$work/warm-image.tar.gz"
done

# change_app <text>: edits the app's source and rebuilds it, as a developer would before publishing with --no-build.
change_app() {
  sed -i "s/Hello from [^{]*{/Hello from $1 of {/" "$project/Program.cs"
  dotnet build "$project" "${common[@]}" >/dev/null
}

base_digest="$(skopeo inspect --tls-verify=false --format '{{.Digest}}' "docker://$base_image")"
declare -A nobuild_base=([pinned]="$base_image@$base_digest" [offline]="$base_image" [tag]="$base_image")
declare -A nobuild_args=([pinned]="" [offline]="-p:RuncOffline=true" [tag]="")
[[ "$cases" == *" nobuild "* ]] && for kind in pinned offline tag; do
  echo "no-build, base $kind: $runs runs each, alternately (load: $(cut -d' ' -f1-3 /proc/loadavg))" >&2
  # One untimed publish first: the bundle of the previous kind named its base differently.
  change_app "$kind priming"
  bash "$pipelines" runcible "$project" "${nobuild_base[$kind]}" "$work/cache-warm" "$work/out-nobuild/" ${nobuild_args[$kind]} >/dev/null
  for i in $(seq 1 "$runs"); do
    change_app "$kind build $i"
    timed "nobuild-$kind-runcible" bash "$pipelines" runcible "$project" "${nobuild_base[$kind]}" "$work/cache-warm" "$work/out-nobuild/" ${nobuild_args[$kind]}
    change_app "$kind build $i plain"
    timed "nobuild-$kind-plain" bash "$pipelines" plain "$project"
  done
done

bundle="$work/out/helloweb-1.0.0.tar.gz"
mkdir -p "$work/tree"
tar --numeric-owner -xpf "$bundle" -C "$work/tree"
reference_size="$(tar -C "$work/tree" --numeric-owner -cf - opt | gzip -6 | wc -c)"
bundle_size="$(stat -c %s "$bundle")"

echo "load: $(cut -d' ' -f1-3 /proc/loadavg)"
python3 - "$work" "$bundle_size" "$reference_size" <<'EOF'
import os, statistics, sys
work, bundle_size, reference_size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
def load(name):
    rows = [line.split() for line in open(f"{work}/{name}.times") if line.strip()]
    return statistics.median(float(r[0]) for r in rows), statistics.median(int(r[1]) for r in rows) / 1024
kinds = ["pinned", "offline", "tag"]
names = ["cold-runcible", "cold-seeds", "warm-runcible", "warm-sdk"] + [f"nobuild-{k}-{p}" for k in kinds for p in ["runcible", "plain"]]
names = [n for n in names if os.path.exists(f"{work}/{n}.times")]
results = {n: load(n) for n in names}
print(f"{'case':<24}{'median s':>10}{'peak MiB':>10}  runs (s)")
for name, (seconds, mib) in results.items():
    runs = " ".join(line.split()[0] for line in open(f"{work}/{name}.times") if line.strip())
    print(f"{name:<24}{seconds:>10.2f}{mib:>10.0f}  {runs}")
if "cold-seeds" in results:
    print(f"cold ratio runcible/seeds: {results['cold-runcible'][0] / results['cold-seeds'][0]:.2f}x (goal <= 0.15x)")
if "warm-sdk" in results:
    print(f"warm ratio runcible/sdk:   {results['warm-runcible'][0] / results['warm-sdk'][0]:.2f}x (goal <= 0.85x)")
for k in (kinds if "nobuild-tag-plain" in results else []):
    ratio = results[f"nobuild-{k}-runcible"][0] / results[f"nobuild-{k}-plain"][0]
    goal = " (goal <= 1.05x)" if k != "tag" else ""
    print(f"no-build ratio runcible/plain, base {k + ':':<8} {ratio:.2f}x{goal}")
print(f"bundle size {bundle_size / 2**20:.1f} MiB vs tar | gzip -6 of the same tree {reference_size / 2**20:.1f} MiB ({bundle_size / reference_size:.2f}x)")
EOF

# Where the no-build time goes: one publish of each kind with Runcible's timings (-v:d) and MSBuild's performance
# summary; targets and tasks are listed where they differ from the plain publish's by 5 ms or more.
profile=(-v:d -clp:PerformanceSummary)
[[ "$cases" == *" nobuild "* ]] && for kind in pinned offline tag plain; do
  change_app "$kind profile"
  if [ "$kind" = plain ]; then
    bash "$pipelines" plain "$project" "${profile[@]}" > "$work/profile-$kind.log"
  else
    bash "$pipelines" runcible "$project" "${nobuild_base[$kind]}" "$work/cache-warm" "$work/out-nobuild/" ${nobuild_args[$kind]} "${profile[@]}" > "$work/profile-$kind.log"
  fi
done
[ -z "${BENCH_PROFILE_DIR:-}" ] || { mkdir -p "$BENCH_PROFILE_DIR"; cp "$work"/profile-*.log "$BENCH_PROFILE_DIR/"; }
[[ "$cases" != *" nobuild "* ]] || python3 "$repo/bench/profile-summary.py" "$work"/profile-{plain,pinned,offline,tag}.log
