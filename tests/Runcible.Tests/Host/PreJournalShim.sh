#!/bin/sh
# runcible: the host runtime of one Runcible bundle (opt/containers/<name>-<version>/runcible).
# Needs runc, coreutils, mount and the host's init system (systemd, or OpenRC for rootful bundles).
# It reads runcible.json (written by Runcible: one property per line) and config.json beside it.
# Error messages carry RUNCIBLE50xx codes, documented in Runcible's docs/errors.md.
set -eu

usage() {
  cat <<'USAGE'
usage: runcible <command> [args]
  install               check the host, create data/ volumes, install and enable the service
  run                   run the container in the foreground (what the service calls)
  start|stop|restart    through the init system
  status                service and container state
  logs [args]           the service's output (journalctl or the OpenRC log file)
  exec <cmd> [args]     run a command in the running container
  upgrade               replace the installed older version of this bundle, moving its data
  rollback              return to the version installed before the last upgrade, with the data
  uninstall [--purge]   remove the service and the container state; keep data/ unless --purge
  cleanup               remove a stale container and the writable-root layer (the services call it)
USAGE
}

say() { printf 'runcible: %s\n' "$*" >&2; }
warn() { printf 'runcible: warning: %s\n' "$*" >&2; }
die() {
  code="$1"
  shift
  printf 'runcible: error %s: %s\n' "$code" "$*" >&2
  exit 1
}

self="$(readlink -f "$0")"
bundle="$(dirname "$self")"
info="$bundle/runcible.json"

# A top-level scalar of runcible.json ("key": value on a line of its own, two-space indent).
json_value() {
  sed -n "s/^  \"$1\": \"\{0,1\}\([^\",]*\)\"\{0,1\},\{0,1\}\$/\1/p" "$info" | head -n 1
}

# "name uid gid" for every volume of runcible.json.
json_volumes() {
  awk '
    /^  "volumes": \[/ { inside = 1; next }
    inside && /^  \]/ { inside = 0 }
    inside && /"name":/ { v = $0; sub(/.*"name": "/, "", v); sub(/".*/, "", v); name = v }
    inside && /"uid":/ { v = $0; gsub(/[^0-9]/, "", v); uid = v }
    inside && /"gid":/ { v = $0; gsub(/[^0-9]/, "", v); printf "%s %s %s\n", name, uid, v }
  ' "$info"
}

# A property of runcible.json's writableRootfs object, with {runtimeDir} substituted.
json_writable() {
  awk -v key="$1" -v dir="$runtime_dir" '
    /^  "writableRootfs": \{/ { inside = 1; next }
    inside && /^  \}/ { inside = 0 }
    inside && index($0, "\"" key "\":") { v = $0; sub(/^[^:]*: "/, "", v); sub(/",?$/, "", v); gsub(/\{runtimeDir\}/, dir, v); print v }
  ' "$info"
}

