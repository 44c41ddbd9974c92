#!/usr/bin/env python3
"""Who listens on a TCP port of this machine: `port_owner.py PORT` prints one line,

    PID<US>HERALD_RUN_DIR<US>COMMAND

(US: the ASCII unit separator, 0x1f; HERALD_RUN_DIR empty when the process is not a Herald run's),
or nothing when no process this user can see listens there. `make run` uses it to name what holds a port it needs: another
run's service (then `HERALD_RUN_DIR=... make stop` ends it) or something that is not Herald's.

Reads /proc only (no `ss` or `lsof`, which a minimal machine may lack): the listening sockets'
inodes from /proc/net/tcp{,6}, then the process holding one of them open.
"""

import os
import sys

LISTEN_STATE = "0A"


def listening_inodes(port: int) -> set[str]:
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as lines:
                next(lines)  # the header
                for line in lines:
                    fields = line.split()
                    local_port = int(fields[1].rsplit(":", 1)[1], 16)
                    if local_port == port and fields[3] == LISTEN_STATE:
                        inodes.add(fields[9])
        except OSError:
            continue
    return inodes


def process_holding(inodes: set[str]) -> int | None:
    wanted = {f"socket:[{inode}]" for inode in inodes}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            for descriptor in os.listdir(f"/proc/{entry}/fd"):
                if os.readlink(f"/proc/{entry}/fd/{descriptor}") in wanted:
                    return int(entry)
        except OSError:
            continue  # gone meanwhile, or not ours to see
    return None


def run_dir_of(pid: int) -> str:
    """The run directory in the process's environment, or else the one it works in when a pid file
    there names it: Redis writes its process title over its environment, and runs in the run
    directory (`--dir`)."""
    try:
        with open(f"/proc/{pid}/environ", "rb") as environment:
            for variable in environment.read().split(b"\0"):
                if variable.startswith(b"HERALD_RUN_DIR="):
                    return variable.split(b"=", 1)[1].decode(errors="replace")
    except OSError:
        pass
    try:
        directory = os.readlink(f"/proc/{pid}/cwd")
        for name in os.listdir(directory):
            if name.endswith(".pid"):
                with open(os.path.join(directory, name)) as pid_file:
                    if pid_file.read().split()[:1] == [str(pid)]:
                        return directory
    except (OSError, UnicodeDecodeError):
        pass
    return ""


def command_of(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as command:
            words = command.read().rstrip(b"\0").split(b"\0")
    except OSError:
        return "?"
    line = " ".join(word.decode(errors="replace") for word in words)
    return line if len(line) <= 120 else line[:117] + "..."


def main() -> int:
    if len(sys.argv) != 2 or not sys.argv[1].isdigit():
        print("usage: port_owner.py PORT", file=sys.stderr)
        return 2
    inodes = listening_inodes(int(sys.argv[1]))
    pid = process_holding(inodes) if inodes else None
    if pid is not None:
        print("\x1f".join([str(pid), run_dir_of(pid), command_of(pid)]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
