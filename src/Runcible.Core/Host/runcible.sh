#!/bin/sh
# runcible: the host runtime of one Runcible bundle (opt/containers/<name>-<version>/runcible).
# Needs runc, coreutils, util-linux (flock, mount) and the host's init system (systemd, or OpenRC for
# rootful bundles). It reads runcible.json (written by Runcible: one property per line) and config.json
# beside it; what it knows about the installed name lives in /var/lib/runcible/<name>/ (rootless:
# $HOME/.local/state/runcible/<name>/). Error messages carry RUNCIBLE50xx codes (Runcible's docs/errors.md);
# the state, lock and transaction design is in docs/host-runtime.md.
# runcible-journal: 1 (this shim's run knows the journal and the state record; upgrade replaces shims without this line)
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
  health                probe the health check once now (exit 0 when healthy)
  upgrade               replace the installed older version of this bundle, moving its data
  rollback              return to the version installed before the last upgrade, with the data
  uninstall [--purge]   remove the service and the container state; keep data/ and logs/ unless --purge
  cleanup               remove a stale container and the writable-root layer (the services call it)
  config set KEY=VALUE  set an environment variable of the app (applies at the next restart)
  config unset KEY      remove one
  config show           the operator's environment and limits
  secret set NAME [--file PATH]   store a secret (value from stdin or PATH) for /run/secrets/NAME
  secret rm NAME        remove one
  secret ls             the names of the stored secrets
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

# A scalar of a top-level object of runcible.json ("$1": { "$2": value }, four spaces in), with {runtimeDir}
# substituted.
json_object_value() {
  awk -v object="$1" -v key="$2" -v dir="${runtime_dir:-}" '
    index($0, "  \"" object "\": {") == 1 { inside = 1; next }
    inside && /^  \}/ { inside = 0 }
    inside && index($0, "    \"" key "\":") == 1 { v = $0; sub(/^[^:]*: "?/, "", v); sub(/"?,?$/, "", v); gsub(/\{runtimeDir\}/, dir, v); print v }
  ' "$info"
}

json_writable() {
  json_object_value writableRootfs "$1"
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
  case "$runtime_dir" in
    /*) ;;
    *) die RUNCIBLE5022 "XDG_RUNTIME_DIR '$runtime_dir' is not an absolute path." ;;
  esac
  case "$runtime_dir" in
    *[!A-Za-z0-9._/+@-]*) die RUNCIBLE5020 "the runtime directory '$runtime_dir' has characters config.json cannot carry unescaped; use a path of letters, digits and . _ - + @." ;;
  esac
  # The runtime bundle: where the effective config.json of THIS bundle is rendered and runc runs from.
  # ".bundles" cannot be a bundle name (names start with a letter or digit), so it never meets the
  # writable-root tmpfs at {runtimeDir}/runcible/<name>; the checksum of the path tells versions apart.
  rt_bundle="$runtime_dir/runcible/.bundles/$name-$(printf '%s' "$bundle" | cksum | cut -d ' ' -f 1)"
  if [ "$rootless" = true ]; then
    # Not $XDG_STATE_HOME: the operator's shell sets it and the systemd user manager does not, and both must
    # find the same lock, journal and record.
    case "${HOME:-}" in
      /*) ;;
      *) die RUNCIBLE5022 "HOME '${HOME:-}' is not an absolute path; the state of a rootless bundle lives in \$HOME/.local/state/runcible." ;;
    esac
    state_dir="$HOME/.local/state/runcible/$name"
  else
    state_dir="/var/lib/runcible/$name"
  fi
  # The operator's settings (docs/operations.md): outside every bundle, kept by upgrade, rollback and uninstall.
  if [ "$rootless" = true ]; then
    settings_dir="${XDG_CONFIG_HOME:-$HOME/.config}/runcible/$name"
  else
    settings_dir="/etc/runcible/$name"
  fi
  state_file="$state_dir/state"
  journal_file="$state_dir/journal"
  lock_file="$state_dir/lock"
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
  [ "$(net_mode)" = host ] || return 0
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

# The bundle directory runc recorded for the container of this id, empty when there is none.
container_bundle() {
  runc_cmd state "$id" 2>/dev/null | sed -n 's/^  "bundle": "\(.*\)",*$/\1/p' | head -n 1
}

# The bundle a runtime bundle directory was rendered for (its config.json's root.path less /rootfs).
bundle_of_runtime() {
  case "$1" in
    '') echo "an unknown bundle" ;;
    "$runtime_dir/runcible/.bundles/"*)
      rendered="$(sed -n 's|^    "path": "\(/.*\)/rootfs",*$|\1|p' "$1/config.json" 2>/dev/null | head -n 1)"
      echo "${rendered:-$1}"
      ;;
    *) echo "$1" ;;
  esac
}

# Removes this bundle's container left behind (killed runc, host crash), the writable layer and the
# runtime bundle. A container of the same id from ANOTHER bundle (another version of the same name) is
# left alone: foreign_container names its bundle for the caller.
cleanup() {
  foreign_container=""
  if runc_cmd state "$id" >/dev/null 2>&1; then
    owner="$(container_bundle)"
    if [ "$owner" = "$bundle" ] || [ "$owner" = "$rt_bundle" ]; then
      runc_cmd kill "$id" KILL >/dev/null 2>&1 || true
      runc_cmd delete --force "$id" >/dev/null 2>&1 || runc_cmd delete --force "$id"
    else
      foreign_container="$(bundle_of_runtime "$owner")"
      # Its writable-root tmpfs is at the same {runtimeDir}/runcible/<name>: keep every mount.
      return 0
    fi
  fi
  if grep -q '^  "writableRootfs": {' "$info"; then
    merged="$bundle/$(json_writable merged)"
    tmpfs_dir="$(json_writable tmpfs)"
    # The tmpfs path is the name's, shared by its versions: only the bundle whose overlay is mounted unmounts it.
    if is_mounted "$merged"; then
      while is_mounted "$merged"; do umount "$merged"; done
      while is_mounted "$tmpfs_dir"; do umount "$tmpfs_dir"; done
    fi
    [ ! -d "$tmpfs_dir" ] || rmdir "$tmpfs_dir" 2>/dev/null || true
  fi
  while is_mounted "$rt_bundle/secrets"; do umount "$rt_bundle/secrets"; done
  net_down
  rm -rf "$rt_bundle"
  cgroup_prune
}

# ---- files written whole: temp file, fsync, rename, fsync of the directory -----------------------
# stdin → $1 (mode 0600 unless $2 gives another). The temp file's name is one that logrotate (a "~" ending),
# OpenRC (hidden) and systemd (no unit suffix) ignore when a crash leaves it in their directory.
write_file() {
  tmp="$(dirname "$1")/.$(basename "$1").tmp~"
  (umask 077 && cat >"$tmp")
  [ -z "${2:-}" ] || chmod "$2" "$tmp"
  sync "$tmp"
  mv -f "$tmp" "$1"
  sync "$(dirname "$1")"
}

# ---- the effective config: the one place the config.json runc uses is made -----------------------
# The bundle's own config.json is never changed: each start renders $rt_bundle/config.json from it and
# the host's facts (rootless id mapping, RLIMIT_NOFILE clamp, /etc/hosts and /etc/resolv.conf
# fallbacks), with root.path and relative bind sources made absolute to the bundle.
host_file_missing() {
  [ -f "$1" ] && [ -r "$1" ] && return 1
  return 0
}

render_runtime_config() {
  (umask 077 && mkdir -p "$rt_bundle")
  hosts_source=/etc/hosts
  if host_file_missing /etc/hosts; then
    hosts_source="$rt_bundle/hosts"
    printf '127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n127.0.1.1\t%s\n' "$name" | write_file "$hosts_source" 0644
  fi
  resolv_source=/etc/resolv.conf
  if host_file_missing /etc/resolv.conf; then
    resolv_source="$rt_bundle/resolv.conf"
    printf '# generated by runcible: this host has no /etc/resolv.conf\n' | write_file "$resolv_source" 0644
  fi
  net_render
  map_uid=""
  map_gid=""
  if [ "$rootless" = true ]; then
    # Container root maps to the invoking user; the generator cannot know that user.
    map_uid="$(id -u)"
    map_gid="$(id -g)"
  fi
  nofile_limit="$(open_files_clamp)"
  # The operator's settings: rendered into files beside the effective config, spliced in below.
  check_settings_dir
  operator_env >"$rt_bundle/env.json"
  operator_mounts >"$rt_bundle/mounts.json"
  operator_resources >"$rt_bundle/resources.json"
  # A variable, not a pipe: a failing awk stops here (set -e) instead of renaming an empty config into place.
  effective="$(awk -v base="$bundle" -v hosts="$hosts_source" -v resolv="$resolv_source" \
    -v uid="$map_uid" -v gid="$map_gid" -v nofile="$nofile_limit" -v netns="$net_netns" -v hooks="$net_hook_json" \
    -v envfile="$rt_bundle/env.json" -v mountsfile="$rt_bundle/mounts.json" -v resfile="$rt_bundle/resources.json" -v cgpath="${cg_path:-}" '
    /^  "root": \{/ { in_root = 1 }
    in_root && /"path": "/ { sub(/"path": "[^"]*"/, "\"path\": \"" base "/rootfs\""); in_root = 0 }
    /^    \{/ { bind = 0 }
    /"type": "bind"/ { bind = 1 }
    bind && /"source": "[^\/"]/ { sub(/"source": "/, "\"source\": \"" base "/") }
    /"source": "\/etc\/hosts"/ { sub(/"\/etc\/hosts"/, "\"" hosts "\"") }
    /"source": "\/etc\/resolv\.conf"/ { sub(/"\/etc\/resolv\.conf"/, "\"" resolv "\"") }
    uid != "" && /"hostID": [0-9]+/ { n++; sub(/"hostID": [0-9]+/, "\"hostID\": " (n == 1 ? uid : gid)) }
    /"type": "RLIMIT_NOFILE"/ { in_nofile = 1 }
    in_nofile && /}/ { in_nofile = 0 }
    nofile != "" && in_nofile && /"(hard|soft)": [0-9]+/ { v = $0; gsub(/[^0-9]/, "", v); if (v + 0 > nofile + 0) sub(/[0-9]+/, nofile) }
    # The operator environment: a build-time entry of the same name is dropped, the operator values follow.
    /^    "env": \[$/ {
      print; n_env = 0
      while ((getline line < envfile) > 0) { n_env++; env_line[n_env] = line; key = line; sub(/=.*/, "", key); override[key] = 1 }
      in_env = 1; kept = 0; next
    }
    in_env && /^    \],?$/ {
      for (i = 1; i <= n_env; i++) kept_line[++kept] = "      \"" env_line[i] "\""
      for (i = 1; i <= kept; i++) print kept_line[i] (i < kept ? "," : "")
      in_env = 0; print; next
    }
    in_env { entry = $0; sub(/,$/, "", entry); key = entry; sub(/^ *"/, "", key); sub(/=.*/, "", key); if (!(key in override)) kept_line[++kept] = entry; next }
    # Secrets and files/ overlay mounts after the last mount (they lie over /run and /etc/<name>).
    /^  "mounts": \[$/ { in_mounts = 1 }
    in_mounts && /^    }$/ { held = 1; next }
    in_mounts && /^  \],?$/ {
      n_extra = 0
      while ((getline line < mountsfile) > 0) extra[++n_extra] = line
      if (held) print (n_extra == 0 ? "    }" : "    },")
      for (i = 1; i <= n_extra; i++) print extra[i] (extra[i] == "    }" && i < n_extra ? "," : "")
      in_mounts = 0; held = 0; print; next
    }
    # The limits: linux.resources of the bundle replaced by the effective ones (build-time or operator)
    /^    "resources": \{$/ { in_res = 1; next }
    in_res { if ($0 ~ /^    },?$/) in_res = 0; next }
    /^  "linux": \{$/ { if (hooks != "") print hooks; print; if (cgpath != "") print "    \"cgroupsPath\": \"" cgpath "\","; while ((getline line < resfile) > 0) print line; next }
    netns != "" && /"path": "\{netns\}"/ { sub(/\{netns\}/, netns) }
    { print }
  ' "$bundle/config.json")"
  printf '%s\n' "$effective" | write_file "$rt_bundle/config.json"
  rm -f "$rt_bundle/env.json" "$rt_bundle/mounts.json" "$rt_bundle/resources.json"
}

# ---- the service's cgroup (docs/operations.md, "Where the container's cgroup is") ---------------
# Under systemd the unit has Delegate=yes: its cgroup subtree is the service's. The service's run moves itself
# (shim, health loop, then runc run) into the leaf <unit>/supervisor and gives runc <unit>/container, so the app
# is one of the unit's processes and the unit's MemoryMax=/CPUQuota= bind it too. cg_unit is the unit's cgroup
# (empty when this is not the service's own process under systemd: a foreground run, OpenRC, no delegation).
cgroup_unit() {
  cg_unit=""
  [ "${RUNCIBLE_SERVICE:-}" = "$name" ] || return 0
  # The unified line (cgroup v2, and the hybrid layout's unified hierarchy), else systemd's named v1 hierarchy.
  own="$(sed -n 's/^0:://p' /proc/self/cgroup | head -n 1)"
  [ -n "$own" ] && [ "$own" != / ] || own="$(sed -n 's/^[0-9]*:name=systemd://p' /proc/self/cgroup | head -n 1)"
  # Control processes (ExecStartPre/ExecStopPost) of a delegated unit run in <unit>/.control on cgroup v2.
  own="${own%/.control}"
  own="${own%/supervisor}"
  case "$own" in
    *[!A-Za-z0-9._/@:-]*) return 0 ;;
    */"$name.service") cg_unit="$own" ;;
  esac
}

