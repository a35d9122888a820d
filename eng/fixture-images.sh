#!/usr/bin/env bash
# Builds the fixture images the tests pull, push and unpack, as OCI image layouts (tag "latest"):
#
#   $RUNCIBLE_FIXTURE_DIR/oci/busybox       small busybox-static image, 3 layers: files + ~400 applet
#                                           symlinks; a hardlink; a whiteout removing a file of layer 2
#   $RUNCIBLE_FIXTURE_DIR/oci/runtime-deps  Debian bookworm minbase + libicu72 libssl3 ca-certificates,
#                                           user/group app 1654, env APP_UID=1654 (no entrypoint)
#   $RUNCIBLE_FIXTURE_DIR/oci/runtime       runtime-deps + the host's .NET shared runtime (host fxr,
#                                           Microsoft.NETCore.App) + /usr/bin/dotnet, env DOTNET_VERSION
#   $RUNCIBLE_FIXTURE_DIR/oci/aspnet        runtime + Microsoft.AspNetCore.App, env ASPNET_VERSION
#   $RUNCIBLE_FIXTURE_DIR/oci/multiarch     an OCI image index: linux/amd64 + linux/arm64 (see below)
#
# RUNCIBLE_FIXTURE_DIR defaults to ${XDG_CACHE_HOME:-$HOME/.cache}/runcible-fixtures.
# The images are built with debootstrap and umoci (tools nobody here wrote), cached across runs and
# rebuilt from nothing when a layout is absent or when this script (or the host's .NET runtime
# version) changed: each layout has a stamp file "<image>.stamp" next to it holding that key.
# Every image is built in a temporary directory on the same file system and renamed into place,
# and its stamp is written after the rename, so an interrupted run never leaves a half image that
# looks valid. Needs root (debootstrap, chroot, file ownership in layers).
#
# Usage: eng/fixture-images.sh [--force]     (--force rebuilds every image)
# Env:   RUNCIBLE_DEBIAN_MIRROR overrides the Debian mirror (default: the one apt uses here).
set -euo pipefail

script_path="$(readlink -f "$0")"
fixture_dir="${RUNCIBLE_FIXTURE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/runcible-fixtures}"
oci_dir="$fixture_dir/oci"
force=0
[ "${1:-}" = "--force" ] && force=1

dotnet_root=/usr/share/dotnet
images=(busybox runtime-deps runtime aspnet multiarch)

