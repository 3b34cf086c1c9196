"""The benchmark: the tool at scale next to the broker's own floor, quiet and busy, in one run.

    .venv/bin/python bench/run.py --objects 1000 10000 50000 [--queues 10000] [--out bench/results.json]
    .venv/bin/python bench/report.py bench/results.json     # the docs' table and chart from it

For each size, a throw-away vhost ``topology-bench-<random>`` gets a generated topology: queues
(with a TTL, a length limit and a dead-letter exchange), as many bindings, one exchange per 20
queues and one policy per 500 queues (at least one of each). ``--objects`` sizes it by the number
of objects (at least that many), ``--queues`` by its queues. Each phase runs
the command line in its own process (``bench/phase.py``), which reports the command's wall time,
the CPU seconds of the tool's process, its HTTP requests and its peak memory:

- ``validate``: the files alone, no broker;
- ``plan cold``: the vhost does not exist yet;
- ``apply create``: creating everything;
- ``plan no-op`` and ``apply no-op``: nothing to do;
- ``plan 1%``: against the full broker, with 1% of the queues bound by a new key;
- ``apply 1%``: applying that (with ``--prune``: each changed binding is one delete, one create);
- ``prune``: ``apply --prune`` of files that declare the vhost with none of its queues, deleting
  every queue (and so every binding).

The floor, measured in the same run under the same condition: ``GET /api/definitions/{vhost}``
of the full vhost, one ``POST /api/definitions/{vhost}`` of the same objects into an empty
vhost, and the ``DELETE /api/queues/{vhost}/{name}`` of every queue from 8 threads with a
keep-alive session each (the queues re-created by a definitions POST, not timed, between the
tool's prune and the floor's). Every figure and its floor are measured ``--runs`` times (3) in
turns, so that a slow minute of the broker falls on both, and the median is kept.

Each size is measured twice: quiet, then busy, with one process spinning on one core beside
each measurement (started just before it, stopped just after; it also stops by itself when the
benchmark's process is gone, and after an hour whatever happens). The package measured is the one
beside the benchmark (to measure another checkout, run its own ``bench/run.py``; ``PYTHONPATH`` is
refused): its bytecode is compiled first, as an installation would leave it, every measured run is
checked to have imported it, the results name its commit, and the benchmark stops if its files or
their bytecode changed, checked after each size. The vhosts are deleted at the end, whatever
happens; ``--out`` writes everything as JSON after each size.

``--instructions`` also counts, once for each size and on the quiet machine, the instructions of
``validate`` and of a ``plan`` with nothing to do (valgrind's callgrind, which runs them about 50
times slower): unlike CPU seconds, which change by the hour on a shared machine, two runs of the
same build count them within 0.5%, and so they compare builds measured on different days.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import quote

import requests
import yaml

import report as report_

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = (ROOT / "topology").resolve()
"""The package measured: the one beside the benchmark. ``bench/phase.py`` puts it first on the path,
and ``python -m topology`` run in ``ROOT`` finds it first (checked before measuring); to measure
another checkout, run that checkout's own ``bench/run.py``."""
URL = os.environ.get("TOPOLOGY_URL", "http://127.0.0.1:15672").rstrip("/")
AUTH = (os.environ.get("TOPOLOGY_USER", "guest"), os.environ.get("TOPOLOGY_PASSWORD", "guest"))
DELETE_THREADS = 8
SPIN_LIMIT_SECONDS = 3600

# The load beside a busy measurement: one process spinning on one core. It says when it runs,
# and stops when its parent is gone (the benchmark killed) or after SPIN_LIMIT_SECONDS.
SPIN = """
import os, signal, sys, time
signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the benchmark's to handle: it stops this
parent, end = os.getppid(), time.monotonic() + float(sys.argv[1])
print("spinning", flush=True)
while time.monotonic() < end and os.getppid() == parent:
    for _ in range(20_000):
        pass
"""


