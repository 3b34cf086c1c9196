"""Targets of the project file against the real broker: one target, all targets in parallel
with one failing, and TLS through a TLS-terminating proxy in front of the management port."""

from __future__ import annotations

import json
import socket
import ssl
import subprocess
import threading
import uuid
import xml.etree.ElementTree as ElementTree
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.conftest import AMQP_HOST, AMQP_PORT, BROKER_URL

pytestmark = pytest.mark.broker

TOPOLOGY = """
vhosts:
  ${VHOST}:
    exchanges:
      orders: {type: topic}
    queues:
      orders.created: {max_length: "${MAX_LENGTH:-1000}"}
    bindings:
      - {source: orders, destination: orders.created, routing_key: "order.created"}
"""


@pytest.fixture
def project(tmp_path, api, monkeypatch):
    """A project with targets dev and prod (two vhosts of the test broker) and broken (no broker there)."""
    dev, prod = (f"topology-test-{uuid.uuid4().hex[:10]}" for _ in range(2))
    (tmp_path / "topology").mkdir()
    (tmp_path / "topology" / "shop.yaml").write_text(TOPOLOGY, encoding="utf-8")
    (tmp_path / "values").mkdir()
    (tmp_path / "values" / "dev.yaml").write_text(f"VHOST: {dev}\n", encoding="utf-8")
    (tmp_path / "values" / "prod.yaml").write_text(f"VHOST: {prod}\nMAX_LENGTH: 50000\n", encoding="utf-8")
    targets = f"""
[defaults]
files = ["topology/"]
user = "guest"
password_env = "TOPOLOGY_TEST_BROKER_PASSWORD"

[targets.dev]
url = "{BROKER_URL}"
values = ["values/dev.yaml"]

[targets.prod]
url = "{BROKER_URL}"
values = ["values/prod.yaml"]
"""
    (tmp_path / "good.toml").write_text(targets, encoding="utf-8")
    (tmp_path / "topology.toml").write_text(targets + f"""
[targets.broken]
url = "http://127.0.0.1:{free_port()}"
values = ["values/dev.yaml"]
timeout = 2
""", encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TOPOLOGY_TEST_BROKER_PASSWORD", "guest")
    yield {"dev": dev, "prod": prod, "root": tmp_path}
    for vhost in (dev, prod):
        api.delete("vhosts", vhost)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def vhost_exists(api, name: str) -> bool:
    return any(v["name"] == name for v in api.get("vhosts"))


def test_one_target_is_chosen_with_target(run, project, api):
    applied = run("apply", "--target", "prod", "--auto-approve")
    assert applied.code == 0, applied.out + applied.err
    assert vhost_exists(api, project["prod"]) and not vhost_exists(api, project["dev"])
    queue = api.get("queues", project["prod"], "orders.created")
    assert queue["arguments"]["x-max-length"] == 50000
    assert run("drift", "--target", "prod").code == 0
    markdown = run("plan", "--target", "prod", "--format", "markdown", "--detailed-exitcode")
    assert markdown.code == 0 and markdown.out.startswith("### :white_check_mark: topology plan for prod: no changes")
    assert run("validate", "--target", "dev").code == 0
    unknown = run("drift", "--target", "qa")
    assert unknown.code == 1 and "no target 'qa'" in unknown.err and "targets: broken, dev, prod" in unknown.err


def test_all_targets_apply_nothing_when_one_cannot_plan_unless_continue_on_error(run, project, api):
    refused = run("apply", "--all-targets", "--auto-approve")
    assert refused.code == 1
    assert "nothing was applied to any target: planning failed on broken" in refused.err
    assert "cannot reach the management API" in refused.err
    assert not vhost_exists(api, project["dev"]) and not vhost_exists(api, project["prod"])

    applied = run("apply", "--all-targets", "--auto-approve", "--continue-on-error")
    assert applied.code == 1
    assert vhost_exists(api, project["dev"]) and vhost_exists(api, project["prod"])
    summary = applied.out.split("Targets:")[1]
    assert "broken: error: not applied: cannot reach the management API" in summary
    assert "dev: 4 change(s) applied" in summary and "prod: 4 change(s) applied" in summary
    assert "== target dev ==" in applied.out and "Apply complete" in applied.out


def test_all_targets_drift_gives_a_result_per_target(run, project, api):
    assert run("apply", "--all-targets", "--auto-approve", "--project", "good.toml").code == 0
    assert run("drift", "--all-targets", "--project", "good.toml").code == 0
    api.put("policies", project["prod"], "hotfix", body={"pattern": ".*", "definition": {"max-length": 1}})

    text = run("drift", "--all-targets", "--project", "good.toml", "--fail-on-orphans")
    assert text.code == 2
    assert "  dev: in sync" in text.out and "  prod: drift found" in text.out

    document = json.loads(run("drift", "--all-targets", "--continue-on-error", "--format", "json").out)
    by_target = {t["target"]: t for t in document["targets"]}
    assert set(by_target) == {"broken", "dev", "prod"}
    assert by_target["dev"]["drifted"] is False and by_target["prod"]["orphans"][0]["name"] == "hotfix"
    assert "cannot reach the management API" in by_target["broken"]["error"]

    junit = run("drift", "--all-targets", "--continue-on-error", "--format", "junit")
    assert junit.code == 1  # an error outweighs drift
    root = ElementTree.fromstring(junit.out)
    assert root.get("errors") == "1"
    suites = {s.get("name") for s in root.findall("testsuite")}
    assert {"dev: vhost " + project["dev"], "prod: vhost " + project["prod"], "broken: error"} <= suites


def test_all_targets_save_one_plan_per_target(run, project):
    needs_name = run("plan", "--all-targets", "--project", "good.toml", "--out", "plan.json")
    assert needs_name.code == 1 and "{target}" in needs_name.err
    planned = run("plan", "--all-targets", "--project", "good.toml", "--out", "plans-{target}.json", "--detailed-exitcode")
    assert planned.code == 2, planned.out + planned.err
    for name in ("dev", "prod"):
        saved = json.loads((project["root"] / f"plans-{name}.json").read_text(encoding="utf-8"))
        assert saved["vhosts"] == [project[name]]
    applied = run("apply", "--all-targets", "--project", "good.toml", "--plan", "plans-{target}.json", "--auto-approve")
    assert applied.code == 0, applied.out + applied.err
    assert run("plan", "--all-targets", "--project", "good.toml", "--detailed-exitcode").code == 0


# --------------------------------------------------------------------------- TLS


def openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


@pytest.fixture(scope="module")
def certificates(tmp_path_factory) -> Path:
    """A CA, a server certificate for localhost and a client certificate, made with openssl."""
    where = tmp_path_factory.mktemp("tls")
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem", "-days", "2",
            "-subj", "/CN=topology test CA", cwd=where)
    for name, extension in (("server", "subjectAltName=DNS:localhost,IP:127.0.0.1"), ("client", "extendedKeyUsage=clientAuth")):
        openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}.key", "-out", f"{name}.csr",
                "-subj", f"/CN={name}", cwd=where)
        (where / f"{name}.ext").write_text(extension + "\n", encoding="utf-8")
        openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
                "-out", f"{name}.pem", "-days", "2", "-extfile", f"{name}.ext", cwd=where)
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "other.key", "-out", "other-ca.pem", "-days", "2",
            "-subj", "/CN=another CA", cwd=where)
    return where