log() { printf 'fixture-images: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

# The cache key: this script's content plus the .NET runtime versions copied into the images.
cache_key() {
  {
    cat "$script_path"
    ls -1 "$dotnet_root/shared/Microsoft.NETCore.App" "$dotnet_root/shared/Microsoft.AspNetCore.App" "$dotnet_root/host/fxr" 2>/dev/null || true
  } | sha256sum | cut -d' ' -f1
}
key="$(cache_key)"

is_current() {
  local image="$1"
  [ "$force" -eq 0 ] && [ -f "$oci_dir/$image/index.json" ] && [ -f "$oci_dir/$image.stamp" ] &&
    [ "$(cat "$oci_dir/$image.stamp")" = "$key" ]
}

find_stale() {
  stale=()
  for image in "${images[@]}"; do
    is_current "$image" || stale+=("$image")
  done
}
find_stale
if [ "${#stale[@]}" -eq 0 ]; then
  exit 0
fi

[ "$(id -u)" -eq 0 ] || die "building the fixture images needs root (debootstrap, chroot); run as root or with sudo"
for tool in umoci debootstrap busybox jq sha256sum chroot flock findmnt; do
  command -v "$tool" >/dev/null || die "$tool is missing; run eng/install-deps.sh"
done
[ -x "$dotnet_root/dotnet" ] || die "no .NET installation at $dotnet_root"

# Several test runs may share this cache: one builds, the others wait and then find it current.
mkdir -p "$oci_dir"
exec 9>"$fixture_dir/.lock"
if ! flock -n 9; then
  log "another run is building the fixture images; waiting for it"
  flock 9
fi
find_stale
if [ "${#stale[@]}" -eq 0 ]; then
  exit 0
fi

# debootstrap mounts /proc (and maybe /dev, /sys) in its target: unmount before deleting anything.
unmount_under() {
  findmnt -rn -o TARGET | awk -v w="$1" 'index($0, w "/") == 1' | sort -r | while read -r m; do
    umount -l "$m" 2>/dev/null || true
  done
}

# Leftovers of a run that was killed outright (no trap ran); safe to remove while holding the lock.
for old in "$fixture_dir"/.build.*; do
  [ -d "$old" ] || continue
  unmount_under "$old"
  rm -rf --one-file-system "$old"
done

work="$(mktemp -d "$fixture_dir/.build.XXXXXX")"
cleanup() {
  unmount_under "$work"
  rm -rf --one-file-system "$work"
}
# Stops a process and everything it started (this script's own descendants only).
kill_tree() {
  local child
  for child in $(pgrep -P "$1" 2>/dev/null); do kill_tree "$child"; done
  kill -TERM "$1" 2>/dev/null || true
}
running=""
trap cleanup EXIT
trap '[ -n "$running" ] && kill_tree "$running"; wait 2>/dev/null; exit 130' INT TERM

# Runs a command quietly, in the background so a signal stops it at once; on failure shows its
# output and stops.
quiet() {
  local logfile="$work/last-command.log"
  "$@" >"$logfile" 2>&1 &
  running=$!
  if ! wait "$running"; then
    running=""
    tail -n 60 "$logfile" >&2
    die "command failed: $*"
  fi
  running=""
}

# Appends the content of a directory as one layer. GNU tar writes the archive (names sorted,
# without "./", numeric owners, hardlinks kept); umoci 0.4.7's "insert" is not used because it
# writes archives without the end-of-archive blocks and drops the last file's padding.
add_layer() {
  local image="$1" dir="$2" tarball="$work/layer.tar"
  (cd "$dir" && find . -mindepth 1 -printf '%P\n' | LC_ALL=C sort |
    tar --create --file "$tarball" --no-recursion --numeric-owner --format=gnu --files-from -)
  quiet umoci raw add-layer "${history[@]}" --image "$image" "$tarball"
  rm -f "$tarball"
}

# umoci 0.4.7 writes manifests without "mediaType" (allowed, but unlike every real registry image):
# rewrites the manifest tagged <tag> with mediaType first, and points index.json at the new blob.
add_manifest_media_type() {
  local layout="$1" tag="$2" old new size
  old="$(jq -r --arg t "$tag" '.manifests[] | select(.annotations["org.opencontainers.image.ref.name"] == $t) | .digest' "$layout/index.json")"
  jq -c '{schemaVersion: .schemaVersion, mediaType: "application/vnd.oci.image.manifest.v1+json"} + .' \
    "$layout/blobs/sha256/${old#sha256:}" >"$work/manifest.json"
  new="sha256:$(sha256sum "$work/manifest.json" | cut -d' ' -f1)"
  size="$(stat -c %s "$work/manifest.json")"
  mv "$work/manifest.json" "$layout/blobs/sha256/${new#sha256:}"
  jq -c --arg t "$tag" --arg d "$new" --argjson s "$size" '.manifests |= map(
      if .annotations["org.opencontainers.image.ref.name"] == $t then .digest = $d | .size = $s else . end)' \
    "$layout/index.json" >"$work/index.json"
  mv "$work/index.json" "$layout/index.json"
  quiet umoci gc --layout "$layout"
}

# Moves a finished layout into the cache and writes its stamp (in that order).
publish() {
  local image="$1" layout="$2"
  rm -f "$oci_dir/$image.stamp"
  rm -rf "$oci_dir/$image.old"
  [ -e "$oci_dir/$image" ] && mv "$oci_dir/$image" "$oci_dir/$image.old"
  mv "$layout" "$oci_dir/$image"
  rm -rf "$oci_dir/$image.old"
  printf '%s\n' "$key" >"$oci_dir/$image.stamp.tmp"
  mv "$oci_dir/$image.stamp.tmp" "$oci_dir/$image.stamp"
  log "built $image"
}

needs() {
  local image="$1" s
  for s in "${stale[@]}"; do [ "$s" = "$image" ] && return 0; done
  return 1
}

