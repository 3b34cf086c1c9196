"""One measured run of the command line, in its own process (``bench/run.py`` starts it).

Prints one JSON line: wall seconds inside Python (the command alone), exit code, HTTP requests
by method (counted at the ``requests`` session, below the tool), and the process's peak
resident memory in MB.
"""

from __future__ import annotations

import json
import resource
import sys
import time
from collections import Counter


def main() -> None:
    import requests

    counts: Counter[str] = Counter()
    original = requests.Session.request

    def counting(self, method, url, *args, **kwargs):  # type: ignore[no-untyped-def]
        counts[method.upper()] += 1
        return original(self, method, url, *args, **kwargs)

    requests.Session.request = counting  # type: ignore[method-assign]
    from topology.cli import main as cli

    started = time.perf_counter()
    code = 0
    try:
        cli(sys.argv[1:])
    except SystemExit as exit_:
        code = exit_.code if isinstance(exit_.code, int) else 1
    elapsed = time.perf_counter() - started
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    sys.stdout.flush()
    print("\nBENCH " + json.dumps({"seconds": elapsed, "code": code, "requests": dict(counts),
                                   "peak_mb": round(peak_mb, 1)}), file=sys.stderr)


if __name__ == "__main__":
    main()
