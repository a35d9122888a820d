#!/usr/bin/env bash
# The test command: installs prerequisites, builds (or reuses) the fixture images, runs every test,
# and ends with one line "N passed, N failed" counted from the test results.
set -euo pipefail
cd "$(dirname "$0")/.."

bash eng/install-deps.sh
# Builds the fixture images once (minutes: debootstrap), then reuses them while this script is unchanged.
bash eng/fixture-images.sh
# Debian hosts with systemd and with OpenRC as PID 1 for the host runtime tests (cached the same way).
bash eng/host-images.sh

results_dir="$PWD/artifacts/test-results"
rm -rf "$results_dir"
mkdir -p "$results_dir"

dotnet restore Packaging.sln
dotnet build Packaging.sln -c Release --no-restore
set +e
dotnet test Packaging.sln -c Release --no-build \
  --logger "trx;LogFilePrefix=results" \
  --logger "console;verbosity=normal" \
  --results-directory "$results_dir" "$@"
test_exit=$?
set -e

passed=0
failed=0
for trx in "$results_dir"/*.trx; do
  [ -e "$trx" ] || continue
  counters=$(grep -o '<Counters [^>]*>' "$trx" | head -n 1)
  p=$(sed -n 's/.* passed="\([0-9]*\)".*/\1/p' <<<"$counters")
  f=$(sed -n 's/.* failed="\([0-9]*\)".*/\1/p' <<<"$counters")
  passed=$((passed + ${p:-0}))
  failed=$((failed + ${f:-0}))
done

echo "${passed} passed, ${failed} failed"
if [ "$test_exit" -ne 0 ] || [ "$failed" -ne 0 ] || [ "$passed" -eq 0 ]; then
  exit 1
fi