check_bundle() {
  [ -f "$bundle/config.json" ] || die RUNCIBLE5012 "the bundle $bundle is damaged: config.json is missing. Extract the bundle tarball again."
  [ -f "$info" ] || die RUNCIBLE5012 "the bundle $bundle is damaged: runcible.json is missing. Extract the bundle tarball again."
  if [ ! -d "$bundle/rootfs" ] || [ -z "$(ls -A "$bundle/rootfs" 2>/dev/null)" ]; then
    die RUNCIBLE5012 "the bundle $bundle is damaged: rootfs/ is missing or empty. Extract the bundle tarball again."
  fi
  name="$(json_value name)"
  version="$(json_value version)"
  case "$name" in
    '' | [!A-Za-z0-9]* | *[!A-Za-z0-9._-]*) die RUNCIBLE5012 "the bundle $bundle is damaged: runcible.json has no valid name. Extract the bundle tarball again." ;;
  esac
  [ -n "$version" ] || die RUNCIBLE5012 "the bundle $bundle is damaged: runcible.json has no version. Extract the bundle tarball again."
  # The service files carry the bundle path unquoted.
  case "$bundle" in
    *[!A-Za-z0-9._/+@-]*) die RUNCIBLE5020 "the bundle directory '$bundle' has characters a service file cannot carry; move it to a path of letters, digits and . _ - + @ (such as /opt/containers/$name-$version)." ;;
  esac
  rootless="$(json_value rootless)"
  uid="$(json_value uid)"
  gid="$(json_value gid)"
  # Overrides for tests and demos: another runc state directory, another container id.
  id="${RUNCIBLE_CONTAINER_ID:-$name}"
  case "$id" in
    '' | [!A-Za-z0-9]* | *[!A-Za-z0-9._-]*) die RUNCIBLE5022 "RUNCIBLE_CONTAINER_ID '$id' is not a container id; use letters, digits and . _ -." ;;
  esac
  if [ "$rootless" = true ]; then
    runtime_dir="${XDG_RUNTIME_DIR:-/run/user/$(id -u)}"
    runc_root="${RUNCIBLE_RUNC_ROOT:-$runtime_dir/runc}"
  else
    runtime_dir=/run
    runc_root="${RUNCIBLE_RUNC_ROOT:-/run/runc}"
  fi
}

check_identity() {
  if [ "$rootless" = true ]; then
    [ "$(id -u)" -ne 0 ] || die RUNCIBLE5021 "$name is a rootless bundle: install and run it as the unprivileged user who owns it, not as root."
  else
    [ "$(id -u)" -eq 0 ] || die RUNCIBLE5010 "$name is a rootful bundle: run 'runcible $command' as root (sudo $self $command)."
  fi
}

# runc present; versions before 1.1.12 lack the fix for CVE-2024-21626 (a leaked directory fd let a
# container reach the host's file system). Distributions backport it, so this is only a warning.
check_runc() {
  command -v runc >/dev/null 2>&1 || die RUNCIBLE5011 "runc is not installed or not on PATH; install it (apt-get install runc, dnf install runc, apk add runc)."
  [ "${1:-}" = quiet ] && return 0
  runc_version="$(runc --version 2>/dev/null | sed -n 's/^runc version \([0-9][0-9.]*\).*/\1/p' | head -n 1)"
  if [ -n "$runc_version" ] && [ "$(printf '%s\n%s\n' "$runc_version" 1.1.12 | sort -V | head -n 1)" != 1.1.12 ]; then
    warn "runc $runc_version is older than 1.1.12, which fixes CVE-2024-21626 (container escape through a leaked file descriptor); make sure your distribution backported the fix or upgrade runc."
  fi
}