class TlsProxy:
    """TLS on a local port, plain TCP to the broker's management port behind it."""

    def __init__(self, certificates: Path, require_client_certificate: bool, backend: tuple[str, int] | None = None):
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.context.load_cert_chain(certificates / "server.pem", certificates / "server.key")
        if require_client_certificate:
            self.context.verify_mode = ssl.CERT_REQUIRED
            self.context.load_verify_locations(certificates / "ca.pem")
        management = urlsplit(BROKER_URL)
        self.backend = backend or (management.hostname, management.port or 15672)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.closed = False
        threading.Thread(target=self.serve, daemon=True).start()

    def serve(self) -> None:
        while not self.closed:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self.handle, args=(client,), daemon=True).start()

    def handle(self, client: socket.socket) -> None:
        try:
            secure = self.context.wrap_socket(client, server_side=True)
        except (ssl.SSLError, OSError):
            client.close()
            return
        upstream = socket.create_connection(self.backend)

        def pump(source: socket.socket, sink: socket.socket) -> None:
            try:
                while data := source.recv(65536):
                    sink.sendall(data)
            except OSError:
                pass
            finally:
                for end in (source, sink):
                    try:
                        end.shutdown(socket.SHUT_RDWR)
                    except OSError:
                        pass

        threading.Thread(target=pump, args=(upstream, secure), daemon=True).start()
        pump(secure, upstream)

    def close(self) -> None:
        self.closed = True
        self.listener.close()


