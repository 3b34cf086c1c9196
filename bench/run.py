"""The benchmark: plan and apply at scale, next to the broker's own floor, in one run.

    .venv/bin/python bench/run.py --queues 500 5000 [--out bench/results.json]

For each size, a throw-away vhost ``topology-bench-<random>`` gets a generated topology:
``--queues`` queues (with a TTL, a length limit and a dead-letter exchange), as many
bindings, one exchange per 20 queues and one policy per 500 queues (at least one of each).
Each phase runs the command line in its own process (``bench/phase.py``), which reports the
command's wall time, its HTTP requests and its peak memory; the phases that change nothing run
three times and the median run is kept:

- ``plan cold``: the vhost does not exist yet;
- ``apply create``: creating everything;
- ``plan no-op`` and ``apply no-op``: nothing to do;
- ``plan 1%``: against the full broker, with 1% of the queues bound by a new key;
- ``apply 1%``: applying that (with ``--prune``: each changed binding is one delete, one create).

The floor, measured in the same run: ``GET /api/definitions/{vhost}`` of the full vhost (three
times: the median is the reference, the broker's own time varies by a third from read to read), and
one ``POST /api/definitions/{vhost}`` of the same objects into an empty vhost. The table prints
each phase with its ratio to the floor (reads to the GET, creation to the POST); ``--out``
writes it all as JSON. The vhosts are deleted at the end, whatever happens.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from urllib.parse import quote

import requests
import yaml

ROOT = Path(__file__).resolve().parent.parent
URL = os.environ.get("TOPOLOGY_URL", "http://127.0.0.1:15672").rstrip("/")
AUTH = (os.environ.get("TOPOLOGY_USER", "guest"), os.environ.get("TOPOLOGY_PASSWORD", "guest"))


def topology(vhost: str, queues: int, changed: bool = False) -> dict:
    """The generated files; ``changed``: 1% of the queues bound by a new key."""
    exchanges = max(1, queues // 20)
    policies = max(1, queues // 500)
    bump = max(1, queues // 100) if changed else 0
    return {"vhosts": {vhost: {
        "exchanges": {f"x-{i}": {"type": "topic" if i % 2 else "direct"} for i in range(exchanges)}
        | {"dlx": {"type": "fanout"}},
        "queues": {f"q-{i}": {"message_ttl": 3_600_000, "max_length": 100_000 + i, "dead_letter_exchange": "dlx"}
                   for i in range(queues)},
        "bindings": [{"source": f"x-{i % exchanges}", "destination": f"q-{i}",
                      "routing_key": f"key.{i}{'.v2' if i < bump else ''}"} for i in range(queues)],
        "policies": {f"p-{i}": {"pattern": f"^q-{i}", "apply_to": "queues", "priority": i,
                                "definition": {"expires": 86_400_000 + i}} for i in range(policies)},
    }}}


def phase(name: str, *arguments: str, repeat: int = 1) -> dict:
    """Run one phase (``repeat`` times when it changes nothing: the median run is kept, as the
    broker's own time varies from one read to the next)."""
    runs = sorted((_phase(name, *arguments) for _ in range(repeat)), key=lambda entry: entry["seconds"])
    kept = runs[len(runs) // 2]
    if repeat > 1:
        kept["all_seconds"] = [entry["seconds"] for entry in runs]
    return kept


def _phase(name: str, *arguments: str) -> dict:
    started = time.perf_counter()
    result = subprocess.run([sys.executable, str(ROOT / "bench" / "phase.py"), *arguments],
                            capture_output=True, text=True, cwd=ROOT, check=False)
    total = time.perf_counter() - started
    line = next((l for l in reversed(result.stderr.splitlines()) if l.startswith("BENCH ")), None)
    if line is None:
        raise SystemExit(f"{name}: no measurement\n{result.stderr[-2000:]}")
    measured = json.loads(line[len("BENCH "):])
    if measured["code"] not in (0, 2):
        raise SystemExit(f"{name}: exit {measured['code']}\n{result.stderr[-2000:]}")
    writes = sum(n for method, n in measured["requests"].items() if method != "GET")
    return {"phase": name, "seconds": round(measured["seconds"], 3), "process_seconds": round(total, 3),
            "requests": sum(measured["requests"].values()), "write_requests": writes,
            "peak_mb": measured["peak_mb"]}


def floor(session: requests.Session, vhost: str, document: dict) -> dict:
    """One raw GET of the full vhost's definitions; one raw POST of the same objects into an
    empty vhost (created first, not timed, deleted after)."""
    api = f"{URL}/api/definitions/{quote(vhost, safe='')}"
    gets = []
    for _ in range(3):  # the broker's own time varies from one read to the next: the median of three
        started = time.perf_counter()
        session.get(api, timeout=600).raise_for_status()
        gets.append(time.perf_counter() - started)
    get_seconds = sorted(gets)[1]
    empty = f"{vhost}-floor"
    session.put(f"{URL}/api/vhosts/{quote(empty, safe='')}", json={}, timeout=60).raise_for_status()
    body = {kind: [{k: v for k, v in entry.items() if k != "vhost"} for entry in document.get(kind, [])]
            for kind in ("exchanges", "queues", "bindings", "policies")}
    try:
        started = time.perf_counter()
        response = session.post(f"{URL}/api/definitions/{quote(empty, safe='')}", json=body, timeout=900,
                                headers={"connection": "close"})
        post_seconds = time.perf_counter() - started
        response.raise_for_status()
    finally:
        delete_vhost(empty)
    return {"get_seconds": round(get_seconds, 3), "get_all_seconds": [round(g, 3) for g in gets],
            "post_seconds": round(post_seconds, 3)}


def delete_vhost(vhost: str) -> None:
    """Delete a vhost on a connection of its own (a large vhost takes a while), retried once if the
    broker drops it."""
    for attempt in range(2):
        try:
            requests.delete(f"{URL}/api/vhosts/{quote(vhost, safe='')}", auth=AUTH, timeout=900,
                            headers={"connection": "close"})
            return
        except requests.ConnectionError:
            if attempt:
                print(f"warning: could not delete vhost {vhost}: delete it by hand", file=sys.stderr)


def run_size(queues: int, work: Path, session: requests.Session) -> dict:
    vhost = f"topology-bench-{uuid.uuid4().hex[:8]}"
    files, changed = work / f"{vhost}.yaml", work / f"{vhost}-changed.yaml"
    files.write_text(yaml.safe_dump(topology(vhost, queues)), encoding="utf-8")
    changed.write_text(yaml.safe_dump(topology(vhost, queues, changed=True)), encoding="utf-8")
    objects = sum(len(v) for v in topology(vhost, queues)["vhosts"][vhost].values())
    phases = []
    try:
        phases.append(phase("plan cold", "plan", str(files), "--format", "json", repeat=3))
        phases.append(phase("apply create", "apply", str(files), "--auto-approve"))
        phases.append(phase("plan no-op", "plan", str(files), "--format", "json", repeat=3))
        phases.append(phase("apply no-op", "apply", str(files), "--auto-approve", repeat=3))
        phases.append(phase("plan 1%", "plan", str(changed), "--prune", "--format", "json", repeat=3))
        phases.append(phase("apply 1%", "apply", str(changed), "--prune", "--auto-approve"))
        rendered = subprocess.run([sys.executable, "-m", "topology", "render", str(files), "--format", "definitions"],
                                  capture_output=True, text=True, cwd=ROOT, check=True)
        base = floor(session, vhost, json.loads(rendered.stdout))
    finally:
        delete_vhost(vhost)
    for entry in phases:
        reference = base["post_seconds"] if entry["phase"] == "apply create" else base["get_seconds"]
        entry["ratio"] = round(entry["seconds"] / reference, 2) if reference else None
    return {"queues": queues, "objects": objects, "floor": base, "phases": phases}


def startup() -> float:
    """The best of five runs of ``topology --version``, a whole process (the start-up target)."""
    best = float("inf")
    for _ in range(5):
        started = time.perf_counter()
        subprocess.run([sys.executable, "-m", "topology", "--version"], capture_output=True, cwd=ROOT, check=True)
        best = min(best, time.perf_counter() - started)
    return round(best, 3)


def table(results: list[dict]) -> str:
    lines = []
    for result in results:
        floor_ = result["floor"]
        lines.append(f"{result['objects']} objects ({result['queues']} queues, as many bindings): raw GET "
                     f"{floor_['get_seconds']:.2f} s, raw POST {floor_['post_seconds']:.2f} s")
        lines.append(f"  {'phase':<13} {'seconds':>8} {'ratio':>6} {'requests':>9} {'writes':>7} {'peak MB':>8}")
        for entry in result["phases"]:
            lines.append(f"  {entry['phase']:<13} {entry['seconds']:>8.2f} {entry['ratio']!s:>6} "
                         f"{entry['requests']:>9} {entry['write_requests']:>7} {entry['peak_mb']:>8.1f}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--queues", type=int, nargs="+", default=[500, 5000])
    parser.add_argument("--out", type=Path, default=None, help="Also write the results as JSON here.")
    options = parser.parse_args()
    session = requests.Session()
    session.auth = AUTH
    overview = session.get(f"{URL}/api/overview", timeout=30).json()
    results: list[dict] = []
    report = {"date": time.strftime("%Y-%m-%d"), "rabbitmq": overview.get("rabbitmq_version"),
              "python": sys.version.split()[0], "cpus": os.cpu_count(), "version_seconds": startup(),
              "results": results}
    print(f"RabbitMQ {report['rabbitmq']}, {report['date']}, {report['cpus']} cores; "
          f"topology --version: {report['version_seconds']:.3f} s", flush=True)
    with tempfile.TemporaryDirectory() as work:
        for queues in options.queues:
            results.append(run_size(queues, Path(work), session))
            print(table(results[-1:]), flush=True)  # each size as soon as it is measured
            if options.out:  # and kept, should a larger size fail
                options.out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
