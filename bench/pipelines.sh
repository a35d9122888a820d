#!/usr/bin/env bash
# The pipelines bench/run.sh times, each one command so GNU time can measure it as a whole.
#   pipelines.sh runcible <project> <base-image> <cache-dir> <out-dir> [msbuild args…]
#   pipelines.sh plain    <project> [msbuild args…]               (dotnet publish alone, no container or bundle)
#   pipelines.sh sdk      <project> <base-image> <archive>        (TMPDIR holds the SDK's layer store)
#   pipelines.sh seeds    <project> <base-image> <work-dir>       (SDK archive -> umoci unpack -> tar | gzip)
set -euo pipefail
pipeline="$1" project="$2" base_image="${3:-}"
common=(-c Release -r linux-x64 -nologo -v:q -nodeReuse:false --no-build)
[ "$pipeline" = plain ] || common+=("-p:ContainerBaseImage=$base_image")

sdk_publish() {
  dotnet publish "$project" "${common[@]}" -t:PublishContainer \
    "-p:ContainerArchiveOutputPath=$1" -p:ContainerRepository=helloweb -p:ContainerImageTag=1.0.0
}

case "$pipeline" in
  runcible)
    dotnet publish "$project" "${common[@]}" -p:PublishRuncBundle=true "-p:RuncCacheDirectory=$4" "-p:RuncBundleOutputPath=$5" "${@:6}"
    ;;
  plain)
    dotnet publish "$project" "${common[@]}" "${@:3}"
    ;;
  sdk)
    sdk_publish "$4"
    ;;
  seeds)
    dir="$4"
    mkdir -p "$dir/tmp"
    TMPDIR="$dir/tmp" sdk_publish "$dir/image.tar.gz"
    # The SDK writes an OCI archive when the base image is OCI (as the fixture is), else a docker-archive.
    if tar -tf "$dir/image.tar.gz" | grep -qx 'index.json'; then format=oci-archive; else format=docker-archive; fi
    skopeo copy --quiet "$format:$dir/image.tar.gz" "oci:$dir/layout:app"
    mkdir -p "$dir/tree/opt/containers"
    umoci unpack --image "$dir/layout:app" "$dir/tree/opt/containers/helloweb-1.0.0" >/dev/null
    tar -C "$dir/tree" --numeric-owner -cf - opt | gzip -6 > "$dir/helloweb-1.0.0.tar.gz"
    ;;
  *)
    echo "unknown pipeline $pipeline" >&2
    exit 2
    ;;
esac
