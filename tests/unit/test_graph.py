"""topology graph: Mermaid checked by its structure, DOT by its structure and by Graphviz's
``dot`` when it is installed."""

from __future__ import annotations

import re
import shutil
import subprocess
import textwrap

import pytest

TOPOLOGY = """
vhosts:
  shop:
    exchanges:
      events: {type: topic, alternate_exchange: unrouted}
      unrouted: {type: fanout}
      by-header: {type: headers}
      dlx: {type: direct}
    queues:
      orders: {dead_letter_exchange: dlx, dead_letter_routing_key: dead}
      'say "hi" | <b>': {}
      dead: {}
    bindings:
      - {source: events, destination: orders, routing_key: "order.#"}
      - {source: by-header, destination: 'say "hi" | <b>', arguments: {x-match: any, kind: pdf}}
      - {source: dlx, destination: dead, routing_key: dead}
      - {source: amq.topic, destination: dead, routing_key: "#"}
  other:
    queues:
      solo: {}
"""


@pytest.fixture
def graph(tmp_path, capsys):
    from topology.cli import main

    path = tmp_path / "t.yaml"
    path.write_text(textwrap.dedent(TOPOLOGY), encoding="utf-8")

    def run(*arguments: str) -> str:
        with pytest.raises(SystemExit) as exit_:
            main(["graph", str(path), *arguments])
        out, err = capsys.readouterr()
        assert exit_.value.code == 0, err
        return out

    return run


def parse_mermaid(text: str) -> tuple[dict[str, list[tuple[str, str, str]]], list[tuple[str, str, str, str]]]:
    """Subgraphs (title → nodes: id, shape, label) and edges (from, arrow, label, to); fails on
    any line that is not one of these."""
    lines = text.splitlines()
    assert lines[0] == "flowchart LR"
    subgraphs: dict[str, list[tuple[str, str, str]]] = {}
    edges = []
    current = None
    directions = 0
    for line in lines[1:]:
        if match := re.fullmatch(r'  subgraph (\w+)\["([^"]*)"\]', line):
            assert current is None
            current = subgraphs.setdefault(match[2], [])
        elif line == "    direction LR":
            assert current is not None  # every subgraph repeats the flowchart's direction
            directions += 1
        elif line == "  end":
            assert current is not None
            current = None
        elif match := re.fullmatch(r'    (\w+)\{\{"([^"]*)"\}\}', line):
            current.append((match[1], "hexagon", match[2]))
        elif match := re.fullmatch(r'    (\w+)\[\("([^"]*)"\)\]', line):
            current.append((match[1], "cylinder", match[2]))
        elif match := re.fullmatch(r'  (\w+) (-->|-\.->)(?:\|"([^"]*)"\|)? (\w+)', line):
            edges.append((match[1], match[2], match[3] or "", match[4]))
        else:
            raise AssertionError(f"not Mermaid this test knows: {line!r}")
    assert current is None
    assert directions == len(subgraphs)
    return subgraphs, edges


def test_mermaid_has_one_subgraph_per_vhost_shapes_and_dashed_dead_letters(graph):
    subgraphs, edges = parse_mermaid(graph("--format", "mermaid"))
    assert sorted(subgraphs) == ["vhost other", "vhost shop"]
    nodes = {node_id: (shape, label) for nodes in subgraphs.values() for node_id, shape, label in nodes}
    by_label = {label: (node_id, shape) for node_id, (shape, label) in nodes.items()}
    assert by_label["events (topic)"][1] == "hexagon" and by_label["orders (classic)"][1] == "cylinder"
    assert by_label["amq.topic (topic)"][1] == "hexagon"  # built in, shown because it is bound
    assert "amq.direct (direct)" not in by_label
    assert "say #quot;hi#quot; #124; #lt;b#gt; (classic)" in by_label  # escaped
    named = {(nodes[a][1], arrow, label, nodes[b][1]) for a, arrow, label, b in edges}
    assert ("events (topic)", "-->", "order.#", "orders (classic)") in named
    assert ("orders (classic)", "-.->", "dead letters (dead)", "dlx (direct)") in named
    assert ("events (topic)", "-.->", "alternate", "unrouted (fanout)") in named
    assert ("by-header (headers)", "-->", "any kind=#quot;pdf#quot;", "say #quot;hi#quot; #124; #lt;b#gt; (classic)") \
        in named
    assert all(a in nodes and b in nodes for a, _, _, b in edges)


def test_dot_is_valid_graphviz_with_one_cluster_per_vhost(graph, tmp_path):
    text = graph("--format", "dot", "--vhost", "shop")
    assert text.startswith("digraph topology {") and text.rstrip().endswith("}")
    assert text.count("subgraph cluster_") == 1 and 'label="vhost shop";' in text
    assert re.search(r'n\d+ \[shape=cylinder, label="say \\"hi\\" \| <b> \(classic\)"\];', text)
    dashed = re.findall(r'-> n\d+ \[label="([^"]*)", style=dashed\]', text)
    assert sorted(dashed) == ["alternate", "dead letters (dead)"]
    if shutil.which("dot"):  # Graphviz, when installed, must accept it
        result = subprocess.run(["dot", "-Tsvg"], input=text, capture_output=True, text=True, check=False)
        assert result.returncode == 0, result.stderr


def test_an_unknown_vhost_is_one_error_line(tmp_path, capsys):
    from topology.cli import main

    path = tmp_path / "t.yaml"
    path.write_text(textwrap.dedent(TOPOLOGY), encoding="utf-8")
    with pytest.raises(SystemExit) as exit_:
        main(["graph", str(path), "--vhost", "nope"])
    assert exit_.value.code == 1 and capsys.readouterr().err.strip().endswith("error: vhost 'nope' is not declared in the files")
