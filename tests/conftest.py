"""Shared fixtures. Integration tests use the real broker at TOPOLOGY_URL (management) and
TOPOLOGY_AMQP_URL (AMQP; default: the management host, port 5672), each in its own vhost; nothing
else names the broker's address, so ``eval "$(scripts/brokers.sh start 4.3)"`` points the whole
suite at another broker."""

from __future__ import annotations

import os
import textwrap
import uuid
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, urlsplit

import pytest
import requests

from topology.cli import main

BROKER_URL = os.environ.get("TOPOLOGY_URL", "http://127.0.0.1:15672").rstrip("/")
BROKER_AUTH = (os.environ.get("TOPOLOGY_USER", "guest"), os.environ.get("TOPOLOGY_PASSWORD", "guest"))
_AMQP = urlsplit(os.environ.get("TOPOLOGY_AMQP_URL") or f"amqp://{urlsplit(BROKER_URL).hostname}:5672/")
AMQP_HOST = _AMQP.hostname or "127.0.0.1"
AMQP_PORT = _AMQP.port or 5672
AMQP_ADDRESS = f"{AMQP_HOST}:{AMQP_PORT}"
"""The test broker's AMQP listener, ``host:port``: for URIs the tests write (shovels, --amqp-url)."""


def amqp_uri(vhost: str = "", user: str | None = None, password: str | None = None) -> str:
    """An AMQP URI of the test broker for ``vhost`` (with credentials when ``user`` is given)."""
    credentials = f"{user}:{password}@" if user is not None else ""
    return f"amqp://{credentials}{AMQP_ADDRESS}/{quote(vhost, safe='')}"


@pytest.fixture(autouse=True)
def _plain_output(monkeypatch):
    """Every test sees the tool's plain output, whatever colour settings the shell running the
    suite has (a test about colour sets them itself)."""
    for name in ("NO_COLOR", "FORCE_COLOR"):
        monkeypatch.delenv(name, raising=False)


@dataclass
class Result:
    code: int
    out: str
    err: str


@pytest.fixture
def run(capsys):
    """Run the command line in-process: ``run("plan", path, "--format", "json")``."""

    def runner(*args: str) -> Result:
        capsys.readouterr()
        try:
            main(list(args))
            code = 0
        except SystemExit as exit_:
            code = exit_.code if isinstance(exit_.code, int) else 1
        captured = capsys.readouterr()
        return Result(code, captured.out, captured.err)

    return runner


@pytest.fixture
def write(tmp_path):
    """Write a topology file (dedented) and return its path."""

    def writer(text: str, name: str = "topology.yaml") -> str:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text), encoding="utf-8")
        return str(path)

    return writer


class Api:
    """Raw management API access for tests: how they look at the broker behind the tool's back."""

    def __init__(self) -> None:
        from requests.adapters import HTTPAdapter
        from urllib3.util.retry import Retry

        self.session = requests.Session()
        self.session.auth = BROKER_AUTH
        self.session.headers["content-type"] = "application/json"
        # a keep-alive connection the broker closed just as it is used again ("Remote end closed
        # connection without response") is tried once more: the tests' own requests are idempotent
        retry = Retry(total=2, connect=2, read=2, status=0, other=0, allowed_methods=None, backoff_factor=0.1,
                      raise_on_status=False)
        self.session.mount("http://", HTTPAdapter(max_retries=retry))
        self.session.mount("https://", HTTPAdapter(max_retries=retry))

    def url(self, *segments: str) -> str:
        return BROKER_URL + "/api/" + "/".join(quote(s, safe="") for s in segments)

    def get(self, *segments: str):
        response = self.session.get(self.url(*segments), timeout=30)
        response.raise_for_status()
        return response.json()

    def put(self, *segments: str, body=None) -> None:
        self.session.put(self.url(*segments), json=body or {}, timeout=30).raise_for_status()

    def post(self, *segments: str, body=None) -> None:
        self.session.post(self.url(*segments), json=body or {}, timeout=30).raise_for_status()

    def delete(self, *segments: str) -> int:
        return self.session.delete(self.url(*segments), timeout=30).status_code

    def definitions(self, vhost: str) -> dict:
        """The vhost's definitions export; from the whole broker's where the vhost's own fails
        (for a vhost whose name is not ASCII, RabbitMQ 4.0.5 answers HTTP 500, 4.3.6 cuts the JSON
        short). With the internal exchanges of the exchange list, which 4.3.6's export leaves out."""
        response = self.session.get(self.url("definitions", vhost), timeout=30)
        found = None
        if response.status_code != 500:
            response.raise_for_status()
            try:
                found = response.json()
            except ValueError:  # 4.3.6 cuts such an answer short
                pass
        if found is None:
            whole = self.get("definitions")
            found = {kind: [e for e in whole.get(kind, []) if e.get("vhost") == vhost]
                     for kind in ("exchanges", "queues", "bindings", "policies", "parameters")}
        shown = {e["name"] for e in found["exchanges"]}
        found["exchanges"] += [e for e in self.get("exchanges", vhost) if e["internal"] and e["name"] not in shown
                               and not e["name"].startswith("amq.")]
        return found

    def queue(self, vhost: str, name: str) -> dict:
        return next(q for q in self.definitions(vhost)["queues"] if q["name"] == name)


@pytest.fixture(scope="session")
def api() -> Api:
    client = Api()
    try:
        client.get("overview")
    except requests.RequestException as error:
        pytest.fail(f"the broker's management API at {BROKER_URL} does not answer ({error}); run scripts/test.sh")
    return client