# The mount points of the cgroup hierarchies whose root is the hierarchy's root (v1 controllers, name=systemd,
# the unified cgroup2).
cgroup_mounts() {
  awk '{ split($0, halves, " - "); split(halves[2], fs, " ") } (fs[1] == "cgroup" || fs[1] == "cgroup2") && $4 == "/" { print $5 }' /proc/self/mountinfo
}

# Moves this process into <unit>/supervisor in every hierarchy where systemd placed it in the unit's cgroup, enables
# the memory, cpu and pids controllers for the unit's children where the unit has them (cgroup v2: processes live
# only in leaves once they are enabled), and sets cg_path, the container's cgroupsPath. Rootless: only on cgroup v2
# with those controllers delegated to the user and the unit's cgroup writable; otherwise runc places the container
# as before (cg_path empty) and operator_resources warns that limits are not applied.
cgroup_delegate() {
  cg_path=""
  cgroup_unit
  [ -n "$cg_unit" ] || return 0
  if [ "$rootless" = true ]; then
    [ -f "/sys/fs/cgroup$cg_unit/cgroup.controllers" ] && [ -w "/sys/fs/cgroup$cg_unit/cgroup.procs" ] || return 0
    for controller in memory cpu pids; do
      grep -qw "$controller" "/sys/fs/cgroup$cg_unit/cgroup.controllers" || return 0
    done
  fi
  moved=""
  for mount_point in $(cgroup_mounts); do
    unit_dir="$mount_point$cg_unit"
    grep -qx "$$" "$unit_dir/cgroup.procs" 2>/dev/null || grep -qx "$$" "$unit_dir/supervisor/cgroup.procs" 2>/dev/null || continue
    if ! { mkdir -p "$unit_dir/supervisor" && printf '%s\n' "$$" >"$unit_dir/supervisor/cgroup.procs"; } 2>/dev/null; then
      warn "could not move into $unit_dir/supervisor; $name's container is placed outside its service's cgroup (is Delegate=yes overridden in a drop-in?)."
      return 0
    fi
    moved=1
    [ -f "$unit_dir/cgroup.subtree_control" ] || continue
    for controller in memory cpu pids; do
      if grep -qw "$controller" "$unit_dir/cgroup.controllers" && ! grep -qw "$controller" "$unit_dir/cgroup.subtree_control"; then
        printf '+%s\n' "$controller" >"$unit_dir/cgroup.subtree_control" 2>/dev/null || warn "could not enable the $controller controller in $unit_dir; its limits do not bind there."
      fi
    done
  done
  [ -z "$moved" ] || cg_path="$cg_unit/container"
}

# The unit's container and supervisor cgroups (and the unit's own, once empty) in the v1 hierarchies systemd does not
# manage for it (freezer, cpuset, cpuacct: runc created them); systemd removes the rest with the unit's cgroup.
# Called by the service's cleanup, i.e. ExecStartPre and ExecStopPost; a cgroup still in use is left alone.
cgroup_prune() {
  cgroup_unit
  [ -n "$cg_unit" ] || return 0
  for mount_point in $(cgroup_mounts); do
    for dir in "$mount_point$cg_unit/container" "$mount_point$cg_unit/supervisor" "$mount_point$cg_unit"; do
      [ ! -d "$dir" ] || rmdir "$dir" 2>/dev/null || true
    done
  done
}

# ---- the operator's settings (docs/operations.md) -----------------------------------------------
# $settings_dir: env, limits, secrets/<NAME>, files/<path>. Only its owner may reach it: the effective
# config takes environment values and mounts from it, and it holds the secrets.
check_settings_dir() {
  [ -e "$settings_dir" ] || [ -L "$settings_dir" ] || return 0
  owner="$(expected_owner)"
  if [ ! -d "$settings_dir" ] || [ -L "$settings_dir" ]; then
    die RUNCIBLE5030 "$settings_dir must be a directory (not a symbolic link) owned by uid $owner with mode 0700."
  fi
  # shellcheck disable=SC2046 # two numbers
  set -- $(stat -c '%u %a' "$settings_dir")
  if [ "$1" != "$owner" ] || [ $((0$2 & 63)) -ne 0 ]; then
    die RUNCIBLE5030 "$settings_dir belongs to uid $1 with mode $2; it holds $name's secrets and settings, so it must belong to uid $owner with mode 0700: 'chown $owner $settings_dir; chmod 0700 $settings_dir'."
  fi
}

make_settings_dir() {
  check_settings_dir
  (umask 077 && mkdir -p "$settings_dir/secrets")
}

# The reason a validating awk printed after the lines it accepted.
last_line() {
  printf '%s\n' "$1" | tail -n 1
}

# KEY=VALUE lines of $1 (blank lines and # comments skipped), validated, values JSON-escaped and taken
# literally (no quotes removed, nothing expanded). Fails with "line N: reason".
env_entries() {
  awk '
    function fail(why) { printf "line %d: %s", NR, why; exit 1 }
    /^[ \t]*(#|$)/ { next }
    {
      if (index($0, "\r")) fail("ends in a carriage return (a file saved with CRLF line ends); save it with LF line ends")
      eq = index($0, "=")
      if (eq == 0) fail("is not KEY=VALUE")
      key = substr($0, 1, eq - 1)
      if (key !~ /^[A-Za-z_][A-Za-z0-9_]*$/) fail("the name \"" key "\" is not letters, digits and _ (not starting with a digit)")
      value = substr($0, eq + 1)
      plain = value
      gsub(/\t/, "", plain)
      if (plain ~ /[[:cntrl:]]/) fail("the value of " key " holds a control character")
      out = ""
      for (i = 1; i <= length(value); i++) {
        c = substr(value, i, 1)
        if (c == "\\") c = "\\\\"
        else if (c == "\"") c = "\\\""
        else if (c == "\t") c = "\\t"
        out = out c
      }
      print key "=" out
    }
  ' "$1"
}

# The operator environment for the effective config: one escaped KEY=VALUE per line, the last of a name winning.
operator_env() {
  [ -f "$settings_dir/env" ] || return 0
  entries="$(env_entries "$settings_dir/env")" || die RUNCIBLE5031 "$settings_dir/env $(last_line "$entries"); fix it with '$self config set KEY=VALUE' or an editor. Values are taken literally (no quotes, no \$ expansion)."
  [ -n "$entries" ] || return 0
  printf '%s\n' "$entries" | awk '{ key = $0; sub(/=.*/, "", key); if (!(key in at)) order[++n] = key; at[key] = $0 } END { for (i = 1; i <= n; i++) print at[order[i]] }'
}

secret_name_ok() {
  case "$1" in '' | [!A-Za-z0-9]* | *[!A-Za-z0-9._-]*) return 1 ;; esac
  [ "${#1}" -le 255 ]
}

# Secrets (the systemd credentials of the service, then the settings directory's secrets/, which win)
# copied into $rt_bundle/secrets: a tmpfs (rootful) or the user's runtime directory (a tmpfs under
# systemd-logind), 0500 and 0400, owned by the app's uid, never in the bundle. Prints the mount, if any.
operator_secrets() {
  sources=""
  [ -z "${CREDENTIALS_DIRECTORY:-}" ] || [ ! -d "$CREDENTIALS_DIRECTORY" ] || sources="$CREDENTIALS_DIRECTORY"
  [ ! -d "$settings_dir/secrets" ] || sources="$sources $settings_dir/secrets"
  found=""
  for dir in $sources; do
    for file in "$dir"/*; do
      [ -f "$file" ] && [ ! -L "$file" ] && secret_name_ok "$(basename "$file")" && found=1 && break 2
    done
  done
  [ -n "$found" ] || return 0
  secrets="$rt_bundle/secrets"
  if [ "$rootless" = true ]; then
    (umask 077 && mkdir -p "$secrets")
  else
    mkdir -p "$secrets"
    is_mounted "$secrets" || mount -t tmpfs -o "mode=0700,size=16m,nosuid,nodev,noexec" tmpfs "$secrets"
  fi
  for dir in $sources; do
    for file in "$dir"/*; do
      if [ ! -f "$file" ] || [ -L "$file" ]; then continue; fi
      secret="$(basename "$file")"
      secret_name_ok "$secret" || { warn "$file: '$secret' is not a secret name (letters, digits, . _ -); skipped."; continue; }
      (umask 077 && cat "$file" >"$secrets/$secret")
      chmod 0400 "$secrets/$secret"
      [ "$rootless" = true ] || chown "$uid:$gid" "$secrets/$secret"
    done
  done
  chmod 0500 "$secrets"
  [ "$rootless" = true ] || chown "$uid:$gid" "$secrets"
  printf '    {\n      "destination": "/run/secrets",\n      "type": "bind",\n      "source": "%s",\n      "options": [\n        "rbind",\n        "ro",\n        "nosuid",\n        "nodev",\n        "noexec"\n      ]\n    }\n' "$secrets"
}

# Mounts the effective config adds: /run/secrets, then each file of files/ over its counterpart in the
# bundle's config/ (read-only; a file with no counterpart is skipped: runc would create it in the bundle).
operator_mounts() {
  operator_secrets
  [ -d "$settings_dir/files" ] && [ ! -L "$settings_dir/files" ] || return 0
  config_dest="$(awk '/"destination": "/ { d = $0; sub(/.*"destination": "/, "", d); sub(/".*/, "", d) } /"source": "config"/ { print d; exit }' "$bundle/config.json")"
  [ -n "$config_dest" ] || return 0
  (cd "$settings_dir/files" && find . -type f | sed 's|^\./||' | LC_ALL=C sort) | while read -r rel; do
    case "$rel" in
      *[!A-Za-z0-9._/@+-]* | *..*) warn "$settings_dir/files/$rel: use a path of letters, digits and . _ - + @; skipped." ; continue ;;
    esac
    if [ ! -f "$bundle/config/$rel" ] || [ -L "$bundle/config/$rel" ]; then
      warn "$settings_dir/files/$rel overrides nothing: $name's bundle has no config/$rel; skipped."
      continue
    fi
    printf '    {\n      "destination": "%s/%s",\n      "type": "bind",\n      "source": "%s/files/%s",\n      "options": [\n        "rbind",\n        "ro",\n        "nosuid",\n        "nodev",\n        "noexec"\n      ]\n    }\n' "$config_dest" "$rel" "$settings_dir" "$rel"
  done
}

# The limits file: memory=, cpu=, pids= (or none), validated as the build-time properties are. Prints
# "key value" lines (value in bytes, quota µs, pids, or none). Fails with "line N: reason".
limits_entries() {
  awk '
    function fail(why) { printf "line %d: %s", NR, why; exit 1 }
    /^[ \t]*(#|$)/ { next }
    {
      eq = index($0, "=")
      if (eq == 0) fail("is not key=value")
      key = substr($0, 1, eq - 1); value = substr($0, eq + 1)
      if (key != "memory" && key != "cpu" && key != "pids") fail("unknown limit \"" key "\" (memory, cpu, pids)")
      if (value == "none") { print key " none"; next }
      if (key == "memory") {
        if (value !~ /^[0-9]+(\.[0-9]+)?[KMGT]?$/) fail("memory=" value " is not a size in bytes or with K, M, G or T (1024-based), e.g. 512M")
        unit = 1; u = substr(value, length(value), 1)
        if (u == "K") unit = 1024; else if (u == "M") unit = 1048576; else if (u == "G") unit = 1073741824; else if (u == "T") unit = 1099511627776
        if (unit > 1) value = substr(value, 1, length(value) - 1)
        bytes = int(value * unit)
        if (bytes < 6291456) fail("memory=" $0 " is below 6M, too little for runc to start the container")
        printf "memory %.0f\n", bytes
      } else if (key == "cpu") {
        if (value !~ /^[0-9]+(\.[0-9]+)?$/) fail("cpu=" value " is not a number of cores, e.g. 1.5")
        quota = int(value * 100000 + 0.5)
        if (quota < 1000 || value > 4096) fail("cpu=" value " is not from 0.01 to 4096 cores")
        print "cpu " quota
      } else if (key == "pids") {
        if (value !~ /^[0-9]+$/ || value < 1 || value > 4194304) fail("pids=" value " is not a whole number from 1 to 4194304")
        print "pids " (value + 0)
      }
    }
  ' "$1"
}

# linux.resources of the effective config: the bundle's (RuncMemoryLimit, RuncCpuLimit, RuncPidsLimit)
# with the limits file's values over them. Rootless: none, with a warning, unless cgroup_delegate found the
# service's cgroup delegated to the user (cg_path).
operator_resources() {
  # shellcheck disable=SC2046 # three words
  set -- $(awk '
    /^    "resources": \{$/ { inside = 1; next }
    inside && /^    },?$/ { inside = 0 }
    inside && /^      "[a-z]+": \{$/ { section = $0; gsub(/[^a-z]/, "", section) }
    inside && /"(limit|quota)": -?[0-9]+/ { v = $0; gsub(/[^0-9-]/, "", v); value[section] = v }
    END { printf "%s %s %s\n", ("memory" in value ? value["memory"] : "none"), ("cpu" in value ? value["cpu"] : "none"), ("pids" in value ? value["pids"] : "none") }
  ' "$bundle/config.json")
  memory="$1" cpu="$2" pids="$3"
  if [ -f "$settings_dir/limits" ]; then
    entries="$(limits_entries "$settings_dir/limits")" || die RUNCIBLE5032 "$settings_dir/limits $(last_line "$entries"). The file holds memory=, cpu= and pids= lines (docs/operations.md)."
    while read -r key value; do
      case "$key" in memory) memory="$value" ;; cpu) cpu="$value" ;; pids) pids="$value" ;; esac
    done <<LIMITS
$entries
LIMITS
  fi
  [ "$memory$cpu$pids" != nonenonenone ] || return 0
  if [ "$rootless" = true ] && [ -z "${cg_path:-}" ]; then
    warn "$name is rootless: its memory, cpu and pids limits are not applied (runc 1.1 sets them only in a cgroup the user may write: the service's own, on cgroup v2 with the memory, cpu and pids controllers delegated to the user manager); limit the user's slice with systemd instead (docs/operations.md)."
    return 0
  fi
  printf '    "resources": {\n'
  sep=""
  if [ "$memory" != none ]; then
    printf '      "memory": {\n        "limit": %s,\n        "swap": %s\n      }' "$memory" "$memory"
    sep=",\n"
  fi
  if [ "$cpu" != none ]; then
    printf "$sep"'      "cpu": {\n        "quota": %s,\n        "period": 100000\n      }' "$cpu"
    sep=",\n"
  fi
  if [ "$pids" != none ]; then
    printf "$sep"'      "pids": {\n        "limit": %s\n      }' "$pids"
  fi
  printf '\n    },\n'
}

