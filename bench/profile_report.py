#!/usr/bin/env python3
"""bench/profile_report.py PERF_SCRIPT_OUTPUT [--json OUT]: where the CPU went during a profile.

Reads `perf script -F comm,ip,sym` output of a system-wide `perf record -a -g` and prints, as
shares of all samples (all CPUs: 100 % = every core busy for the whole window):
  - the share of each thread name (pm-ingestd names its threads pm-conn, pm-lane, pm-writer, ...;
    PostgreSQL backends are `postgres`, idle CPU is `swapper`);
  - for the busiest threads, the system calls and the functions their samples sit in;
  - for PostgreSQL, the share under COPY and, within COPY, under B-tree insertion.
"""
import argparse
import collections
import json
import re
import sys

SYSCALL = re.compile(r"__(?:x64|se)_sys_(\w+)")


def samples(path):
    """Yields (comm, [frames, leaf first]) per sample."""
    comm, stack = None, []
    with open(path, errors="replace") as f:
        for line in f:
            if not line.strip():
                if comm is not None:
                    yield comm, stack
                comm, stack = None, []
            elif not line[0].isspace():
                comm = line.split()[0]
            else:
                parts = line.split(None, 1)
                if len(parts) > 1:
                    stack.append(parts[1].strip().split("+0x")[0])
    if comm is not None:
        yield comm, stack


def short(name):
    """A C++ function without its parameter list and template arguments."""
    name = name.replace("(anonymous namespace)", "{anon}")
    name = re.sub(r"\(.*", "", name)
    while "<" in name and re.search(r"<[^<>]*>", name):
        name = re.sub(r"<[^<>]*>", "", name)
    return name


def where(stack):
    """The system call a sample is in, else its leaf function."""
    for frame in stack:
        m = SYSCALL.match(frame)
        if m:
            return "syscall " + m.group(1)
    return short(stack[0]) if stack else "?"


def group_of(comm):
    return re.sub(r"[/:].*", "", comm) if comm.startswith("kworker") else comm


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("script")
    ap.add_argument("--json")
    ap.add_argument("--top", type=int, default=8)
    a = ap.parse_args()
    by_comm = collections.Counter()
    inside = collections.defaultdict(collections.Counter)
    pg_copy = pg_btree = 0
    total = 0
    for comm, stack in samples(a.script):
        total += 1
        g = group_of(comm)
        by_comm[g] += 1
        inside[g][where(stack)] += 1
        if g == "postgres" and any(f == "CopyFrom" for f in stack):
            pg_copy += 1
            pg_btree += any(f == "_bt_doinsert" for f in stack)
    if total == 0:
        sys.exit("profile_report: no samples in " + a.script)
    pct = lambda n: 100.0 * n / total
    print(f"{total} samples; shares of all CPUs")
    print("\n| thread | share of the machine |\n|---|---|")
    for g, n in by_comm.most_common():
        if pct(n) >= 0.5:
            print(f"| {g} | {pct(n):.1f} % |")
    for g, n in by_comm.most_common(6):
        if g == "swapper":
            continue
        print(f"\n{g} ({pct(n):.1f} %): " + ", ".join(f"{w} {100.0 * c / n:.0f} %" for w, c in inside[g].most_common(a.top)))
    pg = by_comm.get("postgres", 0)
    if pg:
        print(f"\npostgres: COPY {100.0 * pg_copy / pg:.0f} % of its samples; B-tree insertion (_bt_doinsert) "
              f"{100.0 * pg_btree / max(pg_copy, 1):.0f} % of COPY")
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"samples": total, "share_pct": {g: round(pct(n), 2) for g, n in by_comm.items()},
                       "postgres_copy_pct": round(100.0 * pg_copy / pg, 1) if pg else None,
                       "postgres_btree_of_copy_pct": round(100.0 * pg_btree / max(pg_copy, 1), 1) if pg else None}, f)


if __name__ == "__main__":
    main()
