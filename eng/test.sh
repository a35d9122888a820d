#!/usr/bin/env bash
# The test command. Two tiers:
#   eng/test.sh --unit   the unit tier alone (tests/Runcible.UnitTests): no root, no network, no runc, no
#                        fixture images; a minute or two on two cores, build included.
#   eng/test.sh          both tiers, as CI runs them: installs prerequisites, builds (or reuses) the fixture and
#                        host images, runs the unit tier inside a fresh network namespace (only lo up) with runc
#                        hidden, which proves the tier needs neither, then the integration tier (tests/Runcible.Tests).
# Other arguments go to `dotnet test`. Ends with one line "N passed, N failed" counted from the test results.
set -euo pipefail
cd "$(dirname "$0")/.."

unit_only=0
if [ "${1:-}" = "--unit" ]; then
  unit_only=1
  shift
fi

results_dir="$PWD/artifacts/test-results"
rm -rf "$results_dir"
mkdir -p "$results_dir"

# `dotnet test` of one built test project, TRX results under $results_dir/<project name>.
tier_command() {
  local project="$1"
  shift
  tier=(dotnet test "$project" -c Release --no-build
    --logger "trx;LogFilePrefix=results" --logger "console;verbosity=normal"
    --results-directory "$results_dir/$(basename "$project")" "$@")
}

# Runs a command where nothing but loopback exists and runc cannot be executed (as root, with unshare;
# elsewhere as it is).
isolated() {
  if [ "$(id -u)" -eq 0 ] && command -v unshare >/dev/null 2>&1; then
    unshare --mount --net -- bash -c '
      set -e
      ip link set lo up
      for runc in $(type -a -p runc); do mount --bind /dev/null "$runc"; done
      if runc --version >/dev/null 2>&1; then
        echo "test.sh: could not hide runc from the unit tier" >&2
        exit 1
      fi
      exec "$@"
    ' bash "$@"
  else
    "$@"
  fi
}

test_exit=0
if [ "$unit_only" -eq 1 ]; then
  bash eng/install-deps.sh --unit
  dotnet build tests/Runcible.UnitTests -c Release
  tier_command tests/Runcible.UnitTests "$@"
  "${tier[@]}" || test_exit=$?
else
  bash eng/install-deps.sh
  # Builds the fixture images once (minutes: debootstrap), then reuses them while this script is unchanged.
  bash eng/fixture-images.sh
  # Debian hosts with systemd and with OpenRC as PID 1 for the host runtime tests (cached the same way).
  bash eng/host-images.sh

  dotnet restore Packaging.sln
  dotnet build Packaging.sln -c Release --no-restore
  tier_command tests/Runcible.UnitTests "$@"
  isolated "${tier[@]}" || test_exit=$?
  tier_command tests/Runcible.Tests "$@"
  "${tier[@]}" || test_exit=$?
fi

passed=0
failed=0
while IFS= read -r -d '' trx; do
  counters=$(grep -o '<Counters [^>]*>' "$trx" | head -n 1)
  p=$(sed -n 's/.* passed="\([0-9]*\)".*/\1/p' <<<"$counters")
  f=$(sed -n 's/.* failed="\([0-9]*\)".*/\1/p' <<<"$counters")
  passed=$((passed + ${p:-0}))
  failed=$((failed + ${f:-0}))
done < <(find "$results_dir" -name '*.trx' -print0)

echo "${passed} passed, ${failed} failed"
if [ "$test_exit" -ne 0 ] || [ "$failed" -ne 0 ] || [ "$passed" -eq 0 ]; then
  exit 1
fi