# Fixed image creation times keep the configs stable between rebuilds of the same script.
created="2024-01-01T00:00:00Z"
base_env=(--config.env "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
history=(--history.created "$created" --history.author "runcible fixture-images.sh")

# ---------------------------------------------------------------------------------------------
# busybox: 3 layers. Layer 1: busybox-static and its applet symlinks, /etc/passwd, /tmp.
# Layer 2: a data file, a hardlink to it, and a file that layer 3 removes. Layer 3: the whiteout.
build_busybox() {
  local layout="$work/busybox" stage="$work/busybox-stage"
  mkdir -p "$stage/l1/bin" "$stage/l1/etc" "$stage/l1/tmp" "$stage/l1/root" "$stage/l1/home" "$stage/l2/usr/share/fixture" "$stage/l2/var/lib"
  cp "$(readlink -f "$(command -v busybox)")" "$stage/l1/bin/busybox"
  chmod 0755 "$stage/l1/bin/busybox"
  local applet
  for applet in $("$stage/l1/bin/busybox" --list); do
    [ "$applet" = busybox ] || ln -s busybox "$stage/l1/bin/$applet"
  done
  printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' >"$stage/l1/etc/passwd"
  printf 'root:x:0:\nnogroup:x:65534:\n' >"$stage/l1/etc/group"
  chmod 1777 "$stage/l1/tmp"
  chmod 0700 "$stage/l1/root"
  printf 'runcible busybox fixture\n' >"$stage/l2/usr/share/fixture/data.txt"
  ln "$stage/l2/usr/share/fixture/data.txt" "$stage/l2/usr/share/fixture/data-hardlink.txt"
  printf 'removed by the next layer\n' >"$stage/l2/var/lib/removed.txt"
  printf 'kept\n' >"$stage/l2/var/lib/kept.txt"
  # Layer 3 deletes /var/lib/removed.txt with an OCI whiteout entry.
  mkdir -p "$stage/l3/var/lib"
  : >"$stage/l3/var/lib/.wh.removed.txt"
  find "$stage" -exec touch -h -d "$created" {} +

  quiet umoci init --layout "$layout"
  quiet umoci new --image "$layout:latest"
  add_layer "$layout:latest" "$stage/l1"
  add_layer "$layout:latest" "$stage/l2"
  add_layer "$layout:latest" "$stage/l3"
  quiet umoci config --image "$layout:latest" --created "$created" --author "runcible" "${history[@]}" \
    "${base_env[@]}" --config.cmd sh --config.workingdir / \
    --config.label "org.opencontainers.image.title=runcible-fixture-busybox" \
    --config.label "org.opencontainers.image.description=busybox-static, three layers with a hardlink and a whiteout"
  add_manifest_media_type "$layout" latest
  publish busybox "$layout"
}

# ---------------------------------------------------------------------------------------------
# runtime-deps: Debian bookworm minbase from the mirror apt uses here, like
# mcr.microsoft.com/dotnet/runtime-deps:*-bookworm-slim (no entrypoint; Cmd ["bash"] from debian).
debian_mirror() {
  if [ -n "${RUNCIBLE_DEBIAN_MIRROR:-}" ]; then
    printf '%s\n' "$RUNCIBLE_DEBIAN_MIRROR"
    return
  fi
  local mirror=""
  # deb822 sources: the URIs of a stanza whose Suites include plain "bookworm".
  if compgen -G "/etc/apt/sources.list.d/*.sources" >/dev/null; then
    mirror="$(awk '
      BEGIN { RS=""; FS="\n" }
      {
        uri=""; ok=0
        for (i = 1; i <= NF; i++) {
          if ($i ~ /^URIs:/) { split($i, u, /[ \t]+/); uri=u[2] }
          if ($i ~ /^Suites:/) { n=split($i, s, /[ \t]+/); for (j = 2; j <= n; j++) if (s[j] == "bookworm") ok=1 }
        }
        if (ok && uri != "") { print uri; exit }
      }' /etc/apt/sources.list.d/*.sources)"
  fi
  if [ -z "$mirror" ] && [ -f /etc/apt/sources.list ]; then
    mirror="$(awk '$1 == "deb" && $3 == "bookworm" { for (i = 2; i <= NF; i++) if ($i ~ /^https?:/) { print $i; exit } }' /etc/apt/sources.list)"
  fi
  printf '%s\n' "${mirror:-http://deb.debian.org/debian}"
}

build_runtime_deps() {
  local layout="$work/runtime-deps" rootfs="$work/runtime-deps-rootfs" mirror
  mirror="$(debian_mirror)"
  log "debootstrap bookworm (minbase) from $mirror: takes a few minutes"
  quiet debootstrap --variant=minbase --include=libicu72,libssl3,ca-certificates \
    bookworm "$rootfs" "$mirror"
  # The app user of the official images: uid/gid 1654, home /home/app.
  quiet chroot "$rootfs" groupadd --gid=1654 app
  quiet chroot "$rootfs" useradd --no-log-init --uid=1654 --gid=1654 --create-home app
  # Keep the image small and free of host-specific state.
  rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/* "$rootfs"/var/cache/debconf/*-old \
    "$rootfs"/var/log/* "$rootfs"/tmp/* "$rootfs"/var/tmp/* "$rootfs"/usr/share/doc/* \
    "$rootfs"/usr/share/man/* "$rootfs"/usr/share/info/* "$rootfs"/debootstrap
  printf 'nameserver 127.0.0.1\n' >"$rootfs/etc/resolv.conf"
  printf 'runtime-deps\n' >"$rootfs/etc/hostname"

  quiet umoci init --layout "$layout"
  quiet umoci new --image "$layout:latest"
  add_layer "$layout:latest" "$rootfs"
  rm -rf --one-file-system "$rootfs"
  quiet umoci config --image "$layout:latest" --created "$created" --author "runcible" "${history[@]}" \
    "${base_env[@]}" --config.env APP_UID=1654 --config.env ASPNETCORE_HTTP_PORTS=8080 \
    --config.env DOTNET_RUNNING_IN_CONTAINER=true --config.cmd bash --config.workingdir / \
    --config.label "org.opencontainers.image.title=runcible-fixture-runtime-deps" \
    --config.label "org.opencontainers.image.base.name=debian:bookworm-slim"
  add_manifest_media_type "$layout" latest
  publish runtime-deps "$layout"
}

# ---------------------------------------------------------------------------------------------
# runtime and aspnet: the host's .NET shared frameworks, one layer each, like the official images.
shared_version() { ls -1 "$dotnet_root/shared/$1" | sort -V | tail -n 1; }

build_runtime() {
  local layout="$work/runtime" stage="$work/runtime-stage" version fxr
  version="$(shared_version Microsoft.NETCore.App)"
  fxr="$(ls -1 "$dotnet_root/host/fxr" | sort -V | tail -n 1)"
  cp -a "$oci_dir/runtime-deps" "$layout"
  mkdir -p "$stage/usr/share/dotnet/host/fxr" "$stage/usr/share/dotnet/shared" "$stage/usr/bin"
  cp -a "$dotnet_root/dotnet" "$stage/usr/share/dotnet/"
  for f in LICENSE.txt ThirdPartyNotices.txt; do
    [ -e "$dotnet_root/$f" ] && cp -a "$dotnet_root/$f" "$stage/usr/share/dotnet/"
  done
  cp -a "$dotnet_root/host/fxr/$fxr" "$stage/usr/share/dotnet/host/fxr/"
  mkdir -p "$stage/usr/share/dotnet/shared/Microsoft.NETCore.App"
  cp -a "$dotnet_root/shared/Microsoft.NETCore.App/$version" "$stage/usr/share/dotnet/shared/Microsoft.NETCore.App/"
  ln -s ../share/dotnet/dotnet "$stage/usr/bin/dotnet"
  chown -R 0:0 "$stage"
  add_layer "$layout:latest" "$stage"
  rm -rf "$stage"
  quiet umoci config --image "$layout:latest" --created "$created" --author "runcible" "${history[@]}" \
    --config.env "DOTNET_VERSION=$version" \
    --config.label "org.opencontainers.image.title=runcible-fixture-runtime"
  add_manifest_media_type "$layout" latest
  publish runtime "$layout"
}

build_aspnet() {
  local layout="$work/aspnet" stage="$work/aspnet-stage" version
  version="$(shared_version Microsoft.AspNetCore.App)"
  cp -a "$oci_dir/runtime" "$layout"
  mkdir -p "$stage/usr/share/dotnet/shared/Microsoft.AspNetCore.App"
  cp -a "$dotnet_root/shared/Microsoft.AspNetCore.App/$version" "$stage/usr/share/dotnet/shared/Microsoft.AspNetCore.App/"
  chown -R 0:0 "$stage"
  add_layer "$layout:latest" "$stage"
  rm -rf "$stage"
  quiet umoci config --image "$layout:latest" --created "$created" --author "runcible" "${history[@]}" \
    --config.env "ASPNET_VERSION=$version" \
    --config.label "org.opencontainers.image.title=runcible-fixture-aspnet"
  add_manifest_media_type "$layout" latest
  publish aspnet "$layout"
}

# ---------------------------------------------------------------------------------------------
# multiarch: an OCI index (tag "latest") with a linux/amd64 and a linux/arm64 manifest.
# Honest note: both images are tiny and built on this amd64 host. The amd64 one carries the real
# busybox-static binary; the arm64 one carries only a text file, NOT an arm64 executable. What the
# tests exercise is the platform metadata (index entries and config architecture/os), which is real.
build_multiarch() {
  local layout="$work/multiarch" stage="$work/multiarch-stage" arch
  quiet umoci init --layout "$layout"
  for arch in amd64 arm64; do
    rm -rf "$stage"
    mkdir -p "$stage/etc"
    printf 'runcible multiarch fixture: linux/%s\n' "$arch" >"$stage/etc/fixture-platform"
    if [ "$arch" = amd64 ]; then
      mkdir -p "$stage/bin"
      cp "$(readlink -f "$(command -v busybox)")" "$stage/bin/busybox"
      ln -s busybox "$stage/bin/sh"
    fi
    find "$stage" -exec touch -h -d "$created" {} +
    quiet umoci new --image "$layout:$arch"
    add_layer "$layout:$arch" "$stage"
    quiet umoci config --image "$layout:$arch" --created "$created" --author "runcible" "${history[@]}" \
      --os linux --architecture "$arch" "${base_env[@]}" --config.cmd sh \
      --config.label "org.opencontainers.image.title=runcible-fixture-multiarch-$arch"
    add_manifest_media_type "$layout" "$arch"
  done
  rm -rf "$stage"

  # umoci tags single manifests; the index that groups them is written here, as a blob, and
  # becomes the only entry of index.json, tagged "latest".
  local index_blob digest size
  index_blob="$work/multiarch-index.json"
  jq -c '{
      schemaVersion: 2,
      mediaType: "application/vnd.oci.image.index.v1+json",
      manifests: [
        .manifests[]
        | . as $m
        | ($m.annotations["org.opencontainers.image.ref.name"]) as $arch
        | {mediaType: $m.mediaType, digest: $m.digest, size: $m.size,
           platform: {architecture: $arch, os: "linux"}}
      ] | sort_by(.platform.architecture)
    }' "$layout/index.json" >"$index_blob"
  digest="$(sha256sum "$index_blob" | cut -d' ' -f1)"
  size="$(stat -c %s "$index_blob")"
  mv "$index_blob" "$layout/blobs/sha256/$digest"
  jq -c --arg d "sha256:$digest" --argjson s "$size" '{
      schemaVersion: 2,
      mediaType: "application/vnd.oci.image.index.v1+json",
      manifests: [{mediaType: "application/vnd.oci.image.index.v1+json", digest: $d, size: $s,
                   annotations: {"org.opencontainers.image.ref.name": "latest"}}]
    }' "$layout/index.json" >"$layout/index.json.new"
  mv "$layout/index.json.new" "$layout/index.json"
  publish multiarch "$layout"
}

log "building: ${stale[*]} (into $oci_dir)"
needs busybox && build_busybox
needs runtime-deps && build_runtime_deps
# A rebuilt base invalidates the images layered on it.
if needs runtime-deps || needs runtime; then build_runtime; build_aspnet
elif needs aspnet; then build_aspnet
fi
needs multiarch && build_multiarch
exit 0