@pytest.fixture(scope="session")
def broker_version(api: Api) -> tuple[int, ...]:
    """The test broker's RabbitMQ version, ``(4, 0, 5)``: for assertions that differ by version
    (asserted per version, never skipped without naming the version rule)."""
    from topology.rules.versions import parse_version

    return parse_version(api.get("overview")["rabbitmq_version"])


def needs_classic_mirroring(version: tuple[int, ...]) -> None:
    """Skip a test that makes mirrored classic queues on a broker without them, naming the rule."""
    from topology.validate import VERSION_RULES
    from topology.rules.versions import has_classic_mirroring, version_text

    if not has_classic_mirroring(version):
        rule = next(r for r in VERSION_RULES if r.rule.startswith("classic queue mirroring"))
        pytest.skip(f"version rule: {rule.rule} {rule.refuses(version)} (the broker runs {version_text(version)})")


def pytest_report_header(config) -> str:
    """Which broker the integration tests run against, in the header of every run."""
    try:
        overview = requests.get(BROKER_URL + "/api/overview", auth=BROKER_AUTH, timeout=5).json()
        flags = requests.get(BROKER_URL + "/api/feature-flags", auth=BROKER_AUTH, timeout=5).json()
    except (requests.RequestException, ValueError):
        return f"broker: {BROKER_URL} does not answer"
    store = "khepri" if any(f.get("name") == "khepri_db" and f.get("state") == "enabled" for f in flags) else "mnesia"
    return f"broker: RabbitMQ {overview.get('rabbitmq_version')} ({store}) at {BROKER_URL}, AMQP {AMQP_ADDRESS}"


@pytest.fixture
def vhost(api: Api):
    """A unique throw-away vhost name; the vhost is deleted after the test."""
    name = f"topology-test-{uuid.uuid4().hex[:10]}"
    yield name
    api.delete("vhosts", name)


@pytest.fixture
def other_vhost(api: Api):
    """A second throw-away vhost name, for tests that span two vhosts."""
    name = f"topology-test-{uuid.uuid4().hex[:10]}"
    yield name
    api.delete("vhosts", name)


def management_client():
    """The tool's own management client, pointed at the test broker."""
    from topology.broker.client import ManagementClient

    return ManagementClient(BROKER_URL, *BROKER_AUTH)


def connect(vhost: str):
    """A blocking AMQP connection to the test broker's ``vhost``."""
    import pika

    return pika.BlockingConnection(pika.ConnectionParameters(AMQP_HOST, AMQP_PORT, vhost, pika.PlainCredentials(*BROKER_AUTH)))


def connect_as(vhost: str, user: str, password: str, **options):
    """A blocking AMQP connection to the test broker's ``vhost`` as ``user``."""
    import pika

    return pika.BlockingConnection(pika.ConnectionParameters(AMQP_HOST, AMQP_PORT, vhost, pika.PlainCredentials(user, password),
                                                             **options))


def publish(vhost: str, queue: str, bodies: list[bytes]) -> None:
    """Publish to a queue through the default exchange with publisher confirms."""
    connection = connect(vhost)
    try:
        channel = connection.channel()
        channel.confirm_delivery()
        for body in bodies:
            channel.basic_publish("", queue, body, mandatory=True)
    finally:
        connection.close()


def message_count(vhost: str, queue: str) -> int:
    connection = connect(vhost)
    try:
        return connection.channel().queue_declare(queue, passive=True).method.message_count
    finally:
        connection.close()


def wait_until(check, what: str, timeout: float = 60.0, interval: float = 0.5):
    """Poll ``check`` until it returns something true (statistics, shovels and links lag behind)."""
    import time

    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(interval)


def load_text(tmp_path, text: str, environment: dict[str, str] | None = None):
    """Load and validate one topology file written from ``text``, with variables from ``environment`` only."""
    from topology.loader import load
    from topology.validate import validate
    from topology.variables import Variables

    path = tmp_path / "t.yaml"
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    topology = load([str(path)], Variables(environment=environment or {}))
    validate(topology)
    return topology


def load_problems(tmp_path, text: str, environment: dict[str, str] | None = None) -> list[str]:
    """The problems :func:`load_text` finds (it must find some)."""
    from topology.errors import ConfigError

    with pytest.raises(ConfigError) as info:
        load_text(tmp_path, text, environment)
    return [str(p) for p in info.value.problems]


ROOT = Path(__file__).resolve().parent.parent


def broker_ctl(*args: str) -> None:
    """``rabbitmqctl ARGS`` against the test broker's node (scripts/brokers.sh finds it from
    TOPOLOGY_URL: one of its brokers, or the machine's own on port 15672)."""
    import subprocess

    finished = subprocess.run([str(ROOT / "scripts" / "brokers.sh"), "ctl", BROKER_URL, *args], capture_output=True, text=True)
    if finished.returncode != 0:
        pytest.fail(f"rabbitmqctl {' '.join(args)} on the broker at {BROKER_URL} failed: {finished.stderr.strip()}")


def restart_broker_during(victim, after: float) -> str:
    """Stop the broker's application ``after`` seconds into the ``victim`` process (text pipes),
    wait for it to end, start the application again; return the victim's stderr."""
    import time

    time.sleep(after)
    broker_ctl("stop_app")
    try:
        _, err = victim.communicate(timeout=120)
    finally:
        broker_ctl("start_app")
        broker_ctl("await_startup")
    return err


def run_until_it_succeeds(command: list[str], within: float = 60.0):
    """Run ``command`` (in the project's root) until it exits 0 or ``within`` seconds pass (the
    management API may still be starting after a restart); return the last run."""
    import subprocess
    import time

    deadline = time.monotonic() + within
    while True:
        finished = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
        if finished.returncode == 0 or time.monotonic() > deadline:
            return finished
        time.sleep(1)