# The settings a start would refuse, refused before an install or upgrade changes anything.
check_operator_settings() {
  check_settings_dir
  if [ -f "$settings_dir/env" ]; then
    entries="$(env_entries "$settings_dir/env")" || die RUNCIBLE5031 "$settings_dir/env $(last_line "$entries"); fix it before installing or upgrading $name."
  fi
  if [ -f "$settings_dir/limits" ]; then
    entries="$(limits_entries "$settings_dir/limits")" || die RUNCIBLE5032 "$settings_dir/limits $(last_line "$entries"); fix it before installing or upgrading $name."
  fi
}

# ---- config and secret commands -----------------------------------------------------------------
applies_next_start() {
  say "$1; it applies at the next start of $name ('$self restart')."
}

cmd_config() {
  check_identity
  sub="${1:-}"
  [ "$#" -eq 0 ] || shift
  case "$sub" in
    set)
      [ "$#" -eq 1 ] || die RUNCIBLE5033 "usage: '$self config set KEY=VALUE' (one variable; quote it for the shell)."
      case "$1" in *"
"*) die RUNCIBLE5033 "the value of ${1%%=*} holds a line break; a value is one line." ;; esac
      entry="$(printf '%s\n' "$1" | env_entries /dev/stdin)" || die RUNCIBLE5033 "'$1' ${entry#line 1: }."
      key="${1%%=*}"
      lock_hold
      make_settings_dir
      { [ ! -f "$settings_dir/env" ] || awk -v key="$key" 'index($0, key "=") != 1' "$settings_dir/env"; printf '%s\n' "$1"; } | write_file "$settings_dir/env"
      applies_next_start "set $key in $settings_dir/env"
      ;;
    unset)
      [ "$#" -eq 1 ] || die RUNCIBLE5033 "usage: '$self config unset KEY'."
      case "$1" in '' | [0-9]* | *[!A-Za-z0-9_]*) die RUNCIBLE5033 "'$1' is not a variable name (letters, digits and _)." ;; esac
      lock_hold
      check_settings_dir
      if [ -f "$settings_dir/env" ] && grep -q "^$1=" "$settings_dir/env"; then
        awk -v key="$1" 'index($0, key "=") != 1' "$settings_dir/env" | write_file "$settings_dir/env"
        applies_next_start "removed $1 from $settings_dir/env"
      else
        say "$1 is not set in $settings_dir/env."
      fi
      ;;
    show)
      check_settings_dir
      printf '# %s/env (over the build-time environment)\n' "$settings_dir"
      [ ! -f "$settings_dir/env" ] || cat "$settings_dir/env"
      printf '# %s/limits\n' "$settings_dir"
      [ ! -f "$settings_dir/limits" ] || cat "$settings_dir/limits"
      ;;
    *) die RUNCIBLE5033 "usage: '$self config set KEY=VALUE', 'config unset KEY' or 'config show'." ;;
  esac
}

cmd_secret() {
  check_identity
  sub="${1:-}"
  [ "$#" -eq 0 ] || shift
  case "$sub" in
    set)
      secret="${1:-}"
      secret_name_ok "$secret" || die RUNCIBLE5034 "usage: '$self secret set NAME [--file PATH]' with a NAME of letters, digits and . _ - (it appears as /run/secrets/NAME)."
      shift
      source_file=""
      case "${1:-}" in
        --file) [ "$#" -eq 2 ] || die RUNCIBLE5034 "--file needs one PATH."; source_file="$2" ;;
        '') ;;
        *) die RUNCIBLE5034 "unknown argument '$1'; the value comes from stdin or --file PATH." ;;
      esac
      if [ -n "$source_file" ]; then
        if [ ! -f "$source_file" ] || [ ! -r "$source_file" ]; then die RUNCIBLE5034 "$source_file is not a readable file."; fi
      fi
      lock_hold
      make_settings_dir
      if [ -n "$source_file" ]; then write_file "$settings_dir/secrets/$secret" <"$source_file"; else write_file "$settings_dir/secrets/$secret"; fi
      applies_next_start "stored the secret $secret"
      ;;
    rm)
      secret="${1:-}"
      secret_name_ok "$secret" || die RUNCIBLE5034 "usage: '$self secret rm NAME'."
      lock_hold
      check_settings_dir
      [ -f "$settings_dir/secrets/$secret" ] || die RUNCIBLE5034 "there is no secret $secret in $settings_dir/secrets."
      rm -f "$settings_dir/secrets/$secret"
      sync "$settings_dir/secrets"
      applies_next_start "removed the secret $secret"
      ;;
    ls)
      check_settings_dir
      [ ! -d "$settings_dir/secrets" ] || for file in "$settings_dir/secrets"/*; do
        [ -f "$file" ] && printf '%s\n' "$(basename "$file")"
      done
      ;;
    *) die RUNCIBLE5034 "usage: '$self secret set NAME [--file PATH]', 'secret rm NAME' or 'secret ls'." ;;
  esac
  return 0
}

# RLIMIT_NOFILE above the hard limit of this process fails "runc run" unless it holds
# CAP_SYS_RESOURCE (bit 24 of CapEff: the lowest bit of the seventh hex digit from the right).
# Prints the limit to lower it to (with a warning), or nothing.
open_files_clamp() {
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
  printf '%s\n' "$hard"
}

# Says once (at install) which host files the container gets generated instead.
note_host_files() {
  if host_file_missing /etc/hosts; then
    say "this host has no /etc/hosts; $name gets a minimal one (localhost and its own name) generated at each start."
  fi
  if host_file_missing /etc/resolv.conf; then
    say "this host has no /etc/resolv.conf; $name gets an empty one (no DNS servers) generated at each start."
  fi
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
  # nosuid,nodev: nothing the container writes there is setuid or a device for the host.
  mount -t tmpfs -o mode=700,nosuid,nodev tmpfs "$tmpfs_dir"
  mkdir "$upper" "$work"
  mount -t overlay overlay -o "nosuid,nodev,lowerdir=$lower,upperdir=$upper,workdir=$work" "$merged"
}

# ---- ownership and modes (a root service must run only root's files) ------------------------------
# The user every top-level bundle file and the bundle directory must belong to.
expected_owner() {
  if [ "$rootless" = true ]; then id -u; else echo 0; fi
}

# Refuses a bundle (this one, or $1) whose own files or directory another user owns or may write, or whose
# parents another user may change (a sticky, root-owned parent such as /tmp is fine).
check_ownership() {
  owner="$(expected_owner)"
  checked="${1:-$bundle}"
  for file in "$checked/runcible" "$checked/config.json" "$checked/runcible.json" "$checked/$name.service" "$checked/$name.openrc"; do
    [ -e "$file" ] || continue
    [ ! -L "$file" ] || die RUNCIBLE5028 "$file is a symbolic link; a bundle's own files must be regular files. Extract the bundle tarball again."
    # shellcheck disable=SC2046 # two numbers
    set -- $(stat -c '%u %a' "$file")
    if [ "$1" != "$owner" ] || [ $((0$2 & 18)) -ne 0 ]; then
      die RUNCIBLE5028 "$file belongs to uid $1 with mode $2; it must belong to uid $owner and be writable by no one else, or any of them could make the service run their code. Check the bundle, then 'chown $owner $file; chmod go-w $file'."
    fi
  done
  dir="$checked"
  while :; do
    # shellcheck disable=SC2046 # two numbers
    set -- $(stat -L -c '%u %a' "$dir")
    sticky=$((0$2 & 512))
    if { [ "$1" != "$owner" ] && [ "$1" != 0 ]; } || { [ $((0$2 & 18)) -ne 0 ] && { [ "$sticky" -eq 0 ] || [ "$dir" = "$checked" ]; }; }; then
      die RUNCIBLE5028 "$dir belongs to uid $1 with mode $2; the bundle directory and its parents must belong to uid $owner (or root) and be writable by no one else. Move the bundle (e.g. to /opt/containers) or fix the directory's owner and mode."
    fi
    [ "$dir" != / ] || break
    dir="$(dirname "$dir")"
  done
}

# Bundles extracted from older tarballs: the bundle directory 0700 (no other user reaches rootfs/'s
# setuid binaries, device nodes or the volumes), config.json 0600 (its environment may hold secrets).
tighten_bundle() {
  chmod 0700 "${1:-$bundle}"
  chmod 0600 "${1:-$bundle}/config.json"
}

# A bundle installed by a shim from before the journal: at a boot in the middle of a transaction its run would
# create empty volumes. Its shim is replaced by this one (written whole) before the transaction begins.
replace_old_shim() {
  ! grep -q '^# runcible-journal: ' "$1/runcible" 2>/dev/null || return 0
  say "replacing the shim of $1 with this one: it predates the journal that makes '$command' safe to interrupt."
  write_file "$1/runcible" 0755 <"$self"
}

# ---- the init system --------------------------------------------------------------------------
# Sets init, service_file (and unit_dir or logrotate_file); fails when there is no init system to use.
find_init() {
  init=""
  if [ "$rootless" = true ]; then
    command -v systemctl >/dev/null 2>&1 && systemctl --user show-environment >/dev/null 2>&1 || return 1
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
    logrotate_file="/etc/logrotate.d/runcible-$name"
  else
    return 1
  fi
}

detect_init() {
  find_init && return 0
  if [ "$rootless" = true ]; then
    die RUNCIBLE5014 "a rootless bundle needs a systemd user manager (systemctl --user); log in as this user with systemd or run 'loginctl enable-linger $(id -un)' as root."
  fi
  die RUNCIBLE5014 "no supported init system found (systemd or OpenRC); run the container in the foreground with '$self run'."
}

systemctl_cmd() {
  if [ "$rootless" = true ]; then systemctl --user "$@"; else systemctl "$@"; fi
}

# The bundle a service file runs (its "# runcible-bundle:" line), empty when not installed.
installed_bundle() {
  [ -f "$service_file" ] || return 0
  sed -n 's/^# runcible-bundle: //p' "$service_file" | head -n 1
}

# Installs the service file of bundle $1 (its own generated file, pointed at where it lives), written
# whole (temp, fsync, rename); the OpenRC log gets a logrotate snippet when logrotate is there.
write_service() {
  target="$1"
  if [ "$init" = systemd ]; then template="$target/$name.service"; else template="$target/$name.openrc"; fi
  [ -f "$template" ] || die RUNCIBLE5012 "the bundle $target is damaged: $template is missing. Extract the bundle tarball again."
  # The path the generator wrote (its own "# runcible-bundle:" line), whatever the directory is called now.
  tcanonical="$(sed -n 's/^# runcible-bundle: //p' "$template" | head -n 1)"
  [ -n "$tcanonical" ] || tcanonical="/opt/containers/$(basename "$target")"
  # A variable, not a pipe: a failing sed stops here (set -e) instead of renaming an empty service file into place.
  rendered="$(sed "s|$tcanonical|$target|g" "$template")"
  if [ "$init" = systemd ]; then
    mkdir -p "$unit_dir"
    printf '%s\n' "$rendered" | write_file "$service_file" 0644
    systemctl_cmd daemon-reload 9>&-
    systemctl_cmd enable "$name.service" >/dev/null 2>&1 9>&- || systemctl_cmd enable "$name.service" 9>&-
    # The enable symlinks (in <target>.wants/) are on disk before the transaction goes on.
    for wants in "$unit_dir"/*.wants; do [ ! -d "$wants" ] || sync "$wants"; done
  else
    printf '%s\n' "$rendered" | write_file "$service_file" 0755
    rc-update add "$name" default >/dev/null 9>&-
    [ ! -d /etc/runlevels/default ] || sync /etc/runlevels/default
    if [ -d /etc/logrotate.d ]; then
      # copytruncate: supervise-daemon keeps the log open for ever and cannot be told to reopen it.
      printf '%s\n' "/var/log/runcible/$name.log {" "	weekly" "	maxsize 20M" "	rotate 4" "	compress" "	delaycompress" \
        "	missingok" "	notifempty" "	copytruncate" "}" | write_file "$logrotate_file" 0644
    fi
  fi
}

remove_service() {
  if [ "$init" = systemd ]; then
    systemctl_cmd disable "$name.service" >/dev/null 2>&1 9>&- || true
    rm -f "$service_file" "$service_file.tmp" "$(dirname "$service_file")/.$name.service.tmp~"
    systemctl_cmd daemon-reload 9>&-
    systemctl_cmd reset-failed "$name.service" >/dev/null 2>&1 9>&- || true
  else
    rc-update del "$name" default >/dev/null 2>&1 9>&- || true
    # With the temp files a crash may have left (this shim's and, ending in .tmp, older ones').
    rm -f "$service_file" "$logrotate_file" "$service_file.tmp" "$logrotate_file.tmp" "/etc/init.d/.$name.tmp~" "/etc/logrotate.d/.runcible-$name.tmp~"
  fi
  sync "$(dirname "$service_file")"
}

# The service of bundle $1 is the installed one: rewritten and reloaded even when the file already names it (a
# kill between the rename and daemon-reload leaves systemd running the previous bundle's unit from memory).
point_service_at() {
  write_service "$1"
}

# The lock's fd 9 is closed for the init system's commands: supervise-daemon would inherit it for ever.
# A start the operator asks for also clears systemd's start-rate limit: starts refused while a transaction
# was open (RUNCIBLE5027) must not keep the version it installs from starting.
service_start() {
  if [ "$init" = systemd ]; then
    systemctl_cmd reset-failed "$name.service" >/dev/null 2>&1 9>&- || true
    systemctl_cmd start "$name.service" 9>&-
  else
    rc-service "$name" start 9>&-
  fi
}

service_stop() {
  if [ "$init" = systemd ]; then
    systemctl_cmd stop "$name.service" 9>&-
  elif rc-service "$name" status >/dev/null 2>&1 9>&-; then
    rc-service "$name" stop 9>&-
  fi
}

# The service is active and its container runs.
service_running() {
  if [ "$init" = systemd ]; then
    [ "$(systemctl_cmd is-active "$name.service" 2>/dev/null || true)" = active ] || return 1
  else
    rc-service "$name" status >/dev/null 2>&1 9>&- || return 1
  fi
  [ "$(container_status)" = running ] && [ "$(container_bundle)" = "$rt_bundle" ]
}

# upgrade's verdict on the new version: still running after a settling time and, with a health check, healthy
# within its bound (health_wait). health_verdict says why not.
service_healthy() {
  settle="${RUNCIBLE_SETTLE_SECONDS:-5}"
  sleep "$settle"
  health_verdict="it did not start"
  service_running || return 1
  if health_load; then
    health_wait || return 1
  fi
}

require_installed_here() {
  current="$(installed_bundle)"
  [ -n "$current" ] || die RUNCIBLE5019 "$name is not installed; run '$self install' first."
}

# ---- host state: the lock, the state record, the journal (docs/host-runtime.md) ------------------
# One line of a record file: the value of "$2=" in $1, empty when absent.
record_value() {
  [ ! -f "$1" ] || sed -n "s/^$2=//p" "$1" | head -n 1
}

lock_holder() {
  holder="$(head -n 1 "$lock_file" 2>/dev/null || true)"
  printf '%s\n' "${holder:-a process that did not say who it is}"
}

# Operator commands: wait (bounded) for the per-name lock on fd 9, then say who holds it.
lock_hold() {
  (umask 077 && mkdir -p "$state_dir")
  # 0700 also when it existed before; its entry and its parent's on disk before any journal is written in it.
  chmod 0700 "$state_dir"
  sync "$state_dir" "$(dirname "$state_dir")" "$(dirname "$(dirname "$state_dir")")"
  exec 9<>"$lock_file"
  if ! flock -n 9; then
    timeout="${RUNCIBLE_LOCK_TIMEOUT:-60}"
    say "waiting for the runcible command already changing $name ($(lock_holder)), at most ${timeout}s"
    # flock -n once a second rather than flock -w, which BusyBox's flock lacks.
    waited=0
    until flock -n 9; do
      [ "$waited" -lt "$timeout" ] || die RUNCIBLE5024 "another runcible command is changing $name ($(lock_holder)) and did not finish within ${timeout}s; wait for it (or stop it if it hangs), then run this command again."
      sleep 1
      waited=$((waited + 1))
    done
  fi
  printf 'pid=%s command=%s bundle=%s since=%s\n' "$$" "$command" "$bundle" "$(date -u +%Y-%m-%dT%H:%M:%SZ)" >"$lock_file"
}

# run: one try, never waiting (the init system runs it, also inside upgrade's own systemctl start).
lock_try() {
  [ -d "$state_dir" ] || return 1
  exec 9<>"$lock_file"
  flock -n 9
}

lock_release() {
  exec 9>&-
}

load_state() {
  st_installed="$(record_value "$state_file" installed)"
  st_previous="$(record_value "$state_file" previous)"
  st_volumes="$(record_value "$state_file" volumes)"
}

save_state() {
  printf 'installed=%s\nprevious=%s\nvolumes=%s\n' "$st_installed" "$st_previous" "$st_volumes" | write_file "$state_file"
}

# A host installed by a shim from before the state directory: its service file names the bundle.
adopt_state() {
  [ ! -f "$state_file" ] || return 0
  st_installed="$(installed_bundle)"
  [ -n "$st_installed" ] || return 0
  st_previous=""
  [ ! -f "$st_installed/.runcible-previous" ] || st_previous="$(head -n 1 "$st_installed/.runcible-previous")"
  st_volumes=""
  note_volumes "$st_installed"
  save_state
  say "adopted $name $st_installed, installed by an older runcible; its state is now kept in $state_dir."
}

# Adds the volumes of bundle $1 that hold data to st_volumes (never removes one).
note_volumes() {
  [ -d "$1/data" ] || return 0
  for dir in "$1"/data/*/; do
    [ -d "$dir" ] || continue
    vol="$(basename "$dir")"
    case "$vol" in '' | [!A-Za-z0-9]* | *[!A-Za-z0-9._-]*) continue ;; esac
    [ -n "$(ls -A "$dir" 2>/dev/null)" ] || continue
    case " $st_volumes " in
      *" $vol "*) ;;
      *) st_volumes="${st_volumes:+$st_volumes }$vol" ;;
    esac
  done
}

