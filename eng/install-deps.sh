#!/usr/bin/env bash
# Installs, from Debian, every tool the build and the tests use. Idempotent; needs root (or sudo) when
# something is missing. --unit: only what the unit tier reads (eng/test.sh --unit).
set -euo pipefail

packages=(
  runc            # runs the bundles (tests run it as root and rootless)
  docker-registry # the CNCF distribution registry the tests pull from
  skopeo          # pushes fixture images; the oracle for what a correct pull yields
  umoci           # builds fixture images; the oracle for what a correct rootfs is
  debootstrap     # builds the Debian fixture rootfs
  golang-github-opencontainers-specs-dev # the OCI runtime-spec JSON schema
  apache2-utils   # htpasswd, for the basic-auth registry
  openssl         # self-signed CA for the TLS registry
  uidmap          # newuidmap/newgidmap for rootless runs
  busybox-static  # the small multi-layer fixture image
  shellcheck      # lints the shim
  zstd
  tar
  gzip
  ca-certificates
  curl
  jq              # eng/fixture-images.sh writes the multiarch image index
  attr            # getfattr: the unpack tests compare extended attributes with umoci's rootfs
  time            # bench/run.sh: peak memory (GNU time -v)
  iproute2        # ss: eng/demo.sh checks the port is free
  python3         # eng/demo.sh, bench/run.sh: free ports, medians; the network tests' host services and DNS answer
  containernetworking-plugins # RuncNetwork=private: bridge, host-local, portmap, firewall
  iptables        # the CNI plugins' masquerade, port and filter rules
  wget            # the network tests' HTTP client inside a test host's namespace
  passt           # pasta: RuncNetwork=private for rootless bundles (a host tool the shim calls; the network tests run it)
)

if [ "${1:-}" = "--unit" ]; then
  packages=(
    golang-github-opencontainers-specs-dev # the OCI runtime-spec JSON schema the config tests validate against
    tar
    gzip
  )
fi

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if [ "${#missing[@]}" -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
