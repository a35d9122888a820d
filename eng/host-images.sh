#!/usr/bin/env bash
# Builds the "host" root filesystems the host runtime tests boot under runc, as plain directories:
#
#   $RUNCIBLE_FIXTURE_DIR/hosts/systemd   Debian bookworm minbase + systemd systemd-sysv runc dbus
#                                         libpam-systemd strace passt (systemd as PID 1 in a runc container,
#                                         logind for lingering users' managers; nested runc inside; pasta
#                                         for rootless private networks)
#   $RUNCIBLE_FIXTURE_DIR/hosts/openrc    Debian bookworm minbase + openrc sysvinit-core runc strace
#                                         logrotate (/sbin/openrc-init as PID 1; the shim installs a
#                                         logrotate snippet for the service's log)
#
# Both also get what a private-network bundle needs on its host (the shim's net_check_host): the CNI
# plugins (containernetworking-plugins, in /usr/lib/cni), iptables and iproute2 (ip, ss).
#
# strace is the crash tests' fault injector (tests/Runcible.Tests/Host/ShimFaults.cs): it holds the
# shim at its N-th rename while the test cuts the host's power.
#
# RUNCIBLE_FIXTURE_DIR defaults to ${XDG_CACHE_HOME:-$HOME/.cache}/runcible-fixtures.
# Same caching pattern as eng/fixture-images.sh: each rootfs has a stamp "<host>.stamp" holding the
# hash of this script; a changed script or a missing rootfs rebuilds from nothing, in a temporary
# directory on the same file system renamed into place, stamp written last. Tests never write to
# these directories: they boot them through an overlay with a throw-away upper directory.
# Needs root (debootstrap, chroot).
#
# Usage: eng/host-images.sh [--force]
# Env:   RUNCIBLE_DEBIAN_MIRROR overrides the Debian mirror (default: the one apt uses here).
set -euo pipefail

script_path="$(readlink -f "$0")"
fixture_dir="${RUNCIBLE_FIXTURE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/runcible-fixtures}"
hosts_dir="$fixture_dir/hosts"
force=0
[ "${1:-}" = "--force" ] && force=1
hosts=(systemd openrc)