# run of any bundle of the name: a volume that held data is never recreated or started empty (a bundle's
# tarball carries empty data/<volume> directories, so "empty" is what data left behind looks like).
check_recorded_volumes() {
  [ -n "$st_installed" ] || return 0
  for vol in $st_volumes; do
    [ -d "$bundle/data/$vol" ] && [ -n "$(ls -A "$bundle/data/$vol" 2>/dev/null)" ] && continue
    die RUNCIBLE5025 "the volume '$vol' of $name held data but $bundle/data/$vol is missing or empty; refusing to start it empty. An interrupted upgrade or rollback leaves it in another version's data/ and the next 'runcible upgrade', 'rollback' or service start puts it back; if the data is really gone, remove '$vol' from the volumes= line of $state_file."
  done
}

journal_load() {
  j_op="$(record_value "$journal_file" op)"
  j_from="$(record_value "$journal_file" from)"
  j_to="$(record_value "$journal_file" to)"
  j_previous="$(record_value "$journal_file" previous)"
  j_purge="$(record_value "$journal_file" purge)"
  j_phase="$(record_value "$journal_file" phase)"
}

journal_write() {
  j_phase="$1"
  printf 'op=%s\nfrom=%s\nto=%s\nprevious=%s\npurge=%s\nphase=%s\n' "$j_op" "$j_from" "$j_to" "$j_previous" "$j_purge" "$j_phase" | write_file "$journal_file"
  trap txn_failed EXIT
}

journal_remove() {
  rm -f "$journal_file"
  sync "$state_dir"
  trap - EXIT
}

# A failure (set -e, or a die) while this command's journal is open: the transaction is finished or undone at once
# and the version it settles on started, as the next command or a boot would, instead of leaving the service stopped.
txn_failed() {
  status=$?
  trap - EXIT
  [ "$status" -ne 0 ] || exit 0
  warn "'$command' of $name failed in the middle of its transaction; recovering it now."
  recover_pending
  restart_recovered
  exit "$status"
}

# Both bundles on one file system with their data/ and logs/, and the target's own empty: data moves by
# rename only (mv across file systems would copy, and a crash mid-copy would split the data).
check_movable() {
  from="$1"
  to="$2"
  device="$(stat -c %d "$to")"
  for dir in "$from" "$from/data" "$from/logs"; do
    [ -e "$dir" ] || continue
    [ "$(stat -c %d "$dir")" = "$device" ] ||
      die RUNCIBLE5016 "$dir and $to are on different file systems; extract the new bundle next to the old one (and keep data/ on the bundle's file system) so data moves by rename."
  done
  for entry in data logs; do
    if [ -d "$from/$entry" ] && [ -d "$to/$entry" ] && ! is_skeleton "$to/$entry"; then
      die RUNCIBLE5016 "$to/$entry already holds files; move them away before moving the $entry of $from there."
    fi
  done
}