# The ports the image exposes (config.json annotation), checked against listening TCP sockets.
check_ports() {
  ports="$(sed -n 's/.*"org.opencontainers.image.exposedPorts": "\([^"]*\)".*/\1/p' "$bundle/config.json" | tr ',' '\n' | sed -n 's|^\([0-9][0-9]*\)/tcp$|\1|p')"
  for port in $ports; do
    hex="$(printf '%04X' "$port")"
    for table in /proc/net/tcp /proc/net/tcp6; do
      [ -r "$table" ] || continue
      if awk -v p=":$hex" '$4 == "0A" && substr($2, length($2) - 4) == p { found = 1 } END { exit !found }' "$table"; then
        die RUNCIBLE5013 "port $port/tcp, which $name listens on, is already in use on this host; stop what uses it (ss -ltnp 'sport = :$port') and start $name again."
      fi
    done
  done
}

is_mounted() {
  awk -v m="$1" '$5 == m { found = 1 } END { exit !found }' /proc/self/mountinfo
}

runc_cmd() {
  runc --root "$runc_root" "$@"
}

container_status() {
  runc_cmd state "$id" 2>/dev/null | sed -n 's/^  "status": "\([a-z]*\)",*$/\1/p'
}

# Removes a container of this name left behind (killed runc, host crash) and the writable layer.
cleanup() {
  if runc_cmd state "$id" >/dev/null 2>&1; then
    runc_cmd kill "$id" KILL >/dev/null 2>&1 || true
    runc_cmd delete --force "$id" >/dev/null 2>&1 || runc_cmd delete --force "$id"
  fi
  if grep -q '^  "writableRootfs": {' "$info"; then
    merged="$bundle/$(json_writable merged)"
    tmpfs_dir="$(json_writable tmpfs)"
    while is_mounted "$merged"; do umount "$merged"; done
    while is_mounted "$tmpfs_dir"; do umount "$tmpfs_dir"; done
    [ ! -d "$tmpfs_dir" ] || rmdir "$tmpfs_dir" 2>/dev/null || true
  fi
}

# rootless: container root maps to the invoking user; the generator cannot know that user.
rewrite_rootless_ids() {
  [ "$rootless" = true ] || return 0
  want_uid="$(id -u)"
  want_gid="$(id -g)"
  current="$(grep -c "\"hostID\": $want_uid,\{0,1\}\$" "$bundle/config.json" || true)"
  if [ "$want_uid" = "$want_gid" ] && [ "$current" = 2 ]; then
    return 0
  fi
  awk -v u="$want_uid" -v g="$want_gid" '
    /"hostID": [0-9]+/ { n++; sub(/"hostID": [0-9]+/, "\"hostID\": " (n == 1 ? u : g)) }
    { print }
  ' "$bundle/config.json" >"$bundle/config.json.tmp"
  mv "$bundle/config.json.tmp" "$bundle/config.json"
}

# RLIMIT_NOFILE above the hard limit of this process fails "runc run" unless it holds
# CAP_SYS_RESOURCE (bit 24 of CapEff: the lowest bit of the seventh hex digit from the right).
clamp_open_files() {
  hard="$(awk '/^Max open files/ { print $5 }' /proc/self/limits)"
  case "$hard" in '' | unlimited) return 0 ;; esac
  caps="$(sed -n 's/^CapEff:[[:space:]]*//p' /proc/self/status)"
  if [ -n "$caps" ]; then
    nibble="$(printf '%s\n' "$caps" | awk '{ print substr($0, length($0) - 6, 1) }')"
    case "$nibble" in [13579bdfBDF]) return 0 ;; esac
  fi
  over="$(awk -v h="$hard" '
    /"type": "RLIMIT_NOFILE"/ { inside = 1; next }
    inside && /}/ { inside = 0 }
    inside && /"(hard|soft)": [0-9]+/ { v = $0; gsub(/[^0-9]/, "", v); if (v + 0 > h + 0) print v }
  ' "$bundle/config.json" | head -n 1)"
  [ -n "$over" ] || return 0
  warn "RLIMIT_NOFILE $over in config.json exceeds this host's hard limit $hard and runc cannot raise it without CAP_SYS_RESOURCE; lowering it to $hard."
  awk -v h="$hard" '
    /"type": "RLIMIT_NOFILE"/ { inside = 1; print; next }
    inside && /}/ { inside = 0 }
    inside && /"(hard|soft)": [0-9]+/ { v = $0; gsub(/[^0-9]/, "", v); if (v + 0 > h + 0) sub(/[0-9]+/, h) }
    { print }
  ' "$bundle/config.json" >"$bundle/config.json.tmp"
  mv "$bundle/config.json.tmp" "$bundle/config.json"
}

# data/<volume> and logs/ exist and belong to the container user (rootful: chown; rootless: the user's).
prepare_directories() {
  mkdir -p "$bundle/data" "$bundle/logs" "$bundle/config"
  json_volumes | while read -r vol vuid vgid; do
    case "$vol" in
      '' | [!A-Za-z0-9]* | *[!A-Za-z0-9._-]*) die RUNCIBLE5012 "the bundle $bundle is damaged: runcible.json has an invalid volume name '$vol'." ;;
    esac
    if [ ! -d "$bundle/data/$vol" ]; then
      mkdir -p "$bundle/data/$vol"
      [ "$rootless" = true ] || chown "$vuid:$vgid" "$bundle/data/$vol"
    fi
  done
  if [ "$rootless" != true ] && [ -n "$uid" ]; then
    chown "$uid:$gid" "$bundle/logs"
  fi
}