@pytest.fixture
def tls_project(tmp_path, certificates, monkeypatch, vhost):
    proxy = TlsProxy(certificates, require_client_certificate=True)
    amqp = TlsProxy(certificates, require_client_certificate=True, backend=(AMQP_HOST, AMQP_PORT))
    (tmp_path / "shop.yaml").write_text(f"vhosts:\n  {vhost}:\n    queues:\n      q: {{}}\n", encoding="utf-8")

    def write(tls: str) -> str:
        path = tmp_path / "topology.toml"
        path.write_text(f"""
[targets.secure]
url = "https://localhost:{proxy.port}"
amqp_url = "amqps://localhost:{amqp.port}/"
files = ["shop.yaml"]
tls = {{{tls}}}
""", encoding="utf-8")
        return str(path)

    monkeypatch.chdir(tmp_path)
    for variable in ("TOPOLOGY_URL", "TOPOLOGY_AMQP_URL"):  # the target's own URLs apply (else: a warning line)
        monkeypatch.delenv(variable, raising=False)
    yield write
    proxy.close()
    amqp.close()


def test_tls_verifies_the_broker_and_presents_the_client_certificate(run, tls_project, certificates):
    ca, cert, key = (str(certificates / f) for f in ("ca.pem", "client.pem", "client.key"))
    tls_project(f'ca = "{ca}", cert = "{cert}", key = "{key}"')
    planned = run("plan", "--target", "secure")
    assert planned.code == 0 and "+ queue q" in planned.out, planned.err
    applied = run("apply", "--target", "secure", "--auto-approve")  # the apply lock goes over amqps
    assert applied.code == 0 and "Apply complete" in applied.out, applied.err

    tls_project(f'ca = "{certificates / "other-ca.pem"}", cert = "{cert}", key = "{key}"')
    untrusted = run("plan", "--target", "secure")
    assert untrusted.code == 1 and "TLS error" in untrusted.err
    assert f"the broker's certificate is not trusted by the CA file {certificates / 'other-ca.pem'}" in untrusted.err
    assert untrusted.err.count("\n") == 1

    insecure = run("apply", "--target", "secure", "--insecure", "--auto-approve")
    assert insecure.code == 0 and insecure.err.startswith("warning: TLS certificate verification is off")

    tls_project(f'ca = "{ca}"')
    no_certificate = run("plan", "--target", "secure")
    assert no_certificate.code == 1 and no_certificate.err.count("\n") == 1, no_certificate.err
    # TLS 1.3 reports the refusal as an alert or, depending on timing, as the connection closing
    assert "TLS error" in no_certificate.err
    assert "the broker asks for a client certificate" in no_certificate.err or \
        "does it require a client certificate?" in no_certificate.err

    tls_project(f'ca = "{ca}", cert = "{cert}", key = "{key}", verify = false')
    unverified = run("plan", "--target", "secure")
    assert unverified.code == 0 and "warning: TLS certificate verification is off" in unverified.err