# A directory holding nothing but empty directories: what a bundle's tarball carries as data/ (one empty
# directory per volume) and logs/.
is_skeleton() {
  for entry in "$1"/* "$1"/.[!.]* "$1"/..?*; do
    [ -e "$entry" ] || [ -L "$entry" ] || continue
    [ -d "$entry" ] && [ ! -L "$entry" ] && [ -z "$(ls -A "$entry")" ] || return 1
  done
  return 0
}

# Removes a skeleton with rmdir only, which cannot remove anything that holds a file.
remove_skeleton() {
  for entry in "$1"/* "$1"/.[!.]* "$1"/..?*; do
    [ ! -d "$entry" ] || rmdir "$entry"
  done
  rmdir "$1"
}

# Moves $1/$3 to $2/$3 by one rename when $1/$3 holds something and $2/$3 is absent or a skeleton (the
# tarball's own, removed with rmdir first). Idempotent: run again, it does nothing.
move_entry() {
  src="$1/$3"
  dst="$2/$3"
  [ -d "$src" ] || return 0
  if [ -e "$dst" ] && is_skeleton "$src"; then
    return 0
  fi
  if [ -d "$dst" ]; then
    is_skeleton "$dst" || die RUNCIBLE5016 "both $src and $dst hold files; decide which is $name's $3, move the other away, then run the command again."
    remove_skeleton "$dst"
  fi
  [ "$(stat -c %d "$src")" = "$(stat -c %d "$2")" ] || die RUNCIBLE5016 "$src and $2 are on different file systems; $3 moves by rename only."
  mv "$src" "$dst"
}

move_data() {
  move_entry "$1" "$2" data
  move_entry "$1" "$2" logs
  sync "$1" "$2"
}

# The two directions of an upgrade or rollback transaction; each step idempotent.
txn_forward() {
  move_data "$j_from" "$j_to"
  st_installed="$j_to"
  if [ "$j_op" = upgrade ]; then st_previous="$j_from"; else st_previous=""; fi
  save_state
  [ -z "$init" ] || point_service_at "$j_to"
}

txn_back() {
  move_data "$j_to" "$j_from"
  st_installed="$j_from"
  st_previous="$j_previous"
  save_state
  [ -z "$init" ] || point_service_at "$j_from"
}

# Every entry of bundle $1 but data/ and logs/ (all of it when $2 is true).
remove_bundle_files() {
  cd /
  if [ "$2" = true ]; then
    rm -rf --one-file-system "$1"
    return 0
  fi
  for entry in "$1"/* "$1"/.[!.]* "$1"/..?*; do
    [ -e "$entry" ] || [ -L "$entry" ] || continue
    case "$entry" in "$1/data" | "$1/logs") continue ;; esac
    rm -rf --one-file-system "$entry"
  done
}

finish_uninstall() {
  rm -f "$state_file"
  sync "$state_dir"
  # The operator's settings outlive every version; only a purge of the installed one removes them.
  [ "$j_purge" != true ] || rm -rf "$settings_dir"
  [ ! -d "$j_from" ] || remove_bundle_files "$j_from" "$j_purge"
}

# An open journal under the lock is an interrupted transaction: finish it (committed) or undo it.
# Sets recovered=true when there was one.
recover_pending() {
  recovered=false
  journal_load
  [ -n "$j_op" ] || return 0
  load_state
  case "$j_op" in
    upgrade | rollback)
      if [ "$j_phase" = committed ]; then
        say "finishing the interrupted $j_op of $name: $j_to with its data."
        txn_forward
      else
        say "undoing the interrupted $j_op of $name: back to $j_from with its data."
        txn_back
      fi
      ;;
    uninstall)
      if [ "$j_phase" = unregistered ]; then
        say "finishing the interrupted uninstall of $name ($j_from)."
        if [ "$j_from" = "$bundle" ]; then
          # This bundle's own command decides about its files: uninstall removes them, install keeps them.
          rm -f "$state_file"
          sync "$state_dir"
        else
          finish_uninstall
        fi
      else
        say "undoing the interrupted uninstall of $name: $j_from stays installed."
        # It may have been killed after disabling or removing the service: install and enable it again.
        [ -z "$init" ] || [ ! -d "$j_from" ] || write_service "$j_from"
      fi
      ;;
    *) die RUNCIBLE5029 "the journal $journal_file names an unknown operation '$j_op'; it was not written by this runcible. Move it away after checking where $name's data is." ;;
  esac
  journal_remove
  recovered=true
}

# An operator command after recovering: the recovered version runs, as it would after a reboot.
restart_recovered() {
  [ "$recovered" = true ] || return 0
  [ -n "$st_installed" ] || return 0
  [ "$(installed_bundle)" = "$st_installed" ] || return 0
  service_start || { warn "$name ($st_installed) did not start after the recovery; see '$self logs'."; return 0; }
  # Up before this command goes on (upgrade stops it at once, and a stop while runc is still creating the container
  # can leave a half-made one that the next start trips over): at most 10 s.
  waited=0
  while [ "$(container_status)" != running ] && [ "$waited" -lt 10 ]; do
    sleep 1
    waited=$((waited + 1))
  done
}

# install, upgrade, rollback, uninstall: the init system, the lock, any interrupted transaction finished
# or undone (and its version started), the state record loaded (adopted from an older shim's host).
begin_operator_command() {
  detect_init
  lock_hold
  recover_pending
  restart_recovered
  load_state
  adopt_state
}

# ---- private network (docs/networking.md) -----------------------------------------------------------
# RuncNetwork=private, rootful: the shim creates the namespace /run/netns/runcible-<id>, wires it to the
# runcible0 bridge with the standard CNI plugins (bridge + host-local, portmap, firewall) before runc run
# and undoes it in cleanup. Everything lives under /run (a reboot clears it with the namespaces, links and
# rules it described); each step is recorded before the next so that a killed shim or runc leaves enough
# for the next cleanup's DEL. Rootless: runc makes the namespace (inside the bundle's user namespace) and
# a createRuntime hook (net_hook) connects it to the host with pasta, which cleanup stops.
net_mode() {
  v="$(json_value network)"
  echo "${v:-host}"
}

net_paths() {
  # ".net" is no bundle name (so never a writable-root tmpfs); tests give each of their hosts its own
  # state (RUNCIBLE_NET_RUN_DIR), as they do with RUNCIBLE_RUNC_ROOT.
  net_run="${RUNCIBLE_NET_RUN_DIR:-$runtime_dir/runcible/.net}"
  net_dir="$net_run/$id"
  net_ns="runcible-$id"
  net_ns_path="/run/netns/$net_ns"
  net_cni_id="runcible-$id"
  # The operator's host-wide network settings: not in /etc/runcible/<name>/, which any bundle name could
  # take (a bundle name never starts with a dot). Tests give each of their hosts its own.
  net_settings_file="${RUNCIBLE_NET_SETTINGS:-/etc/runcible/.network}"
}

# The CNI plugin directory holding every plugin a private network needs, else RUNCIBLE5070.
net_find_plugins() {
  for dir in ${RUNCIBLE_CNI_PATH:-} /usr/lib/cni /usr/libexec/cni /opt/cni/bin; do
    if [ -x "$dir/bridge" ] && [ -x "$dir/host-local" ] && [ -x "$dir/portmap" ] && [ -x "$dir/firewall" ]; then
      cni_path="$dir"
      return 0
    fi
  done
  die RUNCIBLE5070 "$name uses a private network, which needs the CNI plugins bridge, host-local, portmap and firewall in /usr/lib/cni, /usr/libexec/cni or /opt/cni/bin; install them (apt-get install containernetworking-plugins, dnf install containernetworking-plugins)."
}

net_check_host() {
  [ "$(net_mode)" = private ] || return 0
  if [ "$rootless" = true ]; then
    net_rootless_tool || die RUNCIBLE5070 "$name is a rootless bundle with a private network, which needs pasta on PATH; install it (apt-get install passt, dnf install passt)."
    { [ -r /dev/net/tun ] && [ -w /dev/net/tun ]; } || die RUNCIBLE5070 "$name is a rootless bundle with a private network, which needs /dev/net/tun readable and writable by every user (mode 0666, the distributions' default); ask root to load the tun module (modprobe tun) or restore the mode (chmod 0666 /dev/net/tun)."
    return 0
  fi
  net_find_plugins
  command -v ip >/dev/null 2>&1 || die RUNCIBLE5070 "$name uses a private network, which needs the ip command; install it (apt-get install iproute2)."
  command -v iptables >/dev/null 2>&1 || die RUNCIBLE5070 "$name uses a private network, which needs iptables for its published ports and masquerading; install it (apt-get install iptables)."
}

# One published port, validated: "[HOST_IP:]HOST_PORT:CONTAINER_PORT[/tcp|udp]" → "HOST_IP HOST_PORT CONTAINER_PORT PROTO"
# (HOST_IP "-" for every address); returns 1 when it is not that.
net_parse_port() {
  spec="$1"
  proto=tcp
  case "$spec" in
    */tcp | */udp) proto="${spec##*/}"; spec="${spec%/*}" ;;
    */*) return 1 ;;
  esac
  hip=-
  case "$spec" in
    \[*\]:*)
      hip="${spec%%]:*}"; hip="${hip#\[}"; spec="${spec#*]:}"
      case "$hip" in '' | *[!0-9a-fA-F:.]* | *:*:*:*:*:*:*:*:*:*) return 1 ;; *:*) ;; *) return 1 ;; esac
      ;;
    *:*:*)
      hip="${spec%%:*}"; spec="${spec#*:}"
      printf '%s\n' "$hip" | grep -Eq '^(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])(\.(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])){3}$' || return 1
      ;;
  esac
  case "$spec" in *:*) ;; *) return 1 ;; esac
  hport="${spec%%:*}"
  cport="${spec#*:}"
  for p in "$hport" "$cport"; do
    case "$p" in '' | 0* | *[!0-9]*) return 1 ;; esac
    [ "${#p}" -le 5 ] && [ "$p" -le 65535 ] || return 1
  done
  echo "$hip $hport $cport $proto"
}

# The published ports in effect, one "HOST_IP HOST_PORT CONTAINER_PORT PROTO" a line: the operator's
# ports file when there is one (it replaces the bundle's list; RUNCIBLE5071 for a bad line), else runcible.json's.
net_ports() {
  if [ -f "$settings_dir/ports" ]; then
    n=0
    while IFS= read -r line || [ -n "$line" ]; do
      n=$((n + 1))
      line="$(printf '%s' "$line" | sed 's/^[[:space:]]*//; s/[[:space:]]*$//')"
      case "$line" in '' | '#'*) continue ;; esac
      net_parse_port "$line" || die RUNCIBLE5071 "line $n of $settings_dir/ports ('$line') is not a published port; write [HOST_IP:]HOST_PORT:CONTAINER_PORT[/tcp|udp] (ports 1-65535, IPv6 in brackets), one a line."
    done <"$settings_dir/ports"
  else
    awk '
      /^  "publishPorts": \[/ { inside = 1; next }
      inside && /^  \]/ { inside = 0 }
      inside { v = $0; gsub(/[",[:space:]]/, "", v); if (v != "") print v }
    ' "$info" | while read -r spec; do
      net_parse_port "$spec" || die RUNCIBLE5012 "the bundle $bundle is damaged: runcible.json has an invalid published port '$spec'. Extract the bundle tarball again."
    done
  fi
}

# Each host port is free: not published by another Runcible bundle nor listened on by a process here
# (portmap's DNAT would take its traffic). RUNCIBLE5072 names the other user.
net_check_ports() {
  [ "$(net_mode)" = private ] || return 0
  net_paths
  ports="$(net_ports)"
  printf '%s\n' "$ports" | awk 'NF { k = $2 "/" $4; if (seen[k]++) exit 1 }' ||
    die RUNCIBLE5071 "$name publishes a host port twice ($(printf '%s\n' "$ports" | awk 'NF { k = $2 "/" $4; if (seen[k]++) { print k; exit } }')); give each published port its own host port."
  printf '%s\n' "$ports" | while read -r hip hport cport proto; do
    [ -n "$hport" ] || continue
    if [ "$rootless" = true ]; then
      first="$(cat /proc/sys/net/ipv4/ip_unprivileged_port_start 2>/dev/null || echo 1024)"
      [ "$hport" -ge "$first" ] || die RUNCIBLE5074 "host port $hport/$proto, which $name publishes, is below $first (net.ipv4.ip_unprivileged_port_start), which an unprivileged user cannot bind; publish it on a port from $first up (RuncPublishPort, or $settings_dir/ports), or have root lower the limit (sysctl net.ipv4.ip_unprivileged_port_start=$hport, in /etc/sysctl.d to keep it)."
    fi
    for other in "$net_run"/*/ports; do
      if [ ! -f "$other" ] || [ "$other" = "$net_dir/ports" ]; then continue; fi
      if awk -v p="$hport" -v t="$proto" '$2 == p && $4 == t { found = 1 } END { exit !found }' "$other"; then
        die RUNCIBLE5072 "host port $hport/$proto, which $name publishes, is already published by the Runcible container $(basename "$(dirname "$other")"); change one of them (RuncPublishPort, or $settings_dir/ports)."
      fi
    done
    if [ "$proto" = tcp ]; then flags=-Hltnp; else flags=-Hlunp; fi
    user="$(ss "$flags" "sport = :$hport" 2>/dev/null | sed -n 's/.*users:(("\([^"]*\)",pid=\([0-9]*\).*/\1 (pid \2)/p' | head -n 1)"
    if [ -z "$user" ] && [ -n "$(ss "$flags" "sport = :$hport" 2>/dev/null)" ]; then user="a socket of another namespace or user"; fi
    [ -z "$user" ] || die RUNCIBLE5072 "host port $hport/$proto, which $name publishes, is in use by $user; stop it or publish $name on another port (RuncPublishPort, or $settings_dir/ports)."
  done
}

# Runs CNI plugin $2 with command $1 and the network config on stdin.
net_plugin() {
  CNI_COMMAND="$1" CNI_CONTAINERID="$net_cni_id" CNI_NETNS="$net_ns_path" CNI_IFNAME=eth0 CNI_PATH="$cni_path" "$cni_path/$2"
}

net_has_ipv6() {
  [ -f /proc/sys/net/ipv6/conf/all/disable_ipv6 ] && [ "$(cat /proc/sys/net/ipv6/conf/all/disable_ipv6)" = 0 ]
}

# awk functions over addresses as strings of bits: cidr(c, fam) parses "ADDRESS/PREFIX" of family 4 or 6 into
# cidr_bits and cidr_len (0 when it is not one); overlap(a, b, fam) when two prefixes share an address;
# network(fam) prints the network address of the last parsed prefix.
net_awk_lib='
function bits(v, w,   s, i) { s = ""; for (i = 0; i < w; i++) { s = (v % 2) s; v = int(v / 2) } return s }
function v4(a,   n, o, i, s) {
  n = split(a, o, "."); if (n != 4) return ""
  s = ""
  for (i = 1; i <= 4; i++) { if (o[i] !~ /^(0|[1-9][0-9]?[0-9]?)$/ || o[i] + 0 > 255) return ""; s = s bits(o[i] + 0, 8) }
  return s
}
function group(g,   v, i) {
  if (g !~ /^[0-9a-fA-F]+$/ || length(g) > 4) return ""
  v = 0
  for (i = 1; i <= length(g); i++) v = v * 16 + index("0123456789abcdef", tolower(substr(g, i, 1))) - 1
  return bits(v, 16)
}
function v6(a,   parts, head, tail, h, t, hn, tn, i, s, b) {
  if (a !~ /^[0-9a-fA-F:]+$/ || a ~ /:::/) return ""
  if (split(a, parts, "::") > 2) return ""
  if (index(a, "::")) { head = parts[1]; tail = parts[2] } else { head = a; tail = "" }
  hn = (head == "") ? 0 : split(head, h, ":"); tn = (tail == "") ? 0 : split(tail, t, ":")
  if (index(a, "::") ? hn + tn > 7 : hn != 8) return ""
  s = ""
  for (i = 1; i <= hn; i++) { b = group(h[i]); if (b == "") return ""; s = s b }
  for (i = hn + tn; i < 8; i++) s = s bits(0, 16)
  for (i = 1; i <= tn; i++) { b = group(t[i]); if (b == "") return ""; s = s b }
  return s
}
function cidr(c, fam,   p, w) {
  cidr_len = 0; w = (fam == 4) ? 32 : 128
  if (index(c, "/")) { p = substr(c, index(c, "/") + 1); c = substr(c, 1, index(c, "/") - 1) } else p = w
  if (p !~ /^[0-9]+$/ || p + 0 > w) return 0
  cidr_bits = (fam == 4) ? v4(c) : v6(c)
  if (cidr_bits == "") return 0
  cidr_len = p + 0
  return 1
}
function overlap(a, b, fam,   ab, al) {
  if (!cidr(a, fam)) return 0
  ab = cidr_bits; al = cidr_len
  if (!cidr(b, fam)) return 0
  if (cidr_len < al) al = cidr_len
  return substr(ab, 1, al) == substr(cidr_bits, 1, al)
}
function network(fam,   s, i, n, v, out, w) {
  w = (fam == 4) ? 8 : 16
  s = substr(cidr_bits, 1, cidr_len); while (length(s) < length(cidr_bits)) s = s "0"
  out = ""
  for (i = 1; i <= length(s); i += w) {
    v = 0; for (n = 0; n < w; n++) v = v * 2 + substr(s, i + n, 1)
    out = out (i > 1 ? (fam == 4 ? "." : ":") : "") (fam == 4 ? v : sprintf("%x", v))
  }
  return out "/" cidr_len
}
'

# One subnet setting checked: $1 the value, $2 the family (4 or 6); prints nothing when it is a usable network
# (IPv4 /8 to /30, IPv6 /16 to /120: room for the gateway and containers), else what is wrong with it.
net_check_subnet() {
  awk -v c="$1" -v fam="$2" "$net_awk_lib"'
    BEGIN {
      min = (fam == 4) ? 8 : 16; max = (fam == 4) ? 30 : 120
      if (c !~ /\// || !cidr(c, fam)) { print "is not an IPv" fam " network in CIDR notation"; exit }
      if (cidr_len < min || cidr_len > max) { print "has a prefix length outside /" min "-/" max; exit }
      if (substr(cidr_bits, cidr_len + 1) ~ /1/) print "has host bits set (the network is " network(fam) ")"
    }'
}

# runcible0's subnets when the operator sets none (and for a bridge an older shim made, which recorded none).
net_default_subnet=10.89.64.0/24
net_default_subnet6=fd52:756e:6369::/64

# The operator's subnets for runcible0 (sets net_subnet, net_subnet6), from $net_settings_file when it exists:
# "subnet=" (IPv4) and "subnet6=" (IPv6) lines, blank lines and # comments ignored; RUNCIBLE5075 for a bad line.
net_settings() {
  net_subnet="$net_default_subnet"
  net_subnet6="$net_default_subnet6"
  [ -f "$net_settings_file" ] || return 0
  n=0
  while IFS= read -r line || [ -n "$line" ]; do
    n=$((n + 1))
    line="$(printf '%s' "$line" | sed 's/^[[:space:]]*//; s/[[:space:]]*$//')"
    case "$line" in '' | '#'*) continue ;; esac
    key="$(printf '%s' "${line%%=*}" | sed 's/[[:space:]]*$//')"
    value="$(printf '%s' "${line#*=}" | sed 's/^[[:space:]]*//')"
    case "$line" in *=*) ;; *) key="" ;; esac
    case "$key" in
      subnet) fam=4 ;;
      subnet6) fam=6 ;;
      *) die RUNCIBLE5075 "line $n of $net_settings_file ('$line') is not a network setting; write subnet=A.B.C.D/PREFIX or subnet6=IPV6/PREFIX, one a line." ;;
    esac
    problem="$(net_check_subnet "$value" "$fam")"
    [ -z "$problem" ] || die RUNCIBLE5075 "line $n of $net_settings_file ('$line'): '$value' $problem; write an IPv$fam network such as $([ "$fam" = 4 ] && echo "$net_default_subnet" || echo "$net_default_subnet6")."
    if [ "$fam" = 4 ]; then net_subnet="$value"; else net_subnet6="$value"; fi
  done <"$net_settings_file"
}