def counts(queues: int) -> dict[str, int]:
    """How many objects of each kind the generated files of ``queues`` queues hold."""
    return {"queues": queues, "bindings": queues, "exchanges": max(1, queues // 20) + 1,
            "policies": max(1, queues // 500)}


def queues_for(objects: int) -> int:
    """The least queue count whose generated files hold at least ``objects`` objects."""
    queues = max(1, int((objects - 2) / 2.1))  # at most the answer: about 2.05 objects a queue
    while sum(counts(queues).values()) < objects:
        queues += 1
    return queues


def topology(vhost: str, queues: int, changed: bool = False, without_queues: bool = False) -> dict:
    """The generated files; ``changed``: 1% of the queues bound by a new key; ``without_queues``:
    the vhost with its exchanges and policies but none of its queues (nor so of its bindings)."""
    exchanges = counts(queues)["exchanges"] - 1
    bump = max(1, queues // 100) if changed else 0
    kept = 0 if without_queues else queues
    return {"vhosts": {vhost: {
        "exchanges": {f"x-{i}": {"type": "topic" if i % 2 else "direct"} for i in range(exchanges)}
        | {"dlx": {"type": "fanout"}},
        "queues": {f"q-{i}": {"message_ttl": 3_600_000, "max_length": 100_000 + i, "dead_letter_exchange": "dlx"}
                   for i in range(kept)},
        "bindings": [{"source": f"x-{i % exchanges}", "destination": f"q-{i}",
                      "routing_key": f"key.{i}{'.v2' if i < bump else ''}"} for i in range(kept)],
        "policies": {f"p-{i}": {"pattern": f"^q-{i}", "apply_to": "queues", "priority": i,
                                "definition": {"expires": 86_400_000 + i}} for i in range(counts(queues)["policies"])},
    }}}


@contextmanager
def load(busy: bool):
    """One core spinning for the time of the block when ``busy``; stopped whatever happens."""
    if not busy:
        yield
        return
    spinner = subprocess.Popen([sys.executable, "-c", SPIN, str(SPIN_LIMIT_SECONDS)], stdout=subprocess.PIPE,
                               stdin=subprocess.DEVNULL, text=True)
    try:
        spinner.stdout.readline()  # it runs
        yield
    finally:
        spinner.kill()
        spinner.wait()
        spinner.stdout.close()


def median(runs: list[dict]) -> dict:
    """The median run by wall time, with every run's seconds, CPU seconds and writes beside it."""
    ordered = sorted(runs, key=lambda run: run["seconds"])
    kept = dict(ordered[len(ordered) // 2])
    kept["all_seconds"] = [run["seconds"] for run in runs]
    if "cpu_seconds" in kept:
        kept["all_cpu_seconds"] = [run["cpu_seconds"] for run in runs]
        kept["all_write_requests"] = [run["write_requests"] for run in runs]
    return kept


def tool(name: str, busy: bool, *arguments: str) -> dict:
    """One run of the command line in its own process (``bench/phase.py``)."""
    with load(busy):
        started = time.perf_counter()
        result = subprocess.run([sys.executable, str(ROOT / "bench" / "phase.py"), *arguments],
                                capture_output=True, text=True, cwd=ROOT, check=False)
        total = time.perf_counter() - started
    line = next((l for l in reversed(result.stderr.splitlines()) if l.startswith("BENCH ")), None)
    if line is None:
        raise SystemExit(f"{name}: no measurement\n{result.stderr[-2000:]}")
    measured = json.loads(line[len("BENCH "):])
    if measured["package"] != str(PACKAGE):  # not the package compiled and named in the results
        raise SystemExit(f"bench: {name} ran the package in {measured['package']}, not {PACKAGE}")
    if measured["code"] not in (0, 2):
        raise SystemExit(f"{name}: exit {measured['code']}\n{result.stderr[-2000:]}")
    writes = sum(n for method, n in measured["requests"].items() if method != "GET")
    return {"seconds": round(measured["seconds"], 3), "cpu_seconds": round(measured["cpu_seconds"], 3),
            "process_seconds": round(total, 3), "process_cpu_seconds": round(measured["process_cpu_seconds"], 3),
            "requests": sum(measured["requests"].values()), "write_requests": writes, "peak_mb": measured["peak_mb"]}


SOURCES = ("topology/**/*.py", "bench/phase.py")
"""What a measured run executes of the checkout: the package and ``bench/phase.py``."""
MEASURED_FILES = (*SOURCES, "topology/**/*.pyc")
"""And the package's bytecode."""


def _paths(patterns: tuple[str, ...]) -> list[Path]:
    """The files of the checkout that ``patterns`` match, in a fixed order."""
    return [path for pattern in patterns for path in sorted(ROOT.glob(pattern))]


def _measured_files() -> dict[str, tuple[int, int]]:
    """The size and time of change of each of :data:`MEASURED_FILES`."""
    files = {}
    for path in _paths(MEASURED_FILES):
        stat = path.stat()
        files[str(path)] = (stat.st_size, stat.st_mtime_ns)
    return files


def build() -> str | None:
    """The commit of what is measured (see :func:`_commit`), checked before measuring: the package
    beside the benchmark, found first by ``python -m topology`` here too, its bytecode compiled as an
    installation leaves it (without it, where bytecode is not written, every run would compile the
    package first)."""
    if os.environ.get("PYTHONPATH") or os.environ.get("PYTHONSAFEPATH"):
        raise SystemExit("bench: measures the package beside it; unset PYTHONPATH and PYTHONSAFEPATH "
                         "(to measure another checkout, run its own bench/run.py)")
    found = subprocess.run([sys.executable, "-c", "import os, topology; print(os.path.realpath(topology.__file__))"],
                           capture_output=True, text=True, cwd=ROOT, check=False)
    if found.returncode != 0 or Path(found.stdout.strip()).parent != PACKAGE:
        ran = found.stdout.strip() or _last_line(found.stderr)
        raise SystemExit(f"bench: python -m topology here does not run {PACKAGE}: {ran}")
    compiled = subprocess.run([sys.executable, "-m", "compileall", "-q", str(PACKAGE)], capture_output=True,
                              text=True, cwd=ROOT, check=False)
    if compiled.returncode != 0:
        raise SystemExit(f"bench: compiling {PACKAGE} failed: {_last_line(compiled.stdout + compiled.stderr)}")
    commit = _commit()
    if commit is None:
        print(f"bench: {ROOT} is not a git checkout (or git is missing): the results name no commit",
              file=sys.stderr)
    return commit


def _last_line(output: str) -> str:
    lines = [line for line in output.splitlines() if line.strip()]
    return lines[-1].strip() if lines else "no message"


def _commit() -> str | None:
    """The checkout's commit; when what a run executes (:data:`SOURCES`) has changes not committed,
    ``+changes-`` and a digest of those files after it, so that two sets of changes are told apart.
    None where ``ROOT`` is not the top of a git checkout or git is missing."""
    if shutil.which("git") is None:
        return None
    git = ["git", "-C", str(ROOT)]
    top = subprocess.run([*git, "rev-parse", "--show-toplevel"], capture_output=True, text=True, check=False)
    if top.returncode != 0 or Path(top.stdout.strip()).resolve() != ROOT:
        return None
    commit = subprocess.run([*git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False)
    status = subprocess.run([*git, "status", "--porcelain", "--", *(f":(glob){pattern}" for pattern in SOURCES)],
                            capture_output=True, text=True, check=False)
    if commit.returncode != 0 or status.returncode != 0:
        return None
    if not status.stdout.strip():
        return commit.stdout.strip()
    digest = hashlib.sha256()
    for path in _paths(SOURCES):
        digest.update(str(path.relative_to(ROOT)).encode() + b"\0" + path.read_bytes() + b"\0")
    return f"{commit.stdout.strip()}+changes-{digest.hexdigest()[:8]}"


def instructions(*arguments: str) -> int:
    """Instructions the process ``python *arguments`` executes, counted by valgrind's callgrind:
    unlike CPU seconds they do not change with the machine's speed (the same count on a quiet and
    a busy machine). Python's hashes are seeded alike in each run, so that a run counts the same."""
    counted = subprocess.run(["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", sys.executable,
                              *arguments], capture_output=True, text=True, cwd=ROOT, check=False,
                             env={**os.environ, "PYTHONHASHSEED": "0"})
    command = " ".join(arguments)
    if counted.returncode != 0:  # a plan with something to do exits 2 (--detailed-exitcode)
        own = "\n".join(line for line in counted.stderr.splitlines() if not line.startswith("=="))  # not valgrind's
        raise SystemExit(f"bench: counting the instructions of {command} failed (exit {counted.returncode}): "
                         f"{_last_line(own)}")
    found = re.search(r"Collected : (\d+)", counted.stderr)
    if found is None:
        raise SystemExit(f"bench: valgrind gave no count of the instructions of {command}")
    return int(found.group(1))


def timed(busy: bool, request) -> float:
    """Seconds one raw request (or several) takes, under the condition."""
    with load(busy):
        started = time.perf_counter()
        request()
        return round(time.perf_counter() - started, 3)


def api(*parts: str) -> str:
    return URL + "/api/" + "/".join(quote(part, safe="") for part in parts)


def raw_get(session: requests.Session, vhost: str) -> None:
    session.get(api("definitions", vhost), timeout=900).raise_for_status()


def raw_post(vhost: str, body: dict) -> None:
    """The definitions import, on a connection of its own (a large one takes minutes)."""
    requests.post(api("definitions", vhost), json=body, auth=AUTH, timeout=1800,
                  headers={"connection": "close"}).raise_for_status()


def raw_deletes(vhost: str, names: list[str]) -> None:
    """``DELETE /api/queues/{vhost}/{name}`` of every name, from DELETE_THREADS threads with a
    keep-alive session each."""
    def delete(share: list[str]) -> None:
        with requests.Session() as session:
            session.auth = AUTH
            for name in share:
                session.delete(api("queues", vhost, name), timeout=120).raise_for_status()

    with ThreadPoolExecutor(DELETE_THREADS) as pool:
        list(pool.map(delete, [names[i::DELETE_THREADS] for i in range(DELETE_THREADS)]))


def queue_count(session: requests.Session, vhost: str) -> int:
    return len(session.get(api("queues", vhost), params={"columns": "name"}, timeout=300).json())


def delete_vhost(vhost: str) -> None:
    """Delete a vhost on a connection of its own (a large vhost takes a while), retried once if the
    broker drops it."""
    for attempt in range(2):
        try:
            requests.delete(api("vhosts", vhost), auth=AUTH, timeout=900, headers={"connection": "close"})
            return
        except requests.ConnectionError:
            if attempt:
                print(f"warning: could not delete vhost {vhost}: delete it by hand", file=sys.stderr)


def create_vhost(vhost: str) -> None:
    requests.put(api("vhosts", vhost), json={}, auth=AUTH, timeout=60).raise_for_status()


def measure(queues: int, busy: bool, runs: int, work: Path, session: requests.Session,
            python_start: int | None = None) -> dict:
    """Every phase and floor of one size under one condition, each ``runs`` times, in turns; with
    ``python_start`` (the instructions of Python's own start, counted once for the whole run), also
    the instructions of ``validate`` and of a ``plan`` with nothing to do (once each: runs count them
    within 0.5%)."""
    vhost = f"topology-bench-{uuid.uuid4().hex[:8]}"
    empty = f"{vhost}-floor"
    files, changed, pruned = (work / f"{vhost}{suffix}.yaml" for suffix in ("", "-changed", "-pruned"))
    files.write_text(yaml.safe_dump(topology(vhost, queues)), encoding="utf-8")
    changed.write_text(yaml.safe_dump(topology(vhost, queues, changed=True)), encoding="utf-8")
    pruned.write_text(yaml.safe_dump(topology(vhost, queues, without_queues=True)), encoding="utf-8")
    rendered = subprocess.run([sys.executable, "-m", "topology", "render", str(files), "--format", "definitions"],
                              capture_output=True, text=True, cwd=ROOT, check=True)
    document = json.loads(rendered.stdout)
    body = {kind: [{k: v for k, v in entry.items() if k != "vhost"} for entry in document.get(kind, [])]
            for kind in ("exchanges", "queues", "bindings", "policies")}
    names = [entry["name"] for entry in body["queues"]]
    phases: dict[str, list[dict]] = {}
    counted: dict[str, int] = {}
    floors: dict[str, list[float]] = {"get": [], "post": [], "delete": []}

    def run(phase: str, *arguments: str) -> None:
        phases.setdefault(phase, []).append(tool(phase, busy, *arguments))

    try:
        for _ in range(runs):
            run("validate", "validate", str(files))
            run("plan cold", "plan", str(files), "--format", "json")
        for turn in range(runs):
            if turn:
                delete_vhost(vhost)
            run("apply create", "apply", str(files), "--auto-approve")
            create_vhost(empty)
            try:
                floors["post"].append(timed(busy, lambda: raw_post(empty, body)))
            finally:
                delete_vhost(empty)
        for _ in range(runs):
            floors["get"].append(timed(busy, lambda: raw_get(session, vhost)))
            run("plan no-op", "plan", str(files), "--format", "json")
            run("apply no-op", "apply", str(files), "--auto-approve")
            run("plan 1%", "plan", str(changed), "--prune", "--format", "json")
        if python_start is not None:  # the vhost as the files declare it: the plan has nothing to do (else exit 2)
            counted = {"python": python_start,
                       "validate": instructions("-m", "topology", "validate", str(files)),
                       "plan no-op": instructions("-m", "topology", "plan", str(files), "--format", "json",
                                                  "--detailed-exitcode")}
        run("apply 1%", "apply", str(changed), "--prune", "--auto-approve")
        for turn in range(runs):
            if turn:
                raw_post(vhost, body)
            run("prune", "apply", str(pruned), "--prune", "--auto-approve")
            if left := queue_count(session, vhost):
                raise SystemExit(f"prune: {left} queues left in {vhost}")
            raw_post(vhost, body)
            floors["delete"].append(timed(busy, lambda: raw_deletes(vhost, names)))
            if left := queue_count(session, vhost):
                raise SystemExit(f"raw deletes: {left} queues left in {vhost}")
    finally:
        for name in (vhost, empty):  # the floor's too, should a stop have come while it was deleted
            delete_vhost(name)
    requests_ = {"get": 1, "post": 1, "delete": len(names)}
    measured = {"vhost": vhost,
                "floors": {key: {"seconds": sorted(values)[len(values) // 2], "all_seconds": values,
                                 "requests": requests_[key]} for key, values in floors.items()},
                "phases": {phase: median(entries) for phase, entries in phases.items()}}
    return measured | ({"instructions": counted} if counted else {})


def startup() -> float:
    """The best of five runs of ``topology --version``, a whole process (the start-up target)."""
    best = float("inf")
    for _ in range(5):
        started = time.perf_counter()
        subprocess.run([sys.executable, "-m", "topology", "--version"], capture_output=True, cwd=ROOT, check=True)
        best = min(best, time.perf_counter() - started)
    return round(best, 3)


LOOP = "import time; started = time.process_time(); sum(range(10_000_000)); print(time.process_time() - started)"
"""A fixed piece of Python work: its CPU seconds say how fast the machine ran (on a shared virtual
machine, the same build's CPU seconds can double from one hour to the next)."""


def machine_speed() -> float:
    """The CPU seconds of :data:`LOOP`, the best of three runs, each in a process of its own."""
    return round(min(float(subprocess.run([sys.executable, "-c", LOOP], capture_output=True, text=True,
                                          check=True).stdout) for _ in range(3)), 3)


def _terminated(signum, frame):  # noqa: ARG001 - a signal handler's signature
    raise SystemExit(f"bench: stopped by signal {signum}")  # on the way out, the vhosts are deleted


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--objects", type=int, nargs="+", default=[], help="Sizes by number of objects.")
    parser.add_argument("--queues", type=int, nargs="+", default=[], help="Sizes by number of queues.")
    parser.add_argument("--runs", type=int, default=3, help="Runs of each figure; the median is kept (3).")
    parser.add_argument("--conditions", nargs="+", choices=list(report_.CONDITIONS), default=list(report_.CONDITIONS),
                        help="quiet, busy, or both (the default).")
    parser.add_argument("--instructions", action="store_true",
                        help="Also count the instructions of validate and of a plan with nothing to do, quiet, "
                             "with valgrind's callgrind (about 6 minutes more at the sizes of the docs' command).")
    parser.add_argument("--out", type=Path, default=None, help="Also write the results as JSON here.")
    parser.add_argument("--append", action="store_true",
                        help="Keep the sizes --out already holds (those measured again are replaced): to measure "
                             "the large sizes with fewer --runs.")
    options = parser.parse_args()
    sizes = sorted({queues_for(n) for n in options.objects} | set(options.queues)) or [queues_for(1000),
                                                                                       queues_for(10_000)]
    if options.instructions and shutil.which("valgrind") is None:
        raise SystemExit("bench: --instructions needs valgrind (Debian's package valgrind)")
    if options.instructions and "quiet" not in options.conditions:
        raise SystemExit("bench: --instructions counts on the quiet machine: leave quiet in --conditions")
    signal.signal(signal.SIGTERM, _terminated)
    commit = build()
    files = _measured_files()
    session = requests.Session()
    session.auth = AUTH
    overview = session.get(f"{URL}/api/overview", timeout=30).json()
    results: list[dict] = []
    if options.append and options.out and options.out.exists():
        results += [r for r in json.loads(options.out.read_text(encoding="utf-8"))["results"] if r["queues"] not in sizes]
    report = {"date": time.strftime("%Y-%m-%d"), "rabbitmq": overview.get("rabbitmq_version"),
              "python": sys.version.split()[0], "cpus": os.cpu_count(), "runs": options.runs,
              "load": "one process spinning on one core beside each busy measurement",
              "version_seconds": startup(), "results": results}
    print(f"RabbitMQ {report['rabbitmq']}, {report['date']}, {report['cpus']} cores; "
          f"topology --version: {report['version_seconds']:.3f} s", flush=True)
    python_start = instructions("-c", "pass") if options.instructions else None  # the same at every size
    with tempfile.TemporaryDirectory() as work:
        for queues in sizes:
            result = {"queues": queues, "objects": sum(counts(queues).values()), "counts": counts(queues),
                      "runs": options.runs, "commit": commit, "conditions": {},
                      "loop_seconds": [machine_speed()]}
            for condition in options.conditions:
                result["conditions"][condition] = measure(queues, condition == "busy", options.runs, Path(work),
                                                          session, python_start if condition == "quiet" else None)
            result["loop_seconds"].append(machine_speed())  # before and after: did the machine's speed move?
            if _measured_files() != files:  # the later runs would compile it, or measure another build
                raise SystemExit(f"bench: the package in {PACKAGE} or its bytecode changed during the run; "
                                 "measure it again")
            results.append(result)
            results.sort(key=lambda r: r["queues"])
            print(report_.text(result), flush=True)  # each size as soon as it is measured
            if options.out:  # and kept, should a larger size fail
                options.out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(report_.summary(report))


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:  # the spinning process and the vhosts are gone by now
        raise SystemExit("bench: interrupted") from None
