"""What the processes of a local Herald use, read from /proc: the scripts' one way to find a process
by its listening port and to measure it (memory and descriptors for the soak, CPU for the bench).

A target is `NAME=PID` or `NAME=port:PORT` (the process listening on that TCP port). A PostgreSQL
target is the postmaster and every backend; a `setsid` wrapper is looked through.

    python3 scripts/lib/processes.py cpu NAME=SPEC...
        prints {"NAME": {"cpu_seconds": ..., "pids": [...]}, ...}: CPU used so far (user + system)

The CPU of a PostgreSQL target counts its backends that have exited too (the postmaster's reaped
children), so the difference of two readings is the CPU of that window however many connections
opened and closed in it.
"""

import json
import os
import sys

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def listening_pid(port):
    """The pid of the process with a TCP socket listening on `port`, or None."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = open(table).read().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:
                inodes.add(fields[9])
    if not inodes:
        return None
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            for fd in os.listdir(f"/proc/{pid}/fd"):
                link = os.readlink(f"/proc/{pid}/fd/{fd}")
                if link.startswith("socket:[") and link[8:-1] in inodes:
                    return int(pid)
        except OSError:
            continue
    return None


def children(pid):
    found = []
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            found += [int(c) for c in open(f"/proc/{pid}/task/{task}/children").read().split()]
    except OSError:
        pass
    return found


def command_name(pid):
    try:
        return open(f"/proc/{pid}/comm").read().strip()
    except OSError:
        return None


def resolve(spec):
    """The pids a target spec names: one process, or a PostgreSQL postmaster and its backends."""
    pid = listening_pid(int(spec[5:])) if spec.startswith("port:") else int(spec)
    if pid is None:
        return []
    # setsid may have forked: measure the program, not the wrapper.
    if command_name(pid) == "setsid" and children(pid):
        pid = children(pid)[0]
    name = command_name(pid)
    if name is None:
        return []
    if name in ("postgres", "postmaster"):
        return [pid] + children(pid)
    return [pid]


def cpu_seconds(pids):
    """User + system CPU of `pids`; for the first (a postmaster), also of its reaped children."""
    total_ticks = 0
    for index, pid in enumerate(pids):
        try:
            # Fields after the command (which may hold spaces) start at index 2 of the split rest.
            fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        utime, stime, cutime, cstime = (int(fields[i]) for i in (11, 12, 13, 14))
        total_ticks += utime + stime
        if index == 0 and len(pids) > 1:
            total_ticks += cutime + cstime
    return total_ticks / CLOCK_TICKS


def memory(pids):
    """RSS, PSS, descriptors and threads of `pids` summed, or None when none is alive."""
    total = {"pid": pids[0] if pids else None, "processes": 0, "rss_kb": 0, "pss_kb": 0, "fds": 0, "threads": 0}
    for pid in pids:
        try:
            status = dict(line.split(":", 1) for line in open(f"/proc/{pid}/status").read().splitlines() if ":" in line)
            fds = len(os.listdir(f"/proc/{pid}/fd"))
        except OSError:
            continue
        total["processes"] += 1
        total["rss_kb"] += int(status.get("VmRSS", "0 kB").split()[0])
        total["threads"] += int(status.get("Threads", "0").strip())
        total["fds"] += fds
        try:
            for line in open(f"/proc/{pid}/smaps_rollup"):
                if line.startswith("Pss:"):
                    total["pss_kb"] += int(line.split()[1])
        except OSError:
            pass
    return total if total["processes"] else None


def parse_targets(arguments):
    return [argument.split("=", 1) for argument in arguments]


def main(arguments):
    if not arguments or arguments[0] != "cpu":
        sys.exit(__doc__)
    readings = {}
    for name, spec in parse_targets(arguments[1:]):
        pids = resolve(spec)
        readings[name] = {"cpu_seconds": cpu_seconds(pids) if pids else None, "pids": pids[:1]}
    json.dump(readings, sys.stdout)
    print()


if __name__ == "__main__":
    main(sys.argv[1:])
