"""One measured run of the command line, in its own process (``bench/run.py`` starts it).

Prints one JSON line: wall seconds inside Python (the command alone), the CPU seconds the process
spent on the command (user + system, all its threads, from the end of the interpreter's start to
the end: the tool's imports are in it) and in all (start included), exit code, HTTP requests by method (counted at
Python's ``http.client``, below the tool), the process's peak resident memory in MB, and the
directory of the package it ran: the one beside the benchmark, whatever else is on the path
(``bench/run.py`` compiles its bytecode first and checks that it is the one measured).

The peak is the kernel's high-water mark of this process's own memory (``VmHWM`` in
``/proc/self/status``), not ``ru_maxrss``: on Linux a process started by ``subprocess`` inherits in
``ru_maxrss`` the peak of the process that started it (which shares its memory until ``exec``), so
``bench/run.py``'s own peak, about 208 MB at 50,001 objects, would be the least of every figure.
Where ``/proc`` is missing, ``ru_maxrss`` stands in (in kB; macOS gives bytes).
"""

from __future__ import annotations

import json
import os
import resource
import sys
import time
from collections import Counter


def _own_peak_kb(maxrss: int) -> int:
    """The process's own peak resident memory in kB: ``VmHWM``, else ``maxrss`` (see above)."""
    try:
        with open("/proc/self/status", encoding="utf-8", errors="replace") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return maxrss // 1024 if sys.platform == "darwin" else maxrss


def main() -> None:
    # the tool's CPU: everything after the interpreter's start, its imports included (a command that
    # talks to no broker does not import http.client, so neither does its measurement)
    before = resource.getrusage(resource.RUSAGE_SELF)
    counts: Counter[str] = Counter()
    if sys.argv[1:2] != ["validate"]:
        import http.client

        original = http.client.HTTPConnection.request

        def counting(self, method, *args, **kwargs):  # type: ignore[no-untyped-def]
            counts[method.upper()] += 1
            return original(self, method, *args, **kwargs)

        http.client.HTTPConnection.request = counting  # type: ignore[method-assign]
    # the package beside the benchmark, whatever else is on the path (os.path: imported at every start)
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.realpath(__file__))))
    import topology
    from topology.cli import main as cli

    started = time.perf_counter()
    code = 0
    try:
        cli(sys.argv[1:])
    except SystemExit as exit_:
        code = exit_.code if isinstance(exit_.code, int) else 1
    elapsed = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    peak_mb = _own_peak_kb(after.ru_maxrss) / 1024
    sys.stdout.flush()
    print("\nBENCH " + json.dumps({"seconds": elapsed, "cpu_seconds": cpu,
                                   "process_cpu_seconds": after.ru_utime + after.ru_stime, "code": code,
                                   "requests": dict(counts), "peak_mb": round(peak_mb, 1),
                                   "package": os.path.dirname(os.path.realpath(topology.__file__))}), file=sys.stderr)


if __name__ == "__main__":
    main()