mount_writable_root() {
  grep -q '^  "writableRootfs": {' "$info" || return 0
  tmpfs_dir="$(json_writable tmpfs)"
  upper="$(json_writable upper)"
  work="$(json_writable work)"
  lower="$bundle/$(json_writable lower)"
  merged="$bundle/$(json_writable merged)"
  mkdir -p "$tmpfs_dir"
  mount -t tmpfs -o mode=700 tmpfs "$tmpfs_dir"
  mkdir "$upper" "$work"
  mount -t overlay overlay -o "lowerdir=$lower,upperdir=$upper,workdir=$work" "$merged"
}

# ---- the init system --------------------------------------------------------------------------
detect_init() {
  if [ "$rootless" = true ]; then
    if ! command -v systemctl >/dev/null 2>&1 || ! systemctl --user show-environment >/dev/null 2>&1; then
      die RUNCIBLE5014 "a rootless bundle needs a systemd user manager (systemctl --user); log in as this user with systemd or run 'loginctl enable-linger $(id -un)' as root."
    fi
    init=systemd
    unit_dir="${XDG_CONFIG_HOME:-$HOME/.config}/systemd/user"
    service_file="$unit_dir/$name.service"
  elif [ -d /run/systemd/system ]; then
    init=systemd
    unit_dir=/etc/systemd/system
    service_file="$unit_dir/$name.service"
  elif command -v openrc-run >/dev/null 2>&1 || [ -x /sbin/openrc-run ]; then
    init=openrc
    service_file="/etc/init.d/$name"
  else
    die RUNCIBLE5014 "no supported init system found (systemd or OpenRC); run the container in the foreground with '$self run'."
  fi
}

systemctl_cmd() {
  if [ "$rootless" = true ]; then systemctl --user "$@"; else systemctl "$@"; fi
}

# The bundle a service file runs (its "# runcible-bundle:" line), empty when not installed.
installed_bundle() {
  [ -f "$service_file" ] || return 0
  sed -n 's/^# runcible-bundle: //p' "$service_file" | head -n 1
}

# Installs the service file of bundle $1 (its own generated file, pointed at where it lives).
write_service() {
  target="$1"
  tname="$(basename "$target")"
  tcanonical="/opt/containers/$tname"
  if [ "$init" = systemd ]; then
    mkdir -p "$unit_dir"
    sed "s|$tcanonical|$target|g" "$target/$name.service" >"$service_file.tmp"
    mv "$service_file.tmp" "$service_file"
    systemctl_cmd daemon-reload
    systemctl_cmd enable "$name.service" >/dev/null 2>&1 || systemctl_cmd enable "$name.service"
  else
    sed "s|$tcanonical|$target|g" "$target/$name.openrc" >"$service_file.tmp"
    chmod 0755 "$service_file.tmp"
    mv "$service_file.tmp" "$service_file"
    rc-update add "$name" default >/dev/null
  fi
}

remove_service() {
  if [ "$init" = systemd ]; then
    systemctl_cmd disable "$name.service" >/dev/null 2>&1 || true
    rm -f "$service_file"
    systemctl_cmd daemon-reload
    systemctl_cmd reset-failed "$name.service" >/dev/null 2>&1 || true
  else
    rc-update del "$name" default >/dev/null 2>&1 || true
    rm -f "$service_file"
  fi
}

service_start() {
  if [ "$init" = systemd ]; then systemctl_cmd start "$name.service"; else rc-service "$name" start; fi
}

service_stop() {
  if [ "$init" = systemd ]; then
    systemctl_cmd stop "$name.service"
  elif rc-service "$name" status >/dev/null 2>&1; then
    rc-service "$name" stop
  fi
}

