#!/usr/bin/env bash
# The main job end to end, on a fresh Debian 12 machine as root:
#   1. install the prerequisites (runc, docker-registry, skopeo, umoci, debootstrap…) and build the
#      fixture base images (no public registry is reachable here, so the .NET "aspnet" base image is
#      built locally with debootstrap + umoci, once, then cached);
#   2. start a loopback registry and push that image to it as <registry>/dotnet/aspnet:10.0;
#   3. pack Runcible.Sdk and `dotnet publish samples/HelloWeb -c Release -r linux-x64 -p:PublishRuncBundle=true`;
#   4. extract the tarball into a scratch root, run the bundle with its shim (`runcible run`, which
#      execs runc), make HTTP requests, stop it with SIGTERM and show its graceful shutdown.
# Everything it starts it stops; the scratch directory is removed unless RUNCIBLE_DEMO_KEEP=1.
set -euo pipefail
cd "$(dirname "$0")/.."
repo="$PWD"

log() { printf '\n==> %s\n' "$*"; }

[ "$(id -u)" -eq 0 ] || { echo "eng/demo.sh: run as root (runc, debootstrap)" >&2; exit 1; }

log "Prerequisites and fixture base images"
bash eng/install-deps.sh
bash eng/fixture-images.sh
fixture_dir="${RUNCIBLE_FIXTURE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/runcible-fixtures}"

work="$(mktemp -d /tmp/runcible-demo.XXXXXX)"
bundle=""
registry_pid=""
app_pid=""
cleanup() {
  set +e
  if [ -n "$app_pid" ] && kill -0 "$app_pid" 2>/dev/null; then
    runc --root "$work/runc" kill helloweb KILL 2>/dev/null
    wait "$app_pid" 2>/dev/null
  fi
  # The shim's cleanup also removes the runtime bundle it rendered the effective config.json into (/run/runcible/.bundles/).
  if [ -n "${bundle:-}" ] && [ -x "$bundle/runcible" ]; then
    RUNCIBLE_RUNC_ROOT="$work/runc" RUNCIBLE_CONTAINER_ID=helloweb "$bundle/runcible" cleanup
  fi
  runc --root "$work/runc" delete --force helloweb >/dev/null 2>&1
  [ -n "$registry_pid" ] && kill "$registry_pid" 2>/dev/null && wait "$registry_pid" 2>/dev/null
  if [ "${RUNCIBLE_DEMO_KEEP:-0}" = 1 ]; then echo "kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT INT TERM

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

log "Loopback registry with the aspnet base image"
registry_port="$(free_port)"
mkdir -p "$work/registry"
cat > "$work/registry/config.yml" <<EOF
version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: $work/registry/storage
http:
  addr: 127.0.0.1:$registry_port
EOF
docker-registry serve "$work/registry/config.yml" > "$work/registry/log" 2>&1 &
registry_pid=$!
for _ in $(seq 1 50); do
  curl -fsS "http://127.0.0.1:$registry_port/v2/" >/dev/null 2>&1 && break
  sleep 0.2
done
base_image="127.0.0.1:$registry_port/dotnet/aspnet:10.0"
skopeo copy --quiet --dest-tls-verify=false "oci:$fixture_dir/oci/aspnet:latest" "docker://$base_image"
echo "pushed $base_image"

log "Pack Runcible.Sdk and publish samples/HelloWeb as a runc bundle"
dotnet pack sdk/Runcible.Sdk.csproj -c Release -o artifacts/packages -nologo -v:q
# An isolated package folder, so the package just packed is the one used.
export NUGET_PACKAGES="$work/nuget-packages"
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
cp -r samples "$work/samples"
rm -rf "$work/samples/HelloWeb/bin" "$work/samples/HelloWeb/obj"
# The samples resolve Runcible.Sdk from ../artifacts/packages and take the repository's build settings and versions.
ln -s "$repo/artifacts" "$work/artifacts"
cp Directory.Build.props Directory.Packages.props "$work/"
dotnet publish "$work/samples/HelloWeb" -c Release -r linux-x64 -nologo \
  -p:PublishRuncBundle=true \
  -p:ContainerBaseImage="$base_image" \
  -p:RuncCacheDirectory="$work/cache" \
  -p:RuncOpenFilesLimit="$(ulimit -Hn)"
tarball="$work/samples/HelloWeb/bin/Release/net10.0/linux-x64/helloweb-1.0.0.tar.gz"
ls -l "$tarball"

log "Extract into a scratch root and run it"
mkdir -p "$work/root"
tar --numeric-owner -xpf "$tarball" -C "$work/root"
bundle="$work/root/opt/containers/helloweb-1.0.0"
find "$bundle" -maxdepth 1 | sort
port=8080
if ss -ltn 2>/dev/null | grep -q ":$port "; then
  echo "port $port is in use on this machine; stop what listens there and retry" >&2
  exit 1
fi
# The shim's `run` is what the systemd / OpenRC services call; here its runc state goes to the
# scratch directory instead of /run/runc so the demo leaves nothing on the machine.
RUNCIBLE_RUNC_ROOT="$work/runc" RUNCIBLE_CONTAINER_ID=helloweb "$bundle/runcible" run > "$work/app.log" 2>&1 &
app_pid=$!
for _ in $(seq 1 120); do
  curl -fsS "http://127.0.0.1:$port/" >/dev/null 2>&1 && break
  kill -0 "$app_pid" 2>/dev/null || { cat "$work/app.log"; exit 1; }
  sleep 0.5
done
echo "GET /          -> $(curl -fsS "http://127.0.0.1:$port/")"
echo "POST /notes    -> $(curl -fsS -X POST --data 'hello from the demo' "http://127.0.0.1:$port/notes")"
echo "data volume    -> $(cat "$bundle/data/state/notes.txt")"

log "Stop with SIGTERM"
runc --root "$work/runc" kill helloweb TERM
wait "$app_pid" && status=0 || status=$?
app_pid=""
cat "$work/app.log"
echo "exit code $status"
[ "$status" -eq 0 ]
log "Done: $(basename "$tarball") was published, installed into a scratch root and ran under runc (RUNCIBLE_DEMO_KEEP=1 keeps $work)"