# The subnets runcible0 was made with (the defaults when no record says otherwise: a bridge of an older shim).
net_recorded_subnets() {
  net_subnet="$net_default_subnet"
  net_subnet6="$net_default_subnet6"
  [ -f "$net_run/subnets" ] || return 0
  while IFS='=' read -r key value; do
    case "$key" in subnet) net_subnet="$value" ;; subnet6) net_subnet6="$value" ;; esac
  done <"$net_run/subnets"
}

# The host's first route (any table) that overlaps subnet $1 of family $2, other than runcible0's own,
# the default routes and the link-local, broadcast and multicast ones every interface has. A route wider than
# the subnet counts only when it is a network an interface is on (proto kernel): the bridge's more specific
# route would win over a VPN's 0.0.0.0/1 or 10.0.0.0/8 without taking anything the host reaches directly.
net_route_conflict() {
  ip "-$2" route show table all 2>/dev/null | awk -v want="$1" -v fam="$2" "$net_awk_lib"'
    / dev runcible0( |$)/ || $1 == "default" { next }
    {
      dst = $1
      if (dst ~ /^(unicast|local|unreachable|blackhole|prohibit|throw)$/) dst = $2
      else if (dst ~ /^(broadcast|anycast|multicast|nat)$/) next
      if (fam == 6 && dst ~ /^fe80:/) next
      if (!cidr(dst, fam)) next
      wider = cidr_len
      cidr(want, fam)
      if (wider < cidr_len && $0 !~ / proto kernel( |$)/) next
      if (overlap(want, dst, fam)) { print; exit }
    }'
}

# Under the network lock, before the bridge ADD: the subnets of runcible0 in effect (net_subnet, net_subnet6).
# A new bridge takes the operator's setting, recorded for the containers that join it later and for the DELs;
# while the bridge exists (containers on it) a changed setting waits until the last of them is gone. A subnet
# overlapping a route of the host is RUNCIBLE5076, naming the route.
net_subnets() {
  net_settings
  wanted="$net_subnet $net_subnet6"
  bridge=false
  if ip link show runcible0 >/dev/null 2>&1; then
    bridge=true
    net_recorded_subnets
    [ "$net_subnet $net_subnet6" = "$wanted" ] ||
      warn "$net_settings_file asks for the subnets $wanted, but runcible0 still carries $net_subnet $net_subnet6 for the private containers running on it; $name joins them there, and the new subnets take effect once they are all stopped."
  fi
  for fam in 4 6; do
    if [ "$fam" = 4 ]; then subnet="$net_subnet"; key=subnet; else subnet="$net_subnet6"; key=subnet6; net_has_ipv6 || continue; fi
    route="$(net_route_conflict "$subnet" "$fam")"
    [ -z "$route" ] ||
      die RUNCIBLE5076 "the private-network subnet $subnet overlaps the host's route '$route'; set another network that no route of this host covers with $key= in $net_settings_file (see docs/networking.md, 'Subnets')."
  done
  [ "$bridge" = true ] || printf 'subnet=%s\nsubnet6=%s\n' "$net_subnet" "$net_subnet6" | write_file "$net_run/subnets"
}

net_bridge_config() {
  ranges="[{\"subnet\":\"$net_subnet\"}]"
  routes='{"dst":"0.0.0.0/0"}'
  if net_has_ipv6; then
    ranges="$ranges,[{\"subnet\":\"$net_subnet6\"}]"
    routes="$routes,{\"dst\":\"::/0\"}"
  fi
  printf '{"cniVersion":"1.0.0","name":"runcible","type":"bridge","bridge":"runcible0","isGateway":true,"ipMasq":true,"hairpinMode":true,"ipam":{"type":"host-local","ranges":[%s],"routes":[%s],"dataDir":"%s/ipam"}%s}' \
    "$ranges" "$routes" "$net_run" "${1:+,\"prevResult\":$1}"
}

# The ports file's lines as CNI portMappings.
net_port_mappings() {
  awk 'NF { printf "%s{\"hostPort\":%s,\"containerPort\":%s,\"protocol\":\"%s\"%s}", (n++ ? "," : ""), $2, $3, $4, ($1 == "-" ? "" : ",\"hostIP\":\"" $1 "\"") }' "$net_dir/ports"
}

net_portmap_config() {
  printf '{"cniVersion":"1.0.0","name":"runcible","type":"portmap","snat":true,"runtimeConfig":{"portMappings":[%s]}%s}' \
    "$(net_port_mappings)" "${1:+,\"prevResult\":$1}"
}

net_firewall_config() {
  printf '{"cniVersion":"1.0.0","name":"runcible","type":"firewall","backend":"iptables"%s}' "${1:+,\"prevResult\":$1}"
}

# The message of a CNI error result.
net_error() {
  printf '%s' "$1" | sed -n 's/.*"msg": *"\([^"]*\)".*/\1/p' | head -n 1
}

# Holds the host-wide network lock (the bridge and the IPAM store are shared) on fd 8.
net_lock() {
  mkdir -p "$net_run"
  chmod 0700 "$net_run"
  exec 8>>"$net_run/.lock"
  flock 8
}

net_unlock() {
  exec 8>&-
}

# Before runc run: the namespace, the bridge port with its addresses, the published ports and the filter
# rules. A failure undoes what was done (RUNCIBLE5073 with the plugin's message).
net_up() {
  [ "$(net_mode)" = private ] || return 0
  net_check_host
  net_paths
  net_lock
  # Under the lock: two bundles starting together cannot both take a host port.
  net_check_ports
  ports="$(net_ports)"
  # The bridge's subnets are the rootful network's; a rootless one has no bridge.
  [ "$rootless" = true ] || net_subnets
  (umask 077 && mkdir -p "$net_dir")
  printf '%s\n' "$ports" | write_file "$net_dir/ports"
  if [ "$rootless" = true ]; then
    # runc makes the namespace; net_hook connects it once it exists.
    net_unlock
    return 0
  fi
  ip netns add "$net_ns" 2>/dev/null || [ -e "$net_ns_path" ] || { net_unlock; net_down; die RUNCIBLE5073 "cannot create the network namespace $net_ns (ip netns add failed)."; }
  ip -n "$net_ns" link set lo up
  if ! result="$(net_bridge_config | net_plugin ADD bridge)"; then
    net_unlock; net_down
    die RUNCIBLE5073 "the CNI bridge plugin could not connect $name to runcible0: $(net_error "$result"). See docs/networking.md, 'Debugging'."
  fi
  printf '%s\n' "$result" | write_file "$net_dir/result"
  if [ -n "$ports" ] && ! out="$(net_portmap_config "$result" | net_plugin ADD portmap)"; then
    net_unlock; net_down
    die RUNCIBLE5073 "the CNI portmap plugin could not publish the ports of $name: $(net_error "$out")."
  fi
  if ! out="$(net_firewall_config "$result" | net_plugin ADD firewall)"; then
    net_unlock; net_down
    die RUNCIBLE5073 "the CNI firewall plugin could not admit the traffic of $name: $(net_error "$out")."
  fi
  net_unlock
}

# Undoes net_up, from whatever step it reached (also after a crash or a kill -9; a reboot needs nothing):
# DEL in reverse order with the stored ADD result, the namespace, and the bridge once no container uses it.
net_down() {
  net_paths
  if [ "$rootless" = true ]; then
    [ -d "$net_dir" ] || return 0
    net_stop_pasta
    rm -rf "$net_dir"
    return 0
  fi
  [ -d "$net_dir" ] || [ -e "$net_ns_path" ] || return 0
  net_lock
  if net_find_plugins_quietly; then
    net_recorded_subnets
    result="$(cat "$net_dir/result" 2>/dev/null || true)"
    net_firewall_config "$result" | net_plugin DEL firewall >/dev/null 2>&1 || warn "the CNI firewall plugin could not remove the filter rules of $name."
    if [ -s "$net_dir/ports" ]; then
      net_portmap_config "$result" | net_plugin DEL portmap >/dev/null 2>&1 || warn "the CNI portmap plugin could not remove the published ports of $name."
    fi
    net_bridge_config "$result" | net_plugin DEL bridge >/dev/null 2>&1 || warn "the CNI bridge plugin could not release the addresses of $name."
  fi
  if [ -e "$net_ns_path" ]; then ip netns del "$net_ns" 2>/dev/null || warn "cannot remove the network namespace $net_ns."; fi
  rm -rf "$net_dir"
  # The last container gone: the bridge goes too (the lock keeps a starting one from racing this).
  if ip link show runcible0 >/dev/null 2>&1 && [ -z "$(ip -o link show master runcible0 2>/dev/null)" ]; then
    ip link del runcible0 2>/dev/null || true
    net_prune_chains
  fi
  # The next bridge takes the operator's subnets of its time.
  ip link show runcible0 >/dev/null 2>&1 || rm -f "$net_run/subnets"
  net_unlock
}

# The chains the CNI plugins share between all their containers stay after the last DEL. Once they hold
# nothing but the plugins' own fixed rules (no container of any CNI user, no admin rule) they go with
# their jumps; the plugins re-create them at the next ADD.
net_prune_chains() {
  for tool in iptables ip6tables; do
    command -v "$tool" >/dev/null 2>&1 || continue
    if net_chain_idle "$tool" filter CNI-ADMIN '' && net_chain_idle "$tool" filter CNI-FORWARD ' -j CNI-ADMIN$'; then
      net_chain_remove "$tool" filter CNI-FORWARD
      net_chain_remove "$tool" filter CNI-ADMIN
    fi
    net_chain_idle "$tool" nat CNI-HOSTPORT-DNAT '' && net_chain_remove "$tool" nat CNI-HOSTPORT-DNAT
    net_chain_idle "$tool" nat CNI-HOSTPORT-SETMARK ' -j MARK --set-xmark 0x2000/0x2000$' && net_chain_remove "$tool" nat CNI-HOSTPORT-SETMARK
    net_chain_idle "$tool" nat CNI-HOSTPORT-MASQ ' --mark 0x2000/0x2000 -j MASQUERADE$' && net_chain_remove "$tool" nat CNI-HOSTPORT-MASQ
  done
  return 0
}

# Chain $3 of table $2 exists, holds only rules matching $4 (none when empty), and nothing but the
# built-in chains jumps to it.
net_chain_idle() {
  rules="$("$1" -w -t "$2" -S "$3" 2>/dev/null)" || return 1
  rest="$(printf '%s\n' "$rules" | grep -v -- "^-N $3\$" | { if [ -n "$4" ]; then grep -v -- "$4"; else cat; fi; } || true)"
  [ -z "$rest" ] || return 1
  ! "$1" -w -t "$2" -S | grep -- "-j $3\$" | grep -vq -- '^-A \(INPUT\|FORWARD\|OUTPUT\|PREROUTING\|POSTROUTING\|CNI-FORWARD\) '
}

net_chain_remove() {
  "$1" -w -t "$2" -S | grep -- "-j $3\$" | sed 's/^-A /-D /' | while read -r rule; do
    # iptables -S quotes a comment with spaces as the shell does: eval splits the rule as it was given.
    eval "\"\$1\" -w -t \"\$2\" $rule" 2>/dev/null || true
  done
  "$1" -w -t "$2" -F "$3" 2>/dev/null || true
  "$1" -w -t "$2" -X "$3" 2>/dev/null || true
}

net_find_plugins_quietly() {
  (net_find_plugins) >/dev/null 2>&1 || return 1
  net_find_plugins
}

# The resolver the namespace gets: the host's, with its upstream servers instead of a loopback stub
# (systemd-resolved's 127.0.0.53 is not reachable from another namespace).
net_resolv_conf() {
  src=/etc/resolv.conf
  if grep -Eq '^[[:space:]]*nameserver[[:space:]]+(127\.|::1)' /etc/resolv.conf 2>/dev/null && [ -r /run/systemd/resolve/resolv.conf ]; then
    src=/run/systemd/resolve/resolv.conf
  fi
  printf '# generated by runcible from %s for the private network of %s\n' "$src" "$name"
  awk '$1 == "nameserver" && ($2 ~ /^127\./ || $2 == "::1") { next } { print }' "$src" 2>/dev/null || true
}

# The effective config's part: the namespace path (rootful) or the hook that connects the namespace runc makes
# (rootless), and the resolver file (sets resolv_source).
net_render() {
  net_netns=""
  net_hook_json=""
  [ "$(net_mode)" = private ] || return 0
  net_paths
  resolv_source="$rt_bundle/resolv.conf"
  if [ "$rootless" = true ]; then
    # The hook runs in runc's namespaces, as this user, with runc's environment (this one); runc waits for it.
    net_hook_json="  \"hooks\": {\"createRuntime\": [{\"path\": \"$self\", \"args\": [\"runcible\", \"net-hook\"], \"timeout\": 60}]},"
    # pasta answers DNS at this address with the host's first resolver (from the host's side, so a loopback stub
    # such as 127.0.0.53 works too); podman uses the same one.
    {
      printf '# generated by runcible for the rootless private network of %s (pasta forwards to the host'"'"'s resolver)\n' "$name"
      printf 'nameserver %s\n' "$net_pasta_dns"
      awk '$1 == "search" || $1 == "domain" || $1 == "options"' /etc/resolv.conf 2>/dev/null || true
    } | write_file "$resolv_source" 0644
    return 0
  fi
  net_netns="$net_ns_path"
  net_resolv_conf | write_file "$resolv_source" 0644
}