# Started and still running after a settling time: the service is active and the container runs.
service_healthy() {
  settle="${RUNCIBLE_SETTLE_SECONDS:-5}"
  sleep "$settle"
  if [ "$init" = systemd ]; then
    [ "$(systemctl_cmd is-active "$name.service" 2>/dev/null || true)" = active ] || return 1
  else
    rc-service "$name" status >/dev/null 2>&1 || return 1
  fi
  [ "$(container_status)" = running ]
}

require_installed_here() {
  current="$(installed_bundle)"
  [ -n "$current" ] || die RUNCIBLE5019 "$name is not installed; run '$self install' first."
}

# ---- commands -----------------------------------------------------------------------------------
cmd_install() {
  check_identity
  check_runc
  detect_init
  current="$(installed_bundle)"
  if [ -n "$current" ] && [ "$current" != "$bundle" ]; then
    die RUNCIBLE5015 "another bundle of $name is installed ($current); use '$self upgrade' to replace it."
  fi
  rewrite_rootless_ids
  clamp_open_files
  prepare_directories
  write_service "$bundle"
  say "installed $name $version ($init service $service_file); start it with '$self start'."
  if [ "$rootless" = true ]; then
    say "to start it at boot without a login, run 'loginctl enable-linger $(id -un)' as root."
  fi
}

cmd_run() {
  check_identity
  check_runc quiet
  rewrite_rootless_ids
  clamp_open_files
  cleanup
  check_ports
  prepare_directories
  mount_writable_root
  cd "$bundle"
  exec runc --root "$runc_root" run --bundle "$bundle" "$id"
}

cmd_cleanup() {
  check_identity
  check_runc quiet
  cleanup
}

cmd_status() {
  detect_init
  if [ "$init" = systemd ]; then
    systemctl_cmd status --no-pager "$name.service" || true
  else
    rc-service "$name" status || true
  fi
  state="$(container_status)"
  printf 'container %s: %s\n' "$id" "${state:-absent}"
  [ "$state" = running ]
}

cmd_logs() {
  detect_init
  if [ "$init" = systemd ]; then
    if [ "$rootless" = true ]; then
      exec journalctl --user-unit "$name.service" --no-pager "$@"
    fi
    exec journalctl --unit "$name.service" --no-pager "$@"
  fi
  exec tail -n 200 "$@" "/var/log/runcible/$name.log"
}

cmd_exec() {
  [ "$#" -gt 0 ] || die RUNCIBLE5022 "exec needs a command: '$self exec <cmd> [args]'."
  check_identity
  check_runc quiet
  [ "$(container_status)" = running ] || die RUNCIBLE5023 "$name is not running; start it with '$self start'."
  if [ -t 0 ] && [ -t 1 ]; then
    exec runc --root "$runc_root" exec --tty "$id" "$@"
  fi
  exec runc --root "$runc_root" exec "$id" "$@"
}

# Moves data/ of bundle $1 to bundle $2 (same file system: one rename); the target's own empty
# volume directories (created by an earlier install) give way.
move_data() {
  from="$1"
  to="$2"
  [ -d "$from/data" ] || return 0
  if [ -d "$to/data" ]; then
    find "$to/data" -mindepth 1 -depth -type d -empty -delete
    rmdir "$to/data" 2>/dev/null || die RUNCIBLE5016 "$to/data already holds files; move them away before moving the data of $from there."
  fi
  mv "$from/data" "$to/data"
}