log() { printf 'host-images: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

key="$(sha256sum <"$script_path" | cut -d' ' -f1)"

is_current() {
  local host="$1"
  [ "$force" -eq 0 ] && [ -x "$hosts_dir/$host/usr/sbin/runc" ] && [ -f "$hosts_dir/$host.stamp" ] &&
    [ "$(cat "$hosts_dir/$host.stamp")" = "$key" ]
}

find_stale() {
  stale=()
  for host in "${hosts[@]}"; do
    is_current "$host" || stale+=("$host")
  done
}
find_stale
[ "${#stale[@]}" -eq 0 ] && exit 0

[ "$(id -u)" -eq 0 ] || die "building the host images needs root (debootstrap, chroot)"
for tool in debootstrap chroot flock findmnt sha256sum; do
  command -v "$tool" >/dev/null || die "$tool is missing; run eng/install-deps.sh"
done

mkdir -p "$hosts_dir"
exec 9>"$fixture_dir/.hosts.lock"
if ! flock -n 9; then
  log "another run is building the host images; waiting for it"
  flock 9
fi
find_stale
[ "${#stale[@]}" -eq 0 ] && exit 0

unmount_under() {
  findmnt -rn -o TARGET | awk -v w="$1" 'index($0, w "/") == 1' | sort -r | while read -r m; do
    umount -l "$m" 2>/dev/null || true
  done
}

for old in "$hosts_dir"/.build.*; do
  [ -d "$old" ] || continue
  unmount_under "$old"
  rm -rf --one-file-system "$old"
done

work="$(mktemp -d "$hosts_dir/.build.XXXXXX")"
cleanup() {
  unmount_under "$work"
  rm -rf --one-file-system "$work"
}
kill_tree() {
  local child
  for child in $(pgrep -P "$1" 2>/dev/null); do kill_tree "$child"; done
  kill -TERM "$1" 2>/dev/null || true
}
running=""
trap cleanup EXIT
trap '[ -n "$running" ] && kill_tree "$running"; wait 2>/dev/null; exit 130' INT TERM

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

debian_mirror() {
  if [ -n "${RUNCIBLE_DEBIAN_MIRROR:-}" ]; then
    printf '%s\n' "$RUNCIBLE_DEBIAN_MIRROR"
    return
  fi
  local mirror=""
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

# apt inside the chroot: /proc and /dev for maintainer scripts, the host's resolv.conf for the mirror.
chroot_apt() {
  local rootfs="$1"
  shift
  mount -t proc proc "$rootfs/proc"
  mount --rbind /dev "$rootfs/dev"
  cp /etc/resolv.conf "$rootfs/etc/resolv.conf"
  # No service may start inside the chroot.
  printf '#!/bin/sh\nexit 101\n' >"$rootfs/usr/sbin/policy-rc.d"
  chmod 0755 "$rootfs/usr/sbin/policy-rc.d"
  quiet chroot "$rootfs" env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  quiet chroot "$rootfs" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@"
  rm -f "$rootfs/usr/sbin/policy-rc.d"
  umount -l "$rootfs/dev"
  umount "$rootfs/proc"
}

strip_rootfs() {
  local rootfs="$1"
  rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/*.bin "$rootfs"/var/cache/apt/archives/*.deb \
    "$rootfs"/tmp/* "$rootfs"/var/tmp/* "$rootfs"/usr/share/doc/* "$rootfs"/usr/share/man/* "$rootfs"/usr/share/info/*
  : >"$rootfs/etc/machine-id"
  printf 'nameserver 127.0.0.1\n' >"$rootfs/etc/resolv.conf"
  # Every real host has one; bundles bind it read-only into their containers.
  printf '127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n' >"$rootfs/etc/hosts"
}

publish() {
  local host="$1" rootfs="$2"
  rm -f "$hosts_dir/$host.stamp"
  if [ -e "$hosts_dir/$host" ]; then
    mv "$hosts_dir/$host" "$work/$host.old"
  fi
  mv "$rootfs" "$hosts_dir/$host"
  printf '%s\n' "$key" >"$hosts_dir/$host.stamp.tmp"
  mv "$hosts_dir/$host.stamp.tmp" "$hosts_dir/$host.stamp"
  log "built $host"
}

needs() {
  local host="$1" s
  for s in "${stale[@]}"; do [ "$s" = "$host" ] && return 0; done
  return 1
}

mirror="$(debian_mirror)"
log "debootstrap bookworm (minbase) from $mirror for: ${stale[*]}"
base="$work/base"
quiet debootstrap --variant=minbase bookworm "$base" "$mirror"
rm -rf "$base/debootstrap"

if needs systemd; then
  cp -a "$base" "$work/systemd"
  # libpam-systemd and systemd-logind: lingering users get a user manager (systemctl --user) with its
  # XDG_RUNTIME_DIR, as on any real host; rootless bundles run as such user services.
  # passt: pasta, for rootless bundles with RuncNetwork=private.
  chroot_apt "$work/systemd" systemd systemd-sysv runc dbus libpam-systemd strace \
    containernetworking-plugins iptables iproute2 passt
  # A container has no consoles or udev to wait for; the test reads the journal, not a TTY.
  for unit in getty.target systemd-udevd.service systemd-udev-trigger.service systemd-networkd-wait-online.service \
    console-getty.service; do
    ln -sf /dev/null "$work/systemd/etc/systemd/system/$unit"
  done
  # network-online.target has no provider here (the host's network is shared): make it reachable.
  mkdir -p "$work/systemd/etc/systemd/system/network-online.target.wants"
  printf 'systemd\n' >"$work/systemd/etc/hostname"
  strip_rootfs "$work/systemd"
  publish systemd "$work/systemd"
fi

if needs openrc; then
  cp -a "$base" "$work/openrc"
  chroot_apt "$work/openrc" openrc sysvinit-core runc strace logrotate \
    containernetworking-plugins iptables iproute2
  # No gettys in a container; OpenRC must know it runs in one and must not touch the host's network.
  sed -i 's/^\([0-9]:.*getty\)/#\1/' "$work/openrc/etc/inittab" 2>/dev/null || true
  sed -i 's/^#\?rc_sys=.*/rc_sys="docker"/' "$work/openrc/etc/rc.conf"
  sed -i 's/^#\?rc_env_allow=.*/rc_env_allow="*"/' "$work/openrc/etc/rc.conf"
  printf 'openrc\n' >"$work/openrc/etc/hostname"
  # The container shares the machine's network, already up: a service that only provides "net" (as
  # network-online.target has no provider in the systemd host).
  cat >"$work/openrc/etc/init.d/host-network" <<'SERVICE'
#!/sbin/openrc-run
description="the network of the machine this container shares"
depend() {
	provide net
}
start() {
	return 0
}
SERVICE
  chmod 0755 "$work/openrc/etc/init.d/host-network"
  mkdir -p "$work/openrc/etc/runlevels/default"
  ln -s /etc/init.d/host-network "$work/openrc/etc/runlevels/default/host-network"
  strip_rootfs "$work/openrc"
  publish openrc "$work/openrc"
fi
exit 0