# ---- rootless private network: pasta ----------------------------------------------------------------
# podman's choices: the container copies the host's addresses and routes (--config-net), only the published
# ports are forwarded in (-t/-u, "none" otherwise: pasta's default "auto" would follow what the app binds),
# nothing is forwarded from the namespace's loopback to the host's (-T none -U none), and the gateway address
# is not the host (--no-map-gw): the host's loopback services stay out of reach, as with a rootful bridge.
net_pasta_dns=169.254.1.1

net_rootless_tool() {
  command -v pasta >/dev/null 2>&1
}

# The pasta options for the ports record's lines.
net_pasta_ports() {
  awk -v want="$1" '
    NF && $4 == want { spec = ($1 == "-" ? "" : $1 "/") $2 ":" $3; printf " %s %s", (want == "tcp" ? "-t" : "-u"), spec; n++ }
    END { if (!n) printf " %s none", (want == "tcp" ? "-t" : "-u") }
  ' "$net_dir/ports"
}

# runcible net-hook: runc's createRuntime hook (the container's namespaces exist, its process waits). The state
# on stdin names the container's pid; pasta joins its user and network namespaces, configures them, binds the
# published ports on the host, writes its pid and goes to the background, and the hook returns. pasta keeps the
# namespace open, so it does not end with the container: cleanup stops it (net_stop_pasta).
net_hook() {
  net_paths
  pid="$(sed -n 's/.*"pid": *\([0-9][0-9]*\).*/\1/p' | head -n 1)"
  [ -n "$pid" ] || die RUNCIBLE5073 "the network hook of $name got no container pid from runc."
  [ -f "$net_dir/ports" ] || die RUNCIBLE5073 "the network hook of $name found no record in $net_dir; start it with '$self run'."
  rm -f "$net_dir/pasta.pid"
  # shellcheck disable=SC2046 # the options are words without blanks (addresses, numbers)
  if ! pasta --config-net --quiet --no-map-gw -T none -U none --dns-forward "$net_pasta_dns" \
    $(net_pasta_ports tcp) $(net_pasta_ports udp) -P "$net_dir/pasta.pid" "$pid" </dev/null >/dev/null 2>"$net_dir/pasta.log"; then
    die RUNCIBLE5073 "pasta could not connect the network of $name: $(awk '!/to syslog/ { printf "%s%s", (n++ ? "; " : ""), $0 }' "$net_dir/pasta.log"). See docs/networking.md, 'Debugging'."
  fi
}

# Stops the pasta of this container: the pid of its record, when that process is still the pasta that wrote it.
net_stop_pasta() {
  pid="$(cat "$net_dir/pasta.pid" 2>/dev/null || true)"
  case "$pid" in '' | *[!0-9]*) return 0 ;; esac
  tries=0
  while tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "-P $net_dir/pasta.pid "; do
    [ "$tries" -gt 0 ] || kill "$pid" 2>/dev/null || true
    tries=$((tries + 1))
    [ "$tries" -le 50 ] || { kill -KILL "$pid" 2>/dev/null || true; break; }
    sleep 0.1
  done
}

# ---- health checks (docs/health-checks.md) ------------------------------------------------------
# runcible.json's "health" object: an HTTP URL probed from the host in the container's network namespace, or a
# command run in the container with runc exec (exec'd directly, no shell). The loop runs beside runc for as long
# as the service runs (forked by run before it execs runc); it writes $rt_bundle/health and health-output, which
# status and upgrade read.
health_value() {
  json_object_value health "$1"
}

# The command's words, one a line, JSON string escapes (\" and \\; Runcible writes no others) undone.
health_command_words() {
  awk '
    /^  "health": \{/ { inside = 1; next }
    inside && /^  \}/ { inside = 0 }
    inside && /^    "command": \[/ { words = 1; next }
    words && /^    \]/ { words = 0 }
    words {
      v = $0; sub(/^ *"/, "", v); sub(/",?$/, "", v)
      out = ""
      for (i = 1; i <= length(v); i++) {
        c = substr(v, i, 1)
        if (c == "\\") { i++; c = substr(v, i, 1) }
        out = out c
      }
      print out
    }
  ' "$info"
}

# Sets health_* from runcible.json; returns 1 when the bundle has no check.
health_load() {
  grep -q '^  "health": {' "$info" || return 1
  health_http="$(health_value http)"
  health_interval="$(health_value intervalSeconds)"
  health_timeout="$(health_value timeoutSeconds)"
  health_retries="$(health_value retries)"
  health_start_period="$(health_value startPeriodSeconds)"
  for value in "$health_interval" "$health_timeout" "$health_retries" "$health_start_period"; do
    case "$value" in '' | *[!0-9]*) die RUNCIBLE5012 "the bundle $bundle is damaged: runcible.json has an invalid health check. Extract the bundle tarball again." ;; esac
  done
  if [ -z "$health_http" ] && [ -z "$(health_command_words)" ]; then
    die RUNCIBLE5012 "the bundle $bundle is damaged: runcible.json's health check has neither an http URL nor a command. Extract the bundle tarball again."
  fi
  health_file="$rt_bundle/health"
  health_output_file="$rt_bundle/health-output"
}

# The HTTP client the probe uses: RUNCIBLE_HEALTH_HTTP_CLIENT, else the first of bash (/dev/tcp), wget, busybox
# (its wget), curl on PATH. None: RUNCIBLE5050 (the service does not start without a way to judge it).
health_http_client() {
  health_client="${RUNCIBLE_HEALTH_HTTP_CLIENT:-}"
  if [ -n "$health_client" ]; then
    case "$health_client" in
      bash | wget | busybox | curl) ;;
      *) die RUNCIBLE5022 "RUNCIBLE_HEALTH_HTTP_CLIENT '$health_client' is not one of bash, wget, busybox, curl." ;;
    esac
    command -v "$health_client" >/dev/null 2>&1 ||
      die RUNCIBLE5050 "RUNCIBLE_HEALTH_HTTP_CLIENT names $health_client, which is not on PATH; install it or unset the variable."
    return 0
  fi
  for health_client in bash wget busybox curl; do
    command -v "$health_client" >/dev/null 2>&1 && return 0
  done
  die RUNCIBLE5050 "$name has an HTTP health check ($health_http) but this host has no HTTP client to probe it with: install bash (it has /dev/tcp), busybox, wget or curl (apt-get install bash; apk add busybox)."
}

container_pid() {
  runc_cmd state "$id" 2>/dev/null | sed -n 's/^  "pid": \([0-9]*\),*$/\1/p' | head -n 1
}

# One probe of the running container; the output (at most 4 KiB, printable characters only: it comes from the
# app) in $probe_out. Returns 0 healthy, 1 not.
health_probe() {
  if [ "$(container_status)" != running ]; then
    printf 'the container is not running\n' >"$probe_out"
    return 1
  fi
  probe_rc=0
  if [ -n "$health_http" ]; then
    health_probe_http "$(container_pid)" >"$probe_out.raw" 2>&1 || probe_rc=$?
  else
    health_probe_command >"$probe_out.raw" 2>&1 || probe_rc=$?
  fi
  head -c 4096 "$probe_out.raw" | tr -cd '[:print:]\t\n' >"$probe_out"
  rm -f "$probe_out.raw"
  case "$probe_rc" in
    0) return 0 ;;
    124 | 137) printf 'timed out after %ss\n' "$health_timeout" >>"$probe_out" ;;
    *) printf 'exit status %s\n' "$probe_rc" >>"$probe_out" ;;
  esac
  return 1
}

# runc exec of the check's words (the container's user, environment and no_new_privileges); the timeout sends
# SIGTERM, which runc exec forwards to the check, then SIGKILL 2 s later.
health_probe_command() {
  set --
  while IFS= read -r word; do
    set -- "$@" "$word"
  done <<WORDS
$(health_command_words)
WORDS
  timeout -k 2 "$health_timeout" runc --root "$runc_root" exec "$id" "$@"
}

# GET of the URL from the host, in the container's network namespace (nsenter when it is not the host's);
# healthy on 200-399 (as Kubernetes and curl -f do). No proxy: the URL is the container's own loopback.
health_probe_http() {
  hp_pid="$1"
  hp_rest="${health_http#http://}"
  hp_hostport="${hp_rest%%/*}"
  hp_path="${hp_rest#"$hp_hostport"}"
  [ -n "$hp_path" ] || hp_path=/
  hp_host="${hp_hostport%%:*}"
  hp_port=80
  case "$hp_hostport" in *:*) hp_port="${hp_hostport##*:}" ;; esac
  [ "$hp_host" != localhost ] || hp_host=127.0.0.1
  hp_url="http://$hp_host:$hp_port$hp_path"
  set -- env -u http_proxy -u HTTP_PROXY -u all_proxy -u ALL_PROXY
  if [ -n "$hp_pid" ] && [ "$(readlink "/proc/$hp_pid/ns/net")" != "$(readlink /proc/self/ns/net)" ]; then
    if [ "$rootless" = true ]; then
      # The bundle's user namespace owns that network namespace: only from inside it may the user enter.
      set -- nsenter "--user=/proc/$hp_pid/ns/user" "--net=/proc/$hp_pid/ns/net" --preserve-credentials -- "$@"
    else
      set -- nsenter "--net=/proc/$hp_pid/ns/net" -- "$@"
    fi
  fi
  case "$health_client" in
    bash)
      # shellcheck disable=SC2016 # expanded by bash
      timeout -k 1 "$health_timeout" "$@" bash -c '
        exec 3<>"/dev/tcp/$1/$2" || exit 1
        printf "GET %s HTTP/1.0\r\nHost: %s:%s\r\nUser-Agent: runcible-health\r\nConnection: close\r\n\r\n" "$3" "$1" "$2" >&3
        response="$(head -c 4096 <&3)"
        printf "%s\n" "$response"
        code="$(printf "%s\n" "$response" | head -n 1 | sed -n "s|^HTTP/[0-9.]* \([0-9][0-9][0-9]\).*|\1|p")"
        [ -n "$code" ] && [ "$code" -ge 200 ] && [ "$code" -le 399 ]
      ' health "$hp_host" "$hp_port" "$hp_path"
      ;;
    # -S: the status line (of the error too) goes into the output; wget exits non-zero on 4xx and 5xx.
    wget) timeout -k 1 "$health_timeout" "$@" wget -S -O - -T "$health_timeout" "$hp_url" ;;
    busybox) timeout -k 1 "$health_timeout" "$@" busybox wget -S -O - -T "$health_timeout" "$hp_url" ;;
    curl) timeout -k 1 "$health_timeout" "$@" curl -fsS -m "$health_timeout" -o - "$hp_url" ;;
  esac
}

# Records the outcome: status (starting|healthy|unhealthy), consecutive failures, when, and the last output.
health_record() {
  # A probe that outlived its service (OpenRC stops runc, not this loop) must not write over the next start's record.
  [ -z "${health_runc_pid:-}" ] || kill -0 "$health_runc_pid" 2>/dev/null || return 1
  # The output first: a reader that sees the new status sees its output.
  write_file "$health_output_file" 0600 <"$probe_out"
  printf 'status=%s\nfailures=%s\nchecked=%s\n' "$1" "$health_failures" "$(date -u +%Y-%m-%dT%H:%M:%SZ)" | write_file "$health_file" 0600
}

# Sleeps $1 seconds; returns 1 as soon as the runc run of this service (pid $health_runc_pid) is gone.
health_sleep() {
  hs_left="$1"
  while [ "$hs_left" -gt 0 ]; do
    kill -0 "$health_runc_pid" 2>/dev/null || return 1
    sleep 1
    hs_left=$((hs_left - 1))
  done
  kill -0 "$health_runc_pid" 2>/dev/null
}

# Docker's semantics: failures in the start period do not count (a success ends it); after it, $health_retries
# failures in a row make the container unhealthy, and a service started by the init system is restarted.
health_loop() {
  health_runc_pid="$1"
  cd /
  health_failures=0
  hl_start_until=$(($(date +%s) + health_start_period))
  hl_in_start=true
  hl_status=starting
  probe_out="$rt_bundle/health-probe"
  printf 'no probe yet\n' >"$probe_out" 2>/dev/null || return 0
  health_record starting || return 0
  while health_sleep "$health_interval"; do
    if health_probe; then
      health_failures=0
      hl_in_start=false
      hl_status=healthy
      health_record healthy || return 0
      continue
    fi
    if [ "$hl_in_start" = true ] && [ "$(date +%s)" -lt "$hl_start_until" ]; then
      health_record starting || return 0
      continue
    fi
    hl_in_start=false
    health_failures=$((health_failures + 1))
    if [ "$health_failures" -lt "$health_retries" ]; then
      # Not yet unhealthy: the status stays what it was (starting or healthy), as Docker's does.
      health_record "$hl_status" || return 0
      continue
    fi
    health_record unhealthy || return 0
    health_restart && return 0
  done
}

