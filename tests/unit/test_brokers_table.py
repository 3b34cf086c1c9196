"""The brokers the suite is tested on: scripts/brokers.tsv, read by scripts/brokers.sh, the CI
run and the README's table, which must say the same."""

from __future__ import annotations

import csv
import re

from tests.conftest import ROOT

TABLE = ROOT / "scripts" / "brokers.tsv"
COLUMNS = ["name", "source", "series", "amqp", "http", "dist", "epmd", "store", "ci"]


def brokers() -> list[dict[str, str]]:
    lines = [line for line in TABLE.read_text(encoding="utf-8").splitlines() if line and not line.startswith("#")]
    rows = list(csv.DictReader(lines, delimiter="\t"))
    assert rows and list(rows[0]) == COLUMNS
    return rows


def readme_table() -> str:
    """The README's table as brokers.tsv makes it."""
    lines = ["| RabbitMQ | from | metadata store | in CI | AMQP | management |", "|---|---|---|---|---|---|"]
    for row in brokers():
        source = "the machine's rabbitmq-server" if row["source"] == "host" else f"Debian {row['source']}"
        ci = "broker tests" if row["ci"] == "yes" else "on demand"
        lines.append(f"| {row['series']} | {source} | {row['store'].capitalize()} | {ci} | {row['amqp']} | {row['http']} |")
    return "\n".join(lines)


def test_the_readme_table_is_the_brokers_file():
    text = (ROOT / "docs" / "development.md").read_text(encoding="utf-8")
    found = re.search(r"<!-- brokers table: [^\n]*-->\n(.*?)\n<!-- end of brokers table -->", text, re.S)
    assert found, "docs/development.md has no brokers table"
    assert found.group(1) == readme_table(), "the brokers table is stale; it should read:\n" + readme_table()


def test_every_broker_has_its_own_ports_a_known_store_and_a_series():
    rows = brokers()
    for column in ("amqp", "http", "dist", "epmd"):
        ports = [int(row[column]) for row in rows]
        assert len(set(ports)) == len(ports), column
    everything = [int(row[c]) for row in rows for c in ("amqp", "http", "dist", "epmd")]
    assert not {5672, 15672, 4369, 25672} & set(everything)  # the machine's own broker keeps its ports
    for row in rows:
        assert row["store"] in ("mnesia", "khepri") and row["ci"] in ("yes", "no")
        assert re.fullmatch(r"[0-9]+\.[0-9]+", row["series"]) and row["name"].startswith(row["series"])


def test_the_script_reads_the_same_table():
    import subprocess

    script = str(ROOT / "scripts" / "brokers.sh")
    names = subprocess.run([script, "names"], capture_output=True, text=True, check=True).stdout.split()
    ci = subprocess.run([script, "names", "--ci"], capture_output=True, text=True, check=True).stdout.split()
    assert names == [row["name"] for row in brokers()] and ci == [row["name"] for row in brokers() if row["ci"] == "yes"]
    for row in brokers():
        lines = subprocess.run([script, "env", row["name"]], capture_output=True, text=True, check=True).stdout
        assert lines == f"TOPOLOGY_URL=http://127.0.0.1:{row['http']}\nTOPOLOGY_AMQP_URL=amqp://127.0.0.1:{row['amqp']}/\n"
    unknown = subprocess.run([script, "env", "9.9"], capture_output=True, text=True)
    assert unknown.returncode == 1 and unknown.stderr.startswith("brokers: unknown broker '9.9' (known: ")
