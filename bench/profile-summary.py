#!/usr/bin/env python3
"""Summarizes `dotnet publish -v:d -clp:PerformanceSummary` logs for bench/run.sh.

    profile-summary.py <plain.log> <runcible.log>...

For each Runcible log: its elapsed time, Runcible's own timing lines, and every target and task whose time
differs from the plain publish's (the first log) by 5 ms or more, largest difference first.
"""
import os
import re
import sys

ENTRY = re.compile(r"^\s*(\d+) ms\s+(.+?)\s+(\d+) calls\s*$")


def read(path):
    times, section, runcible, elapsed = {}, None, [], "?"
    for line in open(path, encoding="utf-8", errors="replace"):
        line = line.rstrip("\n")
        header = re.match(r"^\s*(\w+(?: \w+)?) Performance Summary:", line)
        if header:
            section = header.group(1)
            continue
        entry = ENTRY.match(line)
        if entry and section in ("Target", "Task"):
            times[(section, entry.group(2))] = int(entry.group(1))
            continue
        if line.strip() and not entry:
            section = None
        if re.search(r"Runcible: .*\d ms", line) and line.strip() not in runcible:
            runcible.append(line.strip())
        found = re.match(r"^\s*Time Elapsed (\S+)", line)
        if found:
            elapsed = found.group(1)
    return times, runcible, elapsed


plain, _, plain_elapsed = read(sys.argv[1])
print(f"{os.path.basename(sys.argv[1])}: Time Elapsed {plain_elapsed}")
for path in sys.argv[2:]:
    times, runcible, elapsed = read(path)
    print(f"{os.path.basename(path)}: Time Elapsed {elapsed}")
    for line in runcible:
        print(f"  {line}")
    keys = set(times) | set(plain)
    for key in sorted(keys, key=lambda k: -abs(times.get(k, 0) - plain.get(k, 0))):
        ours, theirs = times.get(key, 0), plain.get(key, 0)
        if abs(ours - theirs) >= 5:
            print(f"  {key[0].lower():<6} {key[1]:<52} {ours:>6} ms (plain {theirs} ms)")