# Restarts the service through its init system; not a foreground run (RUNCIBLE_SERVICE is set only by the
# service files), nor while an operator command holds the lock (an upgrade judges the health itself).
health_restart() {
  if [ "${RUNCIBLE_SERVICE:-}" != "$name" ] || [ -z "$init" ]; then
    say "health: $name failed its health check $health_failures times in a row (unhealthy); not run by its service, so it is not restarted."
    return 1
  fi
  if [ -f "$lock_file" ] && ! flock -n "$lock_file" true; then
    say "health: $name is unhealthy; not restarting it while another runcible command changes it ($(lock_holder))."
    return 1
  fi
  say "health: $name failed its health check $health_failures times in a row; restarting it. Last output: $(head -c 300 "$probe_out" | tr '\n' ' ')"
  if [ "$init" = systemd ]; then
    systemctl_cmd --no-block restart "$name.service" </dev/null 9>&-
  else
    # Detached: the stop ends runc, whose child this loop is. RC_SVCNAME would make it look like a dependency call.
    env -u RC_SVCNAME -u RC_SERVICE setsid rc-service "$name" restart </dev/null 9>&- &
  fi
}

# upgrade: after the settling time, the new version must report healthy within its start period plus the time
# its retries take ((retries + 1) x (interval + timeout)); it stays active and running meanwhile.
health_wait() {
  hw_bound=$((health_start_period + (health_retries + 1) * (health_interval + health_timeout)))
  hw_deadline=$(($(date +%s) + hw_bound))
  while [ "$(date +%s)" -lt "$hw_deadline" ]; do
    service_running || { health_verdict="it stopped"; return 1; }
    case "$(record_value "$health_file" status)" in
      healthy) return 0 ;;
      unhealthy) health_verdict="its health check failed: $(head -c 300 "$health_output_file" 2>/dev/null | tr '\n' ' ')"; return 1 ;;
    esac
    sleep 1
  done
  health_verdict="it did not report healthy within ${hw_bound}s: $(head -c 300 "$health_output_file" 2>/dev/null | tr '\n' ' ')"
  return 1
}

# status: the health line and the last probe's output.
health_status() {
  health_load || return 0
  if [ ! -f "$health_file" ]; then
    [ "$(container_status)" = running ] && printf 'health: starting (no probe yet)\n'
    return 0
  fi
  printf 'health: %s (%s failures in a row, last probe %s; check: %s)\n' "$(record_value "$health_file" status)" \
    "$(record_value "$health_file" failures)" "$(record_value "$health_file" checked)" "${health_http:-$(health_command_words | tr '\n' ' ')}"
  printf 'last output:\n'
  sed 's/^/  /' "$health_output_file" 2>/dev/null || true
}

# ---- commands -----------------------------------------------------------------------------------
cmd_install() {
  check_identity
  check_runc
  net_check_host
  check_ownership
  begin_operator_command
  current="${st_installed:-$(installed_bundle)}"
  if [ -n "$current" ] && [ "$current" != "$bundle" ]; then
    die RUNCIBLE5015 "another bundle of $name is installed ($current); use '$self upgrade' to replace it."
  fi
  tighten_bundle
  make_settings_dir
  net_check_ports
  prepare_directories
  render_runtime_config
  note_host_files
  # The service file first: a crash before the record leaves a service file that adopt_state reads.
  write_service "$bundle"
  st_installed="$bundle"
  note_volumes "$bundle"
  save_state
  say "installed $name $version ($init service $service_file); start it with '$self start'."
  if [ "$rootless" = true ]; then
    say "to start it at boot without a login, run 'loginctl enable-linger $(id -un)' as root."
  fi
}

# What the service runs. Never waits for the lock (see docs/host-runtime.md, "The lock").
cmd_run() {
  check_identity
  check_runc quiet
  find_init || init=""
  settled=""
  if lock_try; then
    recover_pending
    load_state
    if [ "$recovered" = true ] && [ "$j_op" = uninstall ] && [ -z "$st_installed" ]; then
      lock_release
      die RUNCIBLE5019 "$name was uninstalled (an interrupted uninstall was finished); install it again with '$self install'."
    fi
    if [ "$st_installed" = "$bundle" ]; then
      check_recorded_volumes
      recorded="$st_volumes"
      note_volumes "$bundle"
      [ "$recorded" = "$st_volumes" ] || save_state
    fi
    lock_release
  else
    # An operator command holds the lock and owns any open transaction: only the version that transaction
    # has settled on may start now (a start of the other one hands over to it).
    lock_release
    journal_load
    if [ "$j_op" = upgrade ] || [ "$j_op" = rollback ]; then
      case "$j_phase" in
        committed) settled="$j_to" ;;
        reverted) settled="$j_from" ;;
        *) die RUNCIBLE5027 "$name is being changed by another runcible command ($(lock_holder)); it starts the right version when it finishes." ;;
      esac
      if [ "$settled" != "$bundle" ]; then
        say "$settled is the version of $name being installed; starting it."
        exec "$settled/runcible" run
      fi
    elif [ -n "$j_op" ]; then
      die RUNCIBLE5027 "$name is being changed by another runcible command ($(lock_holder)); it starts the right version when it finishes."
    fi
    load_state
  fi
  cleanup
  if [ -n "$foreign_container" ]; then
    die RUNCIBLE5026 "the container $id belongs to another bundle ($foreign_container); it is left alone. Stop that version first (or set RUNCIBLE_CONTAINER_ID to run this one beside it)."
  fi
  # Another bundle is the installed one (a recovery just made it so, or the init system runs a unit it has not
  # reloaded, or an operator starts an old version): its shim runs, on its data, unless an open transaction
  # settled on this bundle or another container id was asked for.
  if [ -n "$st_installed" ] && [ "$st_installed" != "$bundle" ] && [ "$settled" != "$bundle" ] && [ -z "${RUNCIBLE_CONTAINER_ID:-}" ]; then
    [ -x "$st_installed/runcible" ] || die RUNCIBLE5019 "$bundle is not the installed version of $name and the installed one ($st_installed) is gone; remove $state_file, then install the version to run with its 'runcible install'."
    say "$st_installed is the installed version of $name; starting it."
    exec "$st_installed/runcible" run
  fi
  # Before anything forks a process that stays (network helpers, the health loop) and before runc starts: all belong
  # in the supervisor cgroup.
  cgroup_delegate
  check_recorded_volumes
  check_ports
  prepare_directories
  mount_writable_root
  net_up
  render_runtime_config
  if health_load; then
    [ -z "$health_http" ] || health_http_client
    rm -f "$health_file" "$health_output_file"
    # Beside runc (this process becomes runc run; the loop ends with it).
    health_loop "$$" </dev/null 9>&- &
  fi
  cd "$rt_bundle"
  exec runc --root "$runc_root" run --bundle "$rt_bundle" "$id"
}

cmd_cleanup() {
  check_identity
  check_runc quiet
  cleanup
  if [ -n "$foreign_container" ]; then
    say "the container $id belongs to another bundle ($foreign_container); left alone."
  fi
}

cmd_status() {
  if find_init; then
    if [ "$init" = systemd ]; then
      systemctl_cmd status --no-pager "$name.service" || true
    else
      rc-service "$name" status || true
    fi
  fi
  state="$(container_status)"
  printf 'container %s: %s\n' "$id" "${state:-absent}"
  health_status
  [ "$state" = running ]
}

# One probe now, whatever the loop's state: the output, exit 0 when healthy.
cmd_health() {
  check_identity
  check_runc quiet
  health_load || die RUNCIBLE5051 "$name has no health check (RuncHealthCheck was not set when it was built)."
  [ "$(container_status)" = running ] || die RUNCIBLE5023 "$name is not running; start it with '$self start'."
  [ -z "$health_http" ] || health_http_client
  mkdir -p "$rt_bundle"
  probe_out="$rt_bundle/health-probe-$$"
  if health_probe; then
    cat "$probe_out"
    rm -f "$probe_out"
    printf 'healthy\n'
    return 0
  fi
  cat "$probe_out"
  rm -f "$probe_out"
  printf 'unhealthy\n'
  return 1
}

# OpenRC: the log and its rotations (oldest first, .gz read with gzip -dc); with arguments, tail them on the log.
cmd_logs() {
  detect_init
  if [ "$init" = systemd ]; then
    if [ "$rootless" = true ]; then
      exec journalctl --user-unit "$name.service" --no-pager "$@"
    fi
    exec journalctl --unit "$name.service" --no-pager "$@"
  fi
  log="/var/log/runcible/$name.log"
  [ "$#" -eq 0 ] || exec tail "$@" "$log"
  for rotated in "$log".*; do
    number="${rotated#"$log".}"
    number="${number%.gz}"
    case "$number" in '' | *[!0-9]*) continue ;; esac
    printf '%s %s\n' "$number" "$rotated"
  done | sort -rn | cut -d ' ' -f 2- | while read -r rotated; do
    case "$rotated" in
      *.gz) gzip -dc "$rotated" ;;
      *) cat "$rotated" ;;
    esac
  done
  [ ! -f "$log" ] || cat "$log"
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

# Stops the installed bundle $1's service and removes its container (through its own shim: it may be older).
stop_installed() {
  service_stop
  "$1/runcible" cleanup 9>&-
}

cmd_upgrade() {
  check_identity
  check_runc
  check_ownership
  begin_operator_command
  current="$st_installed"
  [ -n "$current" ] || die RUNCIBLE5016 "no installed version of $name to upgrade from; use '$self install'."
  if [ "$current" = "$bundle" ]; then
    say "$name $version is already the installed version."
    return 0
  fi
  [ -d "$current" ] || die RUNCIBLE5016 "the installed bundle $current of $name is gone; uninstall it or install this one with '$self install' after removing $service_file and $state_file."
  old_version="$(sed -n 's/^  "version": "\(.*\)",$/\1/p' "$current/runcible.json")"
  check_movable "$current" "$bundle"
  check_operator_settings
  tighten_bundle
  replace_old_shim "$current"
  say "upgrading $name $old_version -> $version"
  note_volumes "$current"
  save_state
  j_op=upgrade j_from="$current" j_to="$bundle" j_previous="$st_previous" j_purge=false
  journal_write begun
  stop_installed "$current"
  move_data "$current" "$bundle"
  journal_write committed
  txn_forward
  prepare_directories
  render_runtime_config
  if service_start && service_healthy; then
    journal_remove
    say "upgraded $name to $version; '$self rollback' returns to $old_version."
    return 0
  fi
  warn "$name $version is not healthy ($health_verdict); rolling back to $old_version."
  journal_write reverting
  service_stop || true
  cleanup
  txn_back
  journal_write reverted
  service_start || true
  journal_remove
  die RUNCIBLE5017 "$name $version failed to start or to become healthy ($health_verdict) and was rolled back to $old_version with its data; see '$self logs'."
}

cmd_rollback() {
  check_identity
  check_runc quiet
  begin_operator_command
  current="$st_installed"
  [ -n "$current" ] || die RUNCIBLE5019 "$name is not installed; nothing to roll back."
  previous="$st_previous"
  [ -n "$previous" ] || die RUNCIBLE5018 "no previous version of $name is recorded in $state_file; rollback returns to the version an upgrade replaced."
  if [ ! -x "$previous/runcible" ] || [ ! -f "$previous/config.json" ]; then
    die RUNCIBLE5018 "the previous version of $name ($previous) is gone; nothing to roll back to."
  fi
  check_ownership "$previous"
  check_movable "$current" "$previous"
  tighten_bundle "$previous"
  replace_old_shim "$current"
  replace_old_shim "$previous"
  say "rolling back $name from $current to $previous"
  note_volumes "$current"
  save_state
  j_op=rollback j_from="$current" j_to="$previous" j_previous="$previous" j_purge=false
  journal_write begun
  stop_installed "$current"
  move_data "$current" "$previous"
  journal_write committed
  txn_forward
  service_start || warn "$name ($previous) did not start; see '$self logs'."
  journal_remove
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
  begin_operator_command
  if [ "$st_installed" = "$bundle" ]; then
    j_op=uninstall j_from="$bundle" j_to="" j_previous="$st_previous" j_purge="$purge"
    journal_write begun
    service_stop || true
    cleanup
    remove_service
    journal_write unregistered
    finish_uninstall
    journal_remove
  else
    # Not the installed version: neither the service nor the installed version's container is touched.
    cleanup
    [ -z "$foreign_container" ] || say "the container $id belongs to $foreign_container, the installed version; left alone."
    if [ -n "$st_installed" ] && [ "$st_previous" = "$bundle" ]; then
      st_previous=""
      save_state
    fi
    remove_bundle_files "$bundle" "$purge"
  fi
  if [ "$purge" = true ]; then
    say "uninstalled $name $version and removed $bundle with its data."
  else
    say "uninstalled $name $version; its data stays in $bundle/data and its logs in $bundle/logs (remove them with 'rm -rf $bundle')."
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
  net-hook) net_hook ;;
  # Operator commands too: they wait for a running install/upgrade/rollback/uninstall (the lock) and finish or
  # undo an interrupted one first, so a restart never lands in the middle of an upgrade's transaction.
  start) check_identity; detect_init; require_installed_here; begin_operator_command; service_start ;;
  stop) check_identity; detect_init; require_installed_here; begin_operator_command; service_stop ;;
  restart)
    check_identity
    detect_init
    require_installed_here
    begin_operator_command
    if [ "$init" = systemd ]; then
      systemctl_cmd reset-failed "$name.service" >/dev/null 2>&1 9>&- || true
      systemctl_cmd restart "$name.service" 9>&-
    else
      rc-service "$name" restart 9>&-
    fi
    ;;
  status) cmd_status ;;
  logs) cmd_logs "$@" ;;
  exec) cmd_exec "$@" ;;
  health) cmd_health ;;
  upgrade) cmd_upgrade ;;
  rollback) cmd_rollback ;;
  uninstall) cmd_uninstall "$@" ;;
  config) cmd_config "$@" ;;
  secret) cmd_secret "$@" ;;
  *) usage >&2; die RUNCIBLE5022 "unknown command '$command'." ;;
esac