cmd_upgrade() {
  check_identity
  check_runc
  detect_init
  current="$(installed_bundle)"
  [ -n "$current" ] || die RUNCIBLE5016 "no installed version of $name to upgrade from; use '$self install'."
  if [ "$current" = "$bundle" ]; then
    say "$name $version is already the installed version."
    return 0
  fi
  [ -d "$current" ] || die RUNCIBLE5016 "the installed bundle $current of $name is gone; uninstall it or install this one with '$self install' after removing $service_file."
  old_version="$(sed -n 's/^  "version": "\(.*\)",$/\1/p' "$current/runcible.json")"
  [ "$(stat -c %d "$current")" = "$(stat -c %d "$bundle")" ] ||
    die RUNCIBLE5016 "$current and $bundle are on different file systems; extract the new bundle next to the old one so data moves by rename."
  say "upgrading $name $old_version -> $version"
  service_stop
  "$current/runcible" cleanup
  move_data "$current" "$bundle"
  rewrite_rootless_ids
  clamp_open_files
  prepare_directories
  printf '%s\n' "$current" >"$bundle/.runcible-previous"
  write_service "$bundle"
  if service_start && service_healthy; then
    say "upgraded $name to $version; '$self rollback' returns to $old_version."
    return 0
  fi
  warn "$name $version did not start; rolling back to $old_version."
  service_stop || true
  cleanup
  move_data "$bundle" "$current"
  rm -f "$bundle/.runcible-previous"
  write_service "$current"
  service_start || true
  die RUNCIBLE5017 "$name $version failed to start and was rolled back to $old_version with its data; see '$self logs'."
}

cmd_rollback() {
  check_identity
  check_runc quiet
  detect_init
  current="$(installed_bundle)"
  [ -n "$current" ] || die RUNCIBLE5019 "$name is not installed; nothing to roll back."
  [ -f "$current/.runcible-previous" ] || die RUNCIBLE5018 "no previous version of $name is recorded in $current; rollback returns to the version an upgrade replaced."
  previous="$(cat "$current/.runcible-previous")"
  if [ ! -x "$previous/runcible" ] || [ ! -f "$previous/config.json" ]; then
    die RUNCIBLE5018 "the previous version of $name ($previous) is gone; nothing to roll back to."
  fi
  say "rolling back $name from $current to $previous"
  service_stop
  "$current/runcible" cleanup
  move_data "$current" "$previous"
  rm -f "$current/.runcible-previous"
  write_service "$previous"
  service_start
  say "rolled back $name to $previous."
}

cmd_uninstall() {
  purge=false
  case "${1:-}" in
    --purge) purge=true ;;
    '') ;;
    *) die RUNCIBLE5022 "unknown option '$1' for uninstall; use 'uninstall' or 'uninstall --purge'." ;;
  esac
  check_identity
  check_runc quiet
  detect_init
  current="$(installed_bundle)"
  if [ "$current" = "$bundle" ]; then
    service_stop || true
    remove_service
  fi
  cleanup
  if [ "$purge" = true ]; then
    cd /
    rm -rf --one-file-system "$bundle"
    say "uninstalled $name $version and removed $bundle with its data."
  else
    for entry in "$bundle"/* "$bundle"/.[!.]*; do
      [ -e "$entry" ] || [ -L "$entry" ] || continue
      [ "$entry" = "$bundle/data" ] && continue
      rm -rf --one-file-system "$entry"
    done
    say "uninstalled $name $version; its data stays in $bundle/data (remove it with 'rm -rf $bundle')."
  fi
}

command="${1:-}"
[ "$#" -gt 0 ] && shift
case "$command" in
  -h | --help | help) usage; exit 0 ;;
  '') usage >&2; exit 2 ;;
esac
check_bundle
case "$command" in
  install) cmd_install ;;
  run) cmd_run ;;
  cleanup) cmd_cleanup ;;
  start) check_identity; detect_init; require_installed_here; service_start ;;
  stop) check_identity; detect_init; require_installed_here; service_stop ;;
  restart)
    check_identity
    detect_init
    require_installed_here
    if [ "$init" = systemd ]; then systemctl_cmd restart "$name.service"; else rc-service "$name" restart; fi
    ;;
  status) cmd_status ;;
  logs) cmd_logs "$@" ;;
  exec) cmd_exec "$@" ;;
  upgrade) cmd_upgrade ;;
  rollback) cmd_rollback ;;
  uninstall) cmd_uninstall "$@" ;;
  *) usage >&2; die RUNCIBLE5022 "unknown command '$command'." ;;
esac
