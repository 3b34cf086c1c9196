"""An apply killed at any point (while creations are imported, while runs of changes go through the
pool of connections) leaves a broker that the next run brings to the files."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import time

import pytest
import yaml

from tests.conftest import ROOT, restart_broker_during, run_until_it_succeeds

pytestmark = pytest.mark.broker


def files(vhost: str, version: int) -> str:
    queues = 300
    return yaml.safe_dump({"vhosts": {vhost: {
        "exchanges": {f"x{i}": {"type": "topic"} for i in range(10)},
        "queues": {f"q{i}": {"max_length": 1000 + i} for i in range(queues)},
        "bindings": [{"source": f"x{i % 10}", "destination": f"q{i}",
                      "routing_key": f"k{i}" + (f".v{version}" if i % 2 else "")} for i in range(queues)],
        "policies": {f"p{i}": {"pattern": f"^q{i}$", "definition": {"max-length": 10 * version + i}} for i in range(40)},
    }}})


def topology(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "topology", *args], cwd=ROOT, capture_output=True, text=True, check=False)


def test_an_apply_killed_at_random_points_is_finished_by_the_next_run(tmp_path, vhost):
    seed = int(os.environ.get("TOPOLOGY_TEST_SEED", random.randrange(1 << 30)))
    rng = random.Random(seed)
    paths = []
    for version in (1, 2):
        path = tmp_path / f"v{version}.yaml"
        path.write_text(files(vhost, version), encoding="utf-8")
        paths.append(str(path))
    killed = 0
    runs = [(paths[0], 0.4, 2.5), (paths[0], 0.4, 2.5), (paths[1], 0.4, 2.5), (paths[1], 0.4, 2.5)]
    # a faster broker (4.x imports) can finish every apply before its kill: then more runs, killed
    # sooner, each with changes to make (the files alternate), until one is killed mid-way
    runs += [(paths[i % 2], 0.1, 0.8) for i in range(8)]
    for index, (path, low, high) in enumerate(runs):
        if index >= 4 and killed:
            break
        process = subprocess.Popen([sys.executable, "-m", "topology", "apply", path, "--auto-approve", "--prune"],
                                   cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(rng.uniform(low, high))
        if process.poll() is None:
            process.kill()
            killed += 1
        process.wait()
    finished = topology("apply", paths[1], "--auto-approve", "--prune")
    assert finished.returncode == 0, f"seed {seed}: {finished.stderr}"
    plan = topology("plan", paths[1], "--prune", "--format", "json")
    assert plan.returncode == 0 and json.loads(plan.stdout)["changes"] == [], f"seed {seed}: {plan.stdout[-2000:]}"
    assert killed, f"seed {seed}: no apply was killed while it ran (the test proves nothing then)"


def test_the_broker_restarting_mid_apply_ends_in_one_line_and_the_next_run_finishes(tmp_path, vhost):
    path = tmp_path / "v1.yaml"
    path.write_text(files(vhost, 1), encoding="utf-8")
    command = [sys.executable, "-m", "topology", "apply", str(path), "--auto-approve"]
    victim = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    err = restart_broker_during(victim, after=0.8)
    if victim.returncode != 0:  # it may also have finished before the broker stopped
        lines = err.strip().splitlines()
        assert lines[-1].startswith("error:") and "Traceback" not in err, err
        # besides the error: progress lines, when the restart outlasts their interval
        assert all(line.startswith(("not applied: ", "error: ", "apply: ", "plan: ")) for line in lines), err
    finished = run_until_it_succeeds(command)
    assert finished.returncode == 0, finished.stderr
    plan = topology("plan", str(path), "--format", "json")
    assert json.loads(plan.stdout)["changes"] == []


def test_two_applies_at_once_take_turns_and_the_second_plans_after_the_first(tmp_path, vhost):
    """Both start together; the lock makes one wait, and it reads the broker only once it holds the
    lock: the broker ends exactly in the state of the apply that finished last, never a mix."""
    paths = []
    for version in (1, 2):
        path = tmp_path / f"v{version}.yaml"
        path.write_text(files(vhost, version), encoding="utf-8")
        paths.append(str(path))
    topology("apply", paths[0], "--auto-approve")  # the vhost exists: both have work to do
    ended: dict[str, float] = {}
    processes: dict[str, subprocess.Popen] = {}
    copy = tmp_path / "v1-again.yaml"
    again = yaml.safe_load(files(vhost, 1))
    again["vhosts"][vhost]["policies"]["p0"]["definition"]["max-length"] = 999  # changed in place: no replacement
    copy.write_text(yaml.safe_dump(again), encoding="utf-8")
    for path in (paths[1], str(copy)):
        processes[path] = subprocess.Popen(
            [sys.executable, "-m", "topology", "apply", path, "--auto-approve", "--prune", "--lock-timeout", "120"],
            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    while len(ended) < len(processes):
        for path, process in processes.items():
            if path not in ended and process.poll() is not None:
                ended[path] = time.monotonic()
        time.sleep(0.05)
    for path, process in processes.items():
        out, err = process.communicate()
        assert process.returncode == 0, f"{path}: {err}"
    last = max(ended, key=ended.get)
    for path in processes:
        plan = topology("plan", path, "--prune", "--format", "json")
        changes = json.loads(plan.stdout)["changes"]
        if path == last:
            assert changes == [], f"the broker is not in the state of the last apply ({path})"
        else:
            assert changes, "the broker still shows the first apply alone: the second did nothing"
