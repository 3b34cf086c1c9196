"""The distribution as a user gets it: the wheel and the sdist built from the checkout, the wheel
installed into a fresh virtual environment outside the checkout (and with pipx), and the installed
command run from there: its version, its schema, `validate` and `plan` of the shop example against
the test broker, and the README's five-minute tour. Marked `packaging`: it runs once per CI run (with the default broker), not on every
broker of the matrix; it needs the package index for the build tools and the dependencies."""

from __future__ import annotations

import os
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

from tests.conftest import AMQP_ADDRESS, BROKER_AUTH, BROKER_URL, ROOT
from tests.integration.test_examples import copy_examples
from tests.integration.test_readme_tour import run_tour
from topology import __version__
from topology.schema import render

pytestmark = [pytest.mark.packaging, pytest.mark.broker]

DISTRIBUTION = "rabbitmq_topology"
"""The distribution's name in file names (the Index's name is rabbitmq-topology; the command and
the import package stay topology)."""


def _run(*command: str, cwd, env=None) -> subprocess.CompletedProcess:
    done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, f"{' '.join(command)}\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}"
    return done


def test_the_built_wheel_installs_and_runs_outside_the_checkout(tmp_path, vhost, other_vhost, api):
    tour_vhost = other_vhost
    dist = tmp_path / "dist"
    _run(sys.executable, "-m", "build", "--sdist", "--wheel", "--outdir", str(dist), str(ROOT), cwd=tmp_path)
    wheel = dist / f"{DISTRIBUTION}-{__version__}-py3-none-any.whl"
    sdist = dist / f"{DISTRIBUTION}-{__version__}.tar.gz"
    assert wheel.exists() and sdist.exists(), sorted(p.name for p in dist.iterdir())
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        assert "topology/topology.schema.json" in names and "topology/cli.py" in names
        assert not [n for n in names if n.startswith(("tests/", "examples/", "bench/"))]
        metadata = archive.read(f"{DISTRIBUTION}-{__version__}.dist-info/METADATA").decode()
        entry_points = archive.read(f"{DISTRIBUTION}-{__version__}.dist-info/entry_points.txt").decode()
    assert "Name: rabbitmq-topology" in metadata and "topology = topology.cli:main" in entry_points
    with tarfile.open(sdist) as archive:
        assert f"{DISTRIBUTION}-{__version__}/topology/topology.schema.json" in archive.getnames()

    venv = tmp_path / "venv"
    _run(sys.executable, "-m", "venv", str(venv), cwd=tmp_path)
    _run(str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", str(wheel),
         cwd=tmp_path)
    home = tmp_path / "elsewhere"  # no checkout here, and none on the path
    home.mkdir()
    env = {"PATH": f"{venv / 'bin'}:/usr/bin:/bin", "HOME": str(home), "TOPOLOGY_URL": BROKER_URL,
           "TOPOLOGY_USER": BROKER_AUTH[0], "TOPOLOGY_PASSWORD": BROKER_AUTH[1],
           "TOPOLOGY_AMQP_URL": f"amqp://{AMQP_ADDRESS}/", "LANG": os.environ.get("LANG", "C.UTF-8")}
    topology = str(venv / "bin" / "topology")

    assert _run(topology, "--version", cwd=home, env=env).stdout.strip() == f"topology {__version__}"
    assert _run(topology, "schema", cwd=home, env=env).stdout == render()
    where = _run(str(venv / "bin" / "python"), "-c", "import topology; print(topology.__file__)", cwd=home, env=env)
    assert where.stdout.startswith(str(venv))  # the installed copy, not the checkout
    [example] = copy_examples(home, ("shop",), vhost)
    assert "Valid: 1 vhost(s)" in _run(topology, "validate", example, cwd=home, env=env).stdout
    planned = _run(topology, "plan", example, cwd=home, env=env).stdout
    assert f"+ vhost {vhost}" in planned and "to create" in planned

    # the README's tour, with the installed command, where there is no checkout
    def installed_command(*arguments: str) -> tuple[int, str]:
        done = subprocess.run([topology, *arguments], cwd=home / "tour", env=env, capture_output=True, text=True,
                              timeout=300)
        return done.returncode, done.stdout

    (home / "tour").mkdir()
    run_tour(installed_command, home / "tour", api, tour_vhost)

    # pipx, as the docs say: its own environment, the command on PATH
    pipx_env = {**env, "PIPX_HOME": str(tmp_path / "pipx"), "PIPX_BIN_DIR": str(tmp_path / "pipx-bin"),
                "PIPX_MAN_DIR": str(tmp_path / "pipx-man")}
    _run(str(Path(sys.executable).parent / "pipx"), "install", str(wheel), cwd=home, env=pipx_env)
    installed = str(tmp_path / "pipx-bin" / "topology")
    assert _run(installed, "--version", cwd=home, env=pipx_env).stdout.strip() == f"topology {__version__}"
    assert "Valid: 1 vhost(s)" in _run(installed, "validate", example, cwd=home, env=pipx_env).stdout
