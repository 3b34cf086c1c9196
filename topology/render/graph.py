"""``topology graph``: the exchanges, queues and their links as Mermaid or Graphviz DOT (pure).

Exchanges are hexagons, queues cylinders. Bindings are solid arrows labelled with their routing
key (or, for header bindings, ``x-match`` and the headers); dead-letter routes (queue → its
dead-letter exchange, labelled with the dead-letter routing key) and alternate exchanges are
dashed. One subgraph per vhost; built-in exchanges appear only when something links to them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any
from topology.route import Network
from topology.kinds import BindingState, ExchangeState
from topology.state import State


@dataclass
class Graph:
    """Nodes and edges of one or more vhosts."""

    vhosts: dict[str, list[tuple[str, str, str]]] = field(default_factory=dict)
    """vhost → nodes (id, kind ``exchange`` or ``queue``, label)."""
    edges: list[tuple[str, str, str, str]] = field(default_factory=list)
    """(from id, to id, label, style ``binding``, ``dead-letter`` or ``alternate``)."""


def binding_text(routing_key: str, arguments: dict[str, Any]) -> str:
    """A binding as a label: its key, then ``x-match`` and the other arguments as ``k=v``."""
    parts = [routing_key] if routing_key else []
    if "x-match" in arguments:
        parts.append(str(arguments["x-match"]))
    parts += [f"{k}={json.dumps(v, ensure_ascii=False)}" for k, v in sorted(arguments.items()) if k != "x-match"]
    return " ".join(parts)


def binding_label(binding: BindingState) -> str:
    return binding_text(binding.routing_key, binding.arguments)


def build(state: State, vhosts: list[str] | None = None) -> Graph:
    graph = Graph()
    ids: dict[tuple[str, str, str], str] = {}

    def node(vhost: str, kind: str, name: str, label: str) -> str:
        key = (vhost, kind, name)
        if key not in ids:
            ids[key] = f"n{len(ids)}"
            graph.vhosts.setdefault(vhost, []).append((ids[key], kind, label))
        return ids[key]

    for vhost in sorted(vhosts if vhosts is not None else state.vhosts):
        graph.vhosts.setdefault(vhost, [])
        network = Network(state, vhost)
        exchanges = sorted((r for r in state.objects.values() if r.vhost == vhost and isinstance(r, ExchangeState)),
                           key=lambda r: r.exchange)
        queues = sorted(network.queues.values(), key=lambda r: r.queue)

        def exchange_node(name: str) -> str:
            spec = network.exchanges.get(name)
            kind = spec.type if spec is not None else "not declared"
            extra = ", internal" if spec is not None and spec.internal else ""
            label = "(default exchange)" if name == "" else f"{name} ({kind}{extra})"
            return node(vhost, "exchange", name, label)

        for exchange in exchanges:
            exchange_node(exchange.exchange)
        for queue in queues:
            node(vhost, "queue", queue.queue, f"{queue.queue} ({queue.type})")
        for binding in sorted((b for bindings in network.bindings.values() for b in bindings), key=lambda r: r.key):
            target = exchange_node(binding.destination) if binding.destination_type == "exchange" else \
                node(vhost, "queue", binding.destination, binding.destination)
            graph.edges.append((exchange_node(binding.source), target, binding_label(binding), "binding"))
        for exchange in exchanges:
            alternate = network.exchange_setting(exchange, "alternate-exchange")
            if isinstance(alternate, str):
                graph.edges.append((exchange_node(exchange.exchange), exchange_node(alternate), "alternate", "alternate"))
        for queue in queues:
            settings = network.queue_settings(queue)
            dead, key = settings.get("dead-letter-exchange"), settings.get("dead-letter-routing-key")
            if isinstance(dead, str):
                label = "dead letters" + (f" ({key})" if key is not None else "")
                graph.edges.append((node(vhost, "queue", queue.queue, queue.queue), exchange_node(dead),
                                    label, "dead-letter"))
    return graph


def mermaid(graph: Graph) -> str:
    """A Mermaid flowchart: one subgraph per vhost."""
    lines = ["flowchart LR"]
    for index, (vhost, nodes) in enumerate(graph.vhosts.items()):
        lines.append(f'  subgraph vhost{index}["vhost {_mermaid_text(vhost)}"]')
        lines.append("    direction LR")  # a subgraph lays out top to bottom unless told again
        for node_id, kind, label in nodes:
            text = _mermaid_text(label)
            lines.append(f'    {node_id}{{{{"{text}"}}}}' if kind == "exchange" else f'    {node_id}[("{text}")]')
        lines.append("  end")
    for source, target, label, style in graph.edges:
        arrow = "-->" if style == "binding" else "-.->"
        lines.append(f'  {source} {arrow}|"{_mermaid_text(label)}"| {target}' if label else f"  {source} {arrow} {target}")
    return "\n".join(lines) + "\n"


def _mermaid_text(text: str) -> str:
    """Text safe inside a quoted Mermaid label (entity codes for what would end or break it)."""
    replacements = {"&": "#amp;", '"': "#quot;", "<": "#lt;", ">": "#gt;", "|": "#124;", "\n": " "}
    return "".join(replacements.get(c, c) for c in text) or " "


def dot(graph: Graph) -> str:
    """A Graphviz digraph: one cluster per vhost."""
    lines = ["digraph topology {", "  rankdir=LR;", '  node [fontname="Helvetica"];']
    for index, (vhost, nodes) in enumerate(graph.vhosts.items()):
        lines.append(f"  subgraph cluster_{index} {{")
        lines.append(f"    label={_dot_text('vhost ' + vhost)};")
        for node_id, kind, label in nodes:
            shape = "hexagon" if kind == "exchange" else "cylinder"
            lines.append(f"    {node_id} [shape={shape}, label={_dot_text(label)}];")
        lines.append("  }")
    for source, target, label, style in graph.edges:
        attributes = [f"label={_dot_text(label)}"]
        if style != "binding":
            attributes.append("style=dashed")
        lines.append(f"  {source} -> {target} [{', '.join(attributes)}];")
    lines.append("}")
    return "\n".join(lines) + "\n"


def _dot_text(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def render(state: State, output_format: str, vhosts: list[str] | None = None) -> str:
    graph = build(state, vhosts)
    return mermaid(graph) if output_format == "mermaid" else dot(graph)
