#!/usr/bin/env python3
"""`make run` stopped by a signal leaves nothing running, and a run that finds another run's
services names them instead of reusing them (README, "Running it"; scripts/run-local.sh).

    scripts/check-make-run.py              every case
    scripts/check-make-run.py CASE...      some of them (names below, as printed)

Each case starts the real `make run` on ports of its own, in a run directory of its own, with the
binaries of HERALD_BIN_DIR (default target/debug, what `make test` built) and the signal
dispositions a terminal gives a job (all default: a shell started in the background would give
`make` SIGINT ignored). It waits for "Herald is running", then:

  * <signal>-to-group, for SIGINT, SIGTERM and SIGHUP: the signal to make's process group, as
    Ctrl-C, `timeout` or a closing terminal send it;
  * <signal>-to-make: the signal to the `make` process alone, as `kill PID` does;
  * terminal-closed: output to a terminal (a pseudo-terminal) that then closes, and SIGHUP to the
    group, as closing a terminal window does: every write of the stopping run then fails;

and checks that make exits, that every process of the run has ended (those whose environment names
the run directory, those its pid files name, those listening on its ports) within the drain
timeout's bound, that every port is free, and that the run said it stopped in order.

  * broker-gone: the broker killed while notifications are accepted, then SIGTERM to the group: the
    API and the worker, whose producers and consumers then wait for a broker that never answers,
    still stop by themselves within the bound (no SIGKILL needed);
  * second-signal: a provider call that hangs holds the drain; a second SIGTERM to the group three
    seconds after the first ends the API and the worker at once, and the whole run well before a
    drained stop would have;
  * make-stop: `make stop` from elsewhere (another terminal) while the run runs;
  * reuse-services: with HERALD_REUSE_SERVICES=1 a run starts beside the services `make services`
    started (another run directory) and, stopped, leaves them running; `make stop` there ends them;
  * left-behind: a run killed outright (SIGKILL to its process group) leaves its services; a second
    run on the same ports, from another run directory and from the same one, refuses to start and
    names them and `make stop`; `make stop` then ends them all.
"""

import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPOSITORY / "scripts" / "lib"))
import port_owner  # noqa: E402  (scripts/lib, beside this script's library)

# The worker's drain timeout for these runs; the run waits at most twice that and 15 s for the API
# and the worker (scripts/lib/stack.sh), then the services stop (Kafka in a few seconds).
DRAIN_TIMEOUT_MS = 10_000
STOP_BOUND_SECONDS = 2 * DRAIN_TIMEOUT_MS / 1000 + 15 + 45
START_TIMEOUT_SECONDS = 300
SIGNALS = {"sigint": signal.SIGINT, "sigterm": signal.SIGTERM, "sighup": signal.SIGHUP}


def free_port(chosen: set[int]) -> int:
    """A free port below the ephemeral range (32768 and up): the kernel never hands one of these to
    another test's outgoing connection in the minute between this choice and the run's bind."""
    while True:
        port = random.randrange(20_000, 32_000)
        if port in chosen:  # free still, but already given to another setting of this run
            continue
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
        chosen.add(port)
        return port


def port_is_open(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(0.5)
        return probe.connect_ex(("127.0.0.1", port)) == 0


class Ports:
    """The ports one run listens on, each with the setting that gives it."""

    def __init__(self):
        chosen: set[int] = set()
        self.by_setting = {
            setting: free_port(chosen)
            for setting in (
                "HERALD_PG_PORT",
                "HERALD_REDIS_PORT",
                "HERALD_KAFKA_PORT",
                "HERALD_KAFKA_CONTROLLER_PORT",
                "HERALD_SERVER__PORT",
                "HERALD_SERVER__METRICS_PORT",
                "HERALD_WORKER__METRICS_PORT",
                "HERALD_SIM_LISTEN",
                "HERALD_SIM_SMTP_LISTEN",
                "HERALD_PROMETHEUS_PORT",
            )
        }

    def environment(self) -> dict[str, str]:
        return {
            setting: f"127.0.0.1:{port}" if setting.startswith("HERALD_SIM_") else str(port)
            for setting, port in self.by_setting.items()
        }

    def open_ones(self) -> list[str]:
        return [
            f"{setting}={port}" for setting, port in self.by_setting.items() if port_is_open(port)
        ]


def run_environment(run_dir: Path, ports: Ports) -> dict[str, str]:
    # Nothing of the caller's Herald settings (`make test` exports its services' URLs).
    environment = {name: value for name, value in os.environ.items() if not name.startswith("HERALD_")}
    environment.update(ports.environment())
    environment.update(
        HERALD_RUN_DIR=str(run_dir),
        HERALD_BIN_DIR=os.environ.get("HERALD_BIN_DIR", "target/debug"),
        HERALD_KAFKA_HEAP="-Xms256m -Xmx512m",
        HERALD_WORKER__DRAIN_TIMEOUT_MS=str(DRAIN_TIMEOUT_MS),
    )
    for passed_on in ("HERALD_CACHE_DIR",):
        if passed_on in os.environ:
            environment[passed_on] = os.environ[passed_on]
    return environment


def as_a_terminal_gives_it():
    """The child's signal dispositions: default, as a terminal's job control gives a job."""
    for number in (signal.SIGINT, signal.SIGQUIT, signal.SIGTERM, signal.SIGHUP, signal.SIGPIPE):
        signal.signal(number, signal.SIG_DFL)


def start_make(
    command: str, run_dir: Path, ports: Ports, log_path: Path, output=None, settings=None
) -> subprocess.Popen:
    log = output if output is not None else open(log_path, "ab")
    return subprocess.Popen(
        ["make", "--no-print-directory", command],
        cwd=REPOSITORY,
        env={**run_environment(run_dir, ports), **(settings or {})},
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # a process group of its own, as a terminal's job has
        preexec_fn=as_a_terminal_gives_it,
    )


def log_text(log_path: Path) -> str:
    return log_path.read_text(errors="replace")


def wait_until_running(make: subprocess.Popen, log_path: Path):
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while "Herald is running" not in log_text(log_path):
        if make.poll() is not None:
            raise Failure(f"make run exited ({make.returncode}) before it ran", log_path)
        if time.monotonic() > deadline:
            raise Failure(f"make run was not running after {START_TIMEOUT_SECONDS} s", log_path)
        time.sleep(0.5)


def running(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            state = stat.read().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def processes_of_run(run_dir: Path, ports: Ports) -> dict[int, str]:
    """Every process of the run: its environment names the run directory, a pid file of the run
    names it, or it listens on one of the run's ports."""
    marker = f"HERALD_RUN_DIR={run_dir}".encode()
    found = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            with open(f"/proc/{entry}/environ", "rb") as environment:
                if marker in environment.read().split(b"\0"):
                    found[int(entry)] = port_owner.command_of(int(entry))
        except OSError:
            continue
    for pid_file in run_dir.glob("*.pid"):
        fields = pid_file.read_text().split()
        if fields and fields[0].isdigit():
            found.setdefault(int(fields[0]), port_owner.command_of(int(fields[0])))
    for port in ports.by_setting.values():
        inodes = port_owner.listening_inodes(port)
        pid = port_owner.process_holding(inodes) if inodes else None
        if pid is not None:
            found.setdefault(pid, port_owner.command_of(pid))
    return {pid: command for pid, command in found.items() if running(pid)}


class Failure(Exception):
    def __init__(self, message: str, log_path: Path | None = None):
        if log_path is not None:
            tail = "\n".join(log_text(log_path).splitlines()[-40:])
            message = f"{message}\n---- {log_path} (last 40 lines) ----\n{tail}"
        super().__init__(message)


def wait_until_all_ended(make, run_dir, ports, started, log_path) -> float:
    """Seconds from `started` until make and every process of the run had ended and every port was
    free; fails past the bound."""
    deadline = started + STOP_BOUND_SECONDS
    while True:
        left = processes_of_run(run_dir, ports)
        open_ports = ports.open_ones()
        if make.poll() is not None and not left and not open_ports:
            return time.monotonic() - started
        if time.monotonic() > deadline:
            described = "; ".join(f"{pid} {command}" for pid, command in sorted(left.items()))
            raise Failure(
                f"{STOP_BOUND_SECONDS:.0f} s after the signal: make "
                f"{'exited ' + str(make.returncode) if make.poll() is not None else 'still runs'}, "
                f"processes left: [{described}], ports open: {open_ports}",
                log_path,
            )
        time.sleep(0.25)


def make_stop_ends_everything(run_dir: Path, ports: Ports, log_path: Path) -> float:
    """Runs `make stop` for `run_dir`; the seconds until everything of that run had ended."""
    started = time.monotonic()
    stop = start_make("stop", run_dir, ports, log_path)
    if stop.wait(timeout=STOP_BOUND_SECONDS) != 0:
        raise Failure(f"make stop exited {stop.returncode}", log_path)
    return wait_until_all_ended(stop, run_dir, ports, started, log_path)


def stop_everything_left(run_dir: Path, ports: Ports):
    """After a failed case: nothing of it may outlive the check."""
    subprocess.run(
        ["scripts/run-local.sh", "stop"],
        cwd=REPOSITORY,
        env=run_environment(run_dir, ports),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        timeout=300,
    )
    for pid in processes_of_run(run_dir, ports):
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass


class Terminal:
    """A pseudo-terminal whose output is copied to a log until it is closed."""

    def __init__(self, log_path: Path):
        import pty
        import threading

        self.controller, self.device = pty.openpty()
        self.log = open(log_path, "ab", buffering=0)
        self.copier = threading.Thread(target=self._copy, daemon=True)
        self.copier.start()

    def _copy(self):
        while True:
            try:
                chunk = os.read(self.controller, 65536)
            except OSError:
                return
            if not chunk:
                return
            self.log.write(chunk)

    def close(self):
        """As a terminal window closing: writes to the device fail from now on (EIO)."""
        os.close(self.controller)


def call_run(log_path: Path, component: str, method: str, path: str, body: dict):
    """A JSON request to the API or the simulator whose address the run printed."""
    import json
    import re
    import urllib.request

    text = log_text(log_path)
    base = re.search(rf"{component} +(http://\S+)", text).group(1)
    headers = {"Content-Type": "application/json"}
    if component == "API":
        key = re.search(r"API key +(\S+)", text).group(1)
        headers["Authorization"] = f"Bearer {key}"
    request = urllib.request.Request(
        f"{base}{path}", data=json.dumps(body).encode(), method=method, headers=headers
    )
    with urllib.request.urlopen(request, timeout=15) as response:
        if response.status >= 300:
            raise Failure(f"{method} {base}{path}: {response.status}", log_path)


def accept_notifications(log_path: Path, count: int):
    """Puts a user and accepts `count` notifications for it, through the API the run printed."""
    call_run(log_path, "API", "PUT", "/v1/users/u1", {"email": "ops@example.com", "phone": "+14155550100"})
    for _ in range(count):
        call_run(log_path, "API", "POST", "/v1/notifications", {
            "user_ids": ["u1"], "channels": ["email", "sms"],
            "content": {"subject": "Alert", "body": "Pressure"},
        })


def signal_case(name: str, number: int, to_group: bool, run_dir: Path, ports: Ports, logs: Path):
    log_path = logs / f"{name}.log"
    terminal = Terminal(log_path) if name == "terminal-closed" else None
    make = start_make("run", run_dir, ports, log_path, terminal.device if terminal else None)
    if terminal:
        os.close(terminal.device)
    try:
        wait_until_running(make, log_path)
        before = processes_of_run(run_dir, ports)
        services = [command for command in before.values() if "postgres -D" in command or command.startswith("java ")]
        if len(services) < 2:
            raise Failure(f"the run's processes were not found: {before}", log_path)
        started = time.monotonic()
        if terminal:
            terminal.close()
        if name == "broker-gone":
            accept_notifications(log_path, 5)
            broker = int((run_dir / "kafka.pid").read_text().split()[0])
            os.kill(broker, signal.SIGKILL)
            accept_notifications(log_path, 20)  # committed; their publishing now waits in vain
            time.sleep(2)
            started = time.monotonic()
        if name == "second-signal":
            # Twilio's calls hang (its 10 s timeout ends them): a drained stop waits for the one in
            # flight, up to the drain timeout.
            call_run(log_path, "Simulator", "PUT", "/_sim/config/twilio", {"latency_ms": 60_000})
            accept_notifications(log_path, 1)
            time.sleep(2)  # claimed, its SMS in the call
            started = time.monotonic()
            os.killpg(make.pid, number)
            time.sleep(3)
            if make.poll() is not None:
                raise Failure("the run stopped before the second signal: nothing held its drain", log_path)
        if name == "make-stop":
            stop = start_make("stop", run_dir, ports, logs / "make-stop-command.log")
            if stop.wait(timeout=STOP_BOUND_SECONDS) != 0:
                raise Failure(f"make stop exited {stop.returncode}", logs / "make-stop-command.log")
        elif to_group:
            os.killpg(make.pid, number)
        else:
            os.kill(make.pid, number)
        worker_ended_after = None
        if name == "second-signal":
            worker = int((run_dir / "worker.pid").read_text().split()[0])
            second = time.monotonic()
            while running(worker) and time.monotonic() - second < 15:
                time.sleep(0.05)
            worker_ended_after = time.monotonic() - second
        took = wait_until_all_ended(make, run_dir, ports, started, log_path)
        if terminal:
            # What the run said went to a terminal that had gone; its pid files tell the rest.
            return f"{len(before)} processes ended {took:.1f} s after the terminal closed, ports free"
        text = log_text(log_path)
        first_stop = text.find("[run] stopping: the API and the worker first")
        services_stop = text.find("[run] stopping the services this run started")
        if not 0 <= first_stop < services_stop or "[run] stopped" not in text:
            raise Failure("the run did not say it stopped in order", log_path)
        if "of SIGTERM; killing it" in text:  # scripts/lib/pids.sh says so
            raise Failure("a process had to be killed: it did not stop by itself", log_path)
        if worker_ended_after is not None:
            # A drained stop would have held the worker until the call's 10 s timeout.
            if worker_ended_after > 2 or "[run] second signal" not in text:
                raise Failure(f"the second signal did not end the worker at once: it ran "
                              f"{worker_ended_after:.1f} s more", log_path)
            return (f"the worker ended {worker_ended_after:.2f} s after the second signal (3 s after the "
                    f"first, its drain held by a hanging call); all {len(before)} processes {took:.1f} s")
        return f"{len(before)} processes ended {took:.1f} s after the signal, ports free"
    except BaseException:
        stop_everything_left(run_dir, ports)
        raise


def left_behind_case(run_dir: Path, ports: Ports, logs: Path):
    log_path = logs / "left-behind.log"
    first = start_make("run", run_dir, ports, log_path)
    try:
        wait_until_running(first, log_path)
        os.killpg(first.pid, signal.SIGKILL)  # make and the script, at once: no stop at all
        first.wait()
        left = processes_of_run(run_dir, ports)
        if not any(command.startswith("java ") for command in left.values()):
            raise Failure(f"the killed run left no broker, nothing to find: {left}", log_path)

        for second_run_dir in (run_dir.parent / "another-run", run_dir):
            second_log = logs / f"left-behind-second-{second_run_dir.name}.log"
            second = start_make("run", second_run_dir, ports, second_log)
            try:
                second.wait(timeout=60)
            except subprocess.TimeoutExpired:
                second.kill()
                raise Failure("a run beside another's services did not refuse to start", second_log)
            text = log_text(second_log)
            wanted = [
                "not starting",
                f"port {ports.by_setting['HERALD_PG_PORT']} (postgres, HERALD_PG_PORT) is held by pid",
                f"port {ports.by_setting['HERALD_KAFKA_PORT']} (kafka, HERALD_KAFKA_PORT) is held by pid",
                f"port {ports.by_setting['HERALD_SERVER__PORT']} (api, HERALD_SERVER__PORT) is held by pid",
                f"HERALD_RUN_DIR={run_dir} make stop",
            ]
            missing = [line for line in wanted if line not in text]
            if second.returncode == 0 or missing:
                raise Failure(f"exit {second.returncode}; not said: {missing}", second_log)
            if "Herald is running" in text:
                raise Failure("the second run started", second_log)

        took = make_stop_ends_everything(run_dir, ports, logs / "left-behind-make-stop.log")
        return (
            f"{len(left)} processes left by a killed run; two runs refused to start beside them; "
            f"make stop ended them in {took:.1f} s"
        )
    except BaseException:
        stop_everything_left(run_dir, ports)
        raise


def reuse_services_case(work: Path, ports: Ports, logs: Path):
    services_dir, run_dir = work / "services-run", work / "reusing-run"
    services_log = logs / "reuse-services-services.log"
    try:
        if start_make("services", services_dir, ports, services_log).wait(timeout=START_TIMEOUT_SECONDS) != 0:
            raise Failure("make services failed", services_log)
        backing = {setting: port for setting, port in ports.by_setting.items()
                   if setting in ("HERALD_PG_PORT", "HERALD_REDIS_PORT", "HERALD_KAFKA_PORT")}
        log_path = logs / "reuse-services.log"
        make = start_make("run", run_dir, ports, log_path, settings={"HERALD_REUSE_SERVICES": "1"})
        wait_until_running(make, log_path)
        herald = {int(path.read_text().split()[0]) for path in run_dir.glob("*.pid")}
        os.killpg(make.pid, signal.SIGTERM)
        make.wait(timeout=STOP_BOUND_SECONDS)
        still = [pid for pid in herald if running(pid)]
        closed = [setting for setting, port in backing.items() if not port_is_open(port)]
        if still or closed:
            raise Failure(f"after the reusing run stopped: its processes {still} still run, "
                          f"reused services {closed} were stopped", log_path)
        took = make_stop_ends_everything(services_dir, ports, logs / "reuse-services-stop.log")
        return (f"a run reusing make services' PostgreSQL, Redis and Kafka left them running when it "
                f"stopped; make stop ended them in {took:.1f} s")
    except BaseException:
        stop_everything_left(run_dir, ports)
        stop_everything_left(services_dir, ports)
        raise


def main() -> int:
    cases = []
    for signal_name, number in SIGNALS.items():
        cases.append((f"{signal_name}-to-group", number, True))
        cases.append((f"{signal_name}-to-make", number, False))
    cases.append(("terminal-closed", signal.SIGHUP, True))
    cases.append(("broker-gone", signal.SIGTERM, True))
    cases.append(("second-signal", signal.SIGTERM, True))
    cases.append(("make-stop", 0, False))
    names = [name for name, _, _ in cases] + ["reuse-services", "left-behind"]
    wanted = sys.argv[1:] or names
    unknown = [name for name in wanted if name not in names]
    if unknown:
        print(f"unknown cases {unknown}; known: {names}", file=sys.stderr)
        return 2
    binaries = REPOSITORY / os.environ.get("HERALD_BIN_DIR", "target/debug")
    if not (binaries / "herald-api").exists():
        print(f"no binaries in {binaries}: build them (make test does) or set HERALD_BIN_DIR", file=sys.stderr)
        return 2

    work = Path(tempfile.mkdtemp(prefix="herald-make-run-"))
    work.chmod(0o755)  # PostgreSQL runs as its own user, in a directory below
    logs = work / "logs"
    logs.mkdir()
    # One run directory and one set of ports for the signal cases: each run starts where the last
    # stopped, which also shows that a stopped run leaves its ports free and its storage usable.
    ports = Ports()
    run_dir = work / "run"
    runners = [
        (name, lambda name=name, number=number, to_group=to_group:
            signal_case(name, number, to_group, run_dir, ports, logs))
        for name, number, to_group in cases
    ]
    runners.append(("reuse-services", lambda: reuse_services_case(work, Ports(), logs)))
    runners.append(("left-behind", lambda: left_behind_case(work / "left-behind-run", Ports(), logs)))
    failures = 0
    for name, run_case in runners:
        if name not in wanted:
            continue
        try:
            print(f"[make-run] {name}: {run_case()}", flush=True)
        except Failure as failure:
            failures += 1
            print(f"[make-run] {name}: FAILED: {failure}", flush=True)
    if failures:
        print(f"[make-run] {failures} case(s) failed; logs in {logs}", flush=True)
        return 1
    if os.environ.get("HERALD_KEEP_LOGS") != "1":
        shutil.rmtree(work, ignore_errors=True)
    else:
        print(f"[make-run] logs in {logs}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
