"""Unit tests for topology.validate: semantic rules over a loaded topology.

The main test is a table. Each case is a small YAML document; a comment ``# <- text``
on a line means "a problem whose message contains *text* is reported at this line"
(several ``# <-`` on one line mean several problems there). A document without such
comments must validate cleanly. Every case must report exactly the marked problems.
"""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest
import yaml

from topology.errors import ConfigError, Problem
from topology.loader import load, load_valid
from topology.rules.queues import argument_for, field_for
from topology.kinds.queue import queue_arguments
from topology.validate import validate

MARK = "# <- "


def _expected(text: str) -> list[tuple[int, str]]:
    expected = []
    for number, line in enumerate(text.splitlines(), start=1):
        for fragment in line.split(MARK)[1:]:
            expected.append((number, fragment.strip()))
    return expected


def _problems(tmp_path: Path, text: str) -> tuple[str, list[Problem]]:
    file = tmp_path / "topology.yaml"
    file.write_text(text, encoding="utf-8")
    try:
        topology = load([str(file)])
    except ConfigError as error:  # the table is about semantics: every document must load
        pytest.fail("document does not load: " + "; ".join(str(p) for p in error.problems))
    try:
        validate(topology)
    except ConfigError as error:
        return str(file), error.problems + topology.warnings
    return str(file), topology.warnings  # the table marks warnings like problems


def check(tmp_path: Path, text: str) -> list[Problem]:
    text = textwrap.dedent(text).lstrip("\n")
    expected = _expected(text)
    file, problems = _problems(tmp_path, text)
    shown = "\n".join(str(p) for p in problems) or "(no problems)"
    assert all(p.file == file for p in problems), shown
    remaining = list(problems)
    for line, fragment in expected:
        match = next((p for p in remaining if p.line == line and fragment in p.message), None)
        assert match is not None, f"expected a problem at line {line} containing {fragment!r}; got:\n{shown}"
        remaining.remove(match)
    assert not remaining, f"unexpected problems:\n{shown}"
    return problems


def case(id: str, text: str, *marks: pytest.MarkDecorator):
    return pytest.param(text, id=id, marks=marks)


# --------------------------------------------------------------------------- the table

CASES = [
    # ---------------------------------------------------------------- bindings: references
    case(
        "binding-ok",
        """
        vhosts:
          v:
            exchanges:
              orders: {type: topic}
            queues:
              q: {}
            bindings:
              - {source: orders, destination: q, routing_key: "order.*"}
        """,
    ),
    case(
        "binding-source-builtin-amq-topic-ok",
        """
        vhosts:
          v:
            queues:
              q: {}
            bindings:
              - {source: amq.topic, destination: q, routing_key: "a.*"}
              - {source: amq.direct, destination: q, routing_key: a}
              - {source: amq.fanout, destination: q}
              - {source: amq.match, destination: q, arguments: {x-match: any, a: 1}}
        """,
    ),
    case(
        "binding-source-undeclared",
        """
        vhosts:
          v:
            queues:
              q: {}
            bindings:
              - source: nope  # <- source exchange 'nope' is not declared in vhost 'v'
                destination: q
        """,
    ),
    case(
        "binding-source-undeclared-amq-lookalike",
        """
        vhosts:
          v:
            queues:
              q: {}
            bindings:
              - source: amq.topics  # <- source exchange 'amq.topics' is not declared
                destination: q
        """,
    ),
    case(
        "binding-source-declared-in-other-vhost",
        """
        vhosts:
          a:
            exchanges:
              e: {type: direct}
          b:
            queues:
              q: {}
            bindings:
              - source: e  # <- source exchange 'e' is not declared in vhost 'b'
                destination: q
        """,
    ),
    case(
        "binding-default-exchange-cannot-be-bound",
        """
        vhosts:
          v:
            queues:
              q: {}
            bindings:
              - source: ""  # <- the default exchange cannot be bound
                destination: q
                routing_key: q
        """,
    ),
    case(
        "binding-destination-queue-undeclared",
        """
        vhosts:
          v:
            exchanges:
              e: {type: direct}
            bindings:
              - source: e
                destination: missing  # <- destination queue 'missing' is not declared in vhost 'v'
        """,
    ),
    case(
        "binding-source-and-destination-both-undeclared",
        """
        vhosts:
          v:
            bindings:
              - source: e  # <- source exchange 'e' is not declared
                destination: q  # <- destination queue 'q' is not declared
        """,
    ),
    case(
        "binding-exchange-to-exchange-ok",
        """
        vhosts:
          v:
            exchanges:
              upstream: {type: topic}
              downstream: {type: fanout}
            bindings:
              - {source: upstream, destination: downstream, destination_type: exchange, routing_key: "#"}
              - {source: upstream, destination: amq.fanout, destination_type: exchange}
        """,
    ),
    case(
        "binding-exchange-to-exchange-destination-undeclared",
        """
        vhosts:
          v:
            exchanges:
              upstream: {type: topic}
            bindings:
              - source: upstream
                destination: nowhere  # <- destination exchange 'nowhere' is not declared in vhost 'v'
                destination_type: exchange
        """,
    ),
    case(
        "binding-exchange-destination-is-a-queue-name",
        """
        vhosts:
          v:
            exchanges:
              upstream: {type: topic}
            queues:
              q: {}
            bindings:
              - source: upstream
                destination: q  # <- destination exchange 'q' is not declared
                destination_type: exchange
        """,
    ),
    case(
        "binding-queue-destination-is-an-exchange-name",
        """
        vhosts:
          v:
            exchanges:
              upstream: {type: topic}
              other: {type: topic}
            bindings:
              - source: upstream
                destination: other  # <- destination queue 'other' is not declared
        """,
    ),
    # ---------------------------------------------------------------- dead-letter and alternate exchanges
    case(
        "dlx-friendly-undeclared",
        """
        vhosts:
          v:
            queues:
              q:
                dead_letter_exchange: dlx  # <- dead-letter exchange 'dlx' is not declared in vhost 'v'
        """,
    ),
    case(
        "dlx-raw-undeclared",
        """
        vhosts:
          v:
            queues:
              q:
                arguments:
                  x-dead-letter-exchange: dlx  # <- dead-letter exchange 'dlx' is not declared in vhost 'v'
        """,
    ),
    case(
        "dlx-declared-builtin-and-default-ok",
        """
        vhosts:
          v:
            exchanges:
              dlx: {type: fanout}
            queues:
              a: {dead_letter_exchange: dlx}
              b: {dead_letter_exchange: "", dead_letter_routing_key: dead}
              c: {arguments: {x-dead-letter-exchange: ""}}
              d: {arguments: {x-dead-letter-exchange: dlx}}
              e: {dead_letter_exchange: amq.direct}
              f: {type: quorum, dead_letter_exchange: dlx, dead_letter_strategy: at-least-once, overflow: reject-publish}
        """,
    ),
    case(
        "dlx-raw-must-be-a-string",
        """
        vhosts:
          v:
            queues:
              q:
                arguments:
                  x-dead-letter-exchange: 5  # <- x-dead-letter-exchange must be a string
        """,
    ),
    case(
        "alternate-exchange-friendly-undeclared",
        """
        vhosts:
          v:
            exchanges:
              e:
                type: direct
                alternate_exchange: unrouted  # <- alternate exchange 'unrouted' is not declared in vhost 'v'
        """,
    ),
    case(
        "alternate-exchange-raw-undeclared",
        """
        vhosts:
          v:
            exchanges:
              e:
                type: direct
                arguments:
                  alternate-exchange: unrouted  # <- alternate exchange 'unrouted' is not declared
        """,
    ),
    case(
        "alternate-exchange-declared-ok",
        """
        vhosts:
          v:
            exchanges:
              e: {type: direct, alternate_exchange: unrouted}
              f: {type: direct, arguments: {alternate-exchange: unrouted}}
              g: {type: direct, alternate_exchange: amq.fanout}
              unrouted: {type: fanout}
        """,
    ),
    case(
        "alternate-exchange-raw-not-a-name",
        """
        vhosts:
          v:
            exchanges:
              e:
                type: direct
                arguments:
                  alternate-exchange: [a, b]  # <- the alternate exchange must be an exchange name
        """,
    ),
    # ---------------------------------------------------------------- friendly field and raw argument both given
    case(
        "both-message-ttl-and-x-message-ttl",
        """
        vhosts:
          v:
            queues:
              q:
                message_ttl: 30s
                arguments:
                  x-message-ttl: 30000  # <- x-message-ttl is also given as message_ttl
        """,
    ),
    case(
        "both-dead-letter-exchange-and-raw",
        """
        vhosts:
          v:
            exchanges:
              dlx: {type: fanout}
            queues:
              q:
                dead_letter_exchange: dlx
                arguments:
                  x-dead-letter-exchange: dlx  # <- x-dead-letter-exchange is also given as dead_letter_exchange
        """,
    ),
    case(
        "both-type-and-x-queue-type",
        """
        vhosts:
          v:
            queues:
              q:
                type: quorum
                arguments:
                  x-queue-type: quorum  # <- x-queue-type is also given as type
        """,
    ),
    case(
        "both-alternate-exchange-and-raw",
        """
        vhosts:
          v:
            exchanges:
              ae: {type: fanout}
              e:
                type: direct
                alternate_exchange: ae
                arguments:
                  alternate-exchange: ae  # <- alternate-exchange is also given as alternate_exchange
        """,
    ),
    # ---------------------------------------------------------------- quorum and stream: durable, not auto-delete
    case(
        "quorum-not-durable",
        """
        vhosts:
          v:
            queues:
              q:
                type: quorum
                durable: false  # <- quorum queues are always durable
        """,
    ),
    case(
        "stream-auto-delete",
        """
        vhosts:
          v:
            queues:
              s:
                type: stream
                auto_delete: true  # <- stream queues cannot be auto-delete
        """,
    ),
    case(
        "quorum-neither-durable-nor-keep",
        """
        vhosts:
          v:
            queues:
              q:
                type: quorum
                durable: no  # <- quorum queues are always durable
                auto_delete: yes  # <- quorum queues cannot be auto-delete
        """,
    ),
    case(
        "classic-transient-auto-delete-ok",
        """
        vhosts:
          v:
            queues:
              q: {durable: false, auto_delete: true}
        """,
    ),
    # ---------------------------------------------------------------- queue-type specific arguments
    case(
        "quorum-max-priority",
        """
        vhosts:
          v:
            queues:
              q:
                type: quorum
                max_priority: 10  # <- max_priority (x-max-priority) is not supported by quorum queues
        """,
    ),
    case(
        "quorum-raw-x-max-priority",
        """
        vhosts:
          v:
            queues:
              q:
                type: quorum
                arguments:
                  x-max-priority: 10  # <- x-max-priority is not supported by quorum queues (friendly field: max_priority)
        """,
    ),
    case(
        "quorum-queue-mode",
        """
        vhosts:
          v:
            queues:
              q:
                type: quorum
                queue_mode: lazy  # <- queue_mode (x-queue-mode) is not supported by quorum queues
        """,
    ),
    case(
        "quorum-raw-x-queue-mode",
        """
        vhosts:
          v:
            queues:
              q:
                type: quorum
                arguments: {x-queue-mode: lazy}  # <- x-queue-mode is not supported by quorum queues
        """,
    ),
    case(
        "classic-delivery-limit",
        """
        vhosts:
          v:
            queues:
              q:
                type: classic
                delivery_limit: 3  # <- delivery_limit (x-delivery-limit) is not supported by classic queues
        """,
    ),
    case(
        "untyped-defaults-to-classic-delivery-limit",
        """
        vhosts:
          v:
            queues:
              q:
                delivery_limit: 3  # <- delivery_limit (x-delivery-limit) is not supported by classic queues
        """,
    ),
    case(
        "classic-dead-letter-strategy",
        """
        vhosts:
          v:
            queues:
              q:
                dead_letter_strategy: at-least-once  # <- dead_letter_strategy (x-dead-letter-strategy) is not supported by classic queues
        """,
    ),
    case(
        "classic-raw-x-delivery-limit",
        """
        vhosts:
          v:
            queues:
              q:
                arguments:
                  x-delivery-limit: 3  # <- x-delivery-limit is not supported by classic queues (friendly field: delivery_limit)
        """,
    ),
    case(
        "classic-max-age",
        """
        vhosts:
          v:
            queues:
              q:
                max_age: 7D  # <- max_age (x-max-age) is not supported by classic queues
        """,
    ),
    case(
        "stream-max-length-not-supported",
        """
        vhosts:
          v:
            queues:
              s:
                type: stream
                max_length: 10  # <- max_length (x-max-length) is not supported by stream queues
        """,
    ),
    case(
        "type-specific-arguments-ok",
        """
        vhosts:
          v:
            queues:
              c: {type: classic, max_priority: 10, queue_mode: lazy, message_ttl: 1h, max_length: 5, overflow: reject-publish-dlx}
              q: {type: quorum, delivery_limit: 5, dead_letter_strategy: at-most-once, leader_locator: balanced, initial_group_size: 3}
              s: {type: stream, max_age: 7D, max_length_bytes: 10GB, initial_group_size: 3, leader_locator: client-local}
              r: {arguments: {x-max-priority: 5, x-queue-mode: default, x-queue-version: 2, x-custom-plugin-arg: [any, thing]}}
        """,
    ),
    # ---------------------------------------------------------------- initial_group_size
    case(
        "initial-group-size-on-classic",
        """
        vhosts:
          v:
            queues:
              q:
                initial_group_size: 3  # <- initial_group_size (x-quorum-initial-group-size) is not supported by classic queues
        """,
    ),
    case(
        "initial-group-size-and-raw-on-quorum",
        """
        vhosts:
          v:
            queues:
              q:
                type: quorum
                initial_group_size: 3
                arguments:
                  x-quorum-initial-group-size: 3  # <- x-quorum-initial-group-size is also given as initial_group_size
        """,
    ),
    case(
        "initial-group-size-and-raw-on-stream",
        """
        vhosts:
          v:
            queues:
              s:
                type: stream
                initial_group_size: 3
                arguments:
                  x-initial-cluster-size: 3  # <- x-initial-cluster-size is also given as initial_group_size
        """,
    ),
    case(
        "raw-initial-cluster-size-on-quorum",
        """
        vhosts:
          v:
            queues:
              q:
                type: quorum
                arguments:
                  x-initial-cluster-size: 3  # <- x-initial-cluster-size is not supported by quorum queues (friendly field: initial_group_size)
        """,
    ),
    # ---------------------------------------------------------------- vhost default queue type
    case(
        "vhost-default-quorum-makes-untyped-queue-quorum",
        """
        vhosts:
          v:
            default_queue_type: quorum
            queues:
              q:
                max_priority: 5  # <- max_priority (x-max-priority) is not supported by quorum queues
        """,
    ),
    case(
        "vhost-default-quorum-untyped-queue-must-be-durable",
        """
        vhosts:
          v:
            default_queue_type: quorum
            queues:
              q:
                durable: false  # <- quorum queues are always durable
        """,
    ),
    case(
        "vhost-default-quorum-explicit-classic-ok",
        """
        vhosts:
          v:
            default_queue_type: quorum
            queues:
              a: {type: classic, max_priority: 5}
              b: {arguments: {x-queue-type: classic, x-max-priority: 5}}
              c: {delivery_limit: 3}
        """,
    ),
    case(
        "vhost-default-stream",
        """
        vhosts:
          v:
            default_queue_type: stream
            queues:
              s:
                max_age: 1D
                delivery_limit: 2  # <- delivery_limit (x-delivery-limit) is not supported by stream queues
        """,
    ),
    case(
        "vhost-default-does-not-leak-to-other-vhosts",
        """
        vhosts:
          a:
            default_queue_type: quorum
          b:
            queues:
              q: {max_priority: 5}
        """,
    ),
    # ---------------------------------------------------------------- overflow
    case(
        "quorum-overflow-reject-publish-dlx",
        """
        vhosts:
          v:
            queues:
              q:
                type: quorum
                overflow: reject-publish-dlx  # <- quorum queues do not support overflow reject-publish-dlx
        """,
    ),
    case(
        "quorum-raw-x-overflow-reject-publish-dlx",
        """
        vhosts:
          v:
            queues:
              q:
                type: quorum
                arguments:
                  x-overflow: reject-publish-dlx  # <- quorum queues do not support overflow reject-publish-dlx
        """,
    ),
    # ---------------------------------------------------------------- raw argument value kinds
    case(
        "raw-x-max-length-not-a-number",
        """
        vhosts:
          v:
            queues:
              q:
                arguments:
                  x-max-length: abc  # <- x-max-length must be a non-negative integer
        """,
    ),
    case(
        "raw-argument-kinds",
        """
        vhosts:
          v:
            queues:
              q:
                arguments:
                  x-max-length: -1  # <- x-max-length must be a non-negative integer
                  x-message-ttl: "1000"  # <- x-message-ttl must be a non-negative integer
                  x-expires: 0  # <- x-expires must be a positive integer
                  x-max-length-bytes: true  # <- x-max-length-bytes must be a non-negative integer
                  x-single-active-consumer: "yes"  # <- x-single-active-consumer must be true or false
                  x-overflow: drop-tail  # <- x-overflow must be one of drop-head, reject-publish, reject-publish-dlx
                  x-max-priority: 256  # <- x-max-priority must be an integer from
                  x-queue-version: 3  # <- x-queue-version must be one of 1, 2
                  x-queue-mode: eager  # <- x-queue-mode must be one of default, lazy
        """,
    ),
    case(
        "raw-x-queue-type-unknown",
        """
        vhosts:
          v:
            queues:
              q:
                arguments:
                  x-queue-type: quorom  # <- x-queue-type must be classic, quorum or stream
        """,
    ),
    case(
        "raw-x-queue-type-sets-the-type",
        """
        vhosts:
          v:
            queues:
              q:
                arguments:
                  x-queue-type: quorum
                  x-max-priority: 3  # <- x-max-priority is not supported by quorum queues
        """,
    ),
    case(
        "friendly-expires-zero",
        """
        vhosts:
          v:
            queues:
              q:
                expires: 0  # <- expires must be greater than zero
        """,
    ),
    # ---------------------------------------------------------------- policies
    case(
        "policy-ha-exactly-ok",
        """
        vhosts:
          v:
            policies:
              ha:
                pattern: ".*"
                apply_to: queues
                definition: {ha-mode: exactly, ha-params: 2, ha-sync-mode: automatic}
        """,
    ),
    case(
        "policy-ha-exactly-params-string",
        """
        vhosts:
          v:
            policies:
              ha:
                pattern: ".*"
                definition:
                  ha-mode: exactly
                  ha-params: "2"  # <- with ha-mode exactly, ha-params must be an integer of at least 1
        """,
    ),
    case(
        "policy-ha-exactly-params-zero",
        """
        vhosts:
          v:
            policies:
              ha:
                pattern: ".*"
                definition:
                  ha-mode: exactly
                  ha-params: 0  # <- with ha-mode exactly, ha-params must be an integer of at least 1
        """,
    ),
    case(
        "policy-ha-exactly-params-boolean",
        """
        vhosts:
          v:
            policies:
              ha:
                pattern: ".*"
                definition:
                  ha-mode: exactly
                  ha-params: true  # <- with ha-mode exactly, ha-params must be an integer of at least 1
        """,
    ),
    case(
        "policy-ha-exactly-params-missing",
        """
        vhosts:
          v:
            policies:
              ha:
                pattern: ".*"
                definition:  # <- with ha-mode exactly, ha-params must be an integer of at least 1
                  ha-mode: exactly
        """,
    ),
    case(
        "policy-ha-nodes-ok",
        """
        vhosts:
          v:
            policies:
              ha:
                pattern: ".*"
                definition: {ha-mode: nodes, ha-params: [rabbit@a, rabbit@b]}
        """,
    ),
    case(
        "policy-ha-nodes-params-not-a-list",
        """
        vhosts:
          v:
            policies:
              ha:
                pattern: ".*"
                definition:
                  ha-mode: nodes
                  ha-params: rabbit@a  # <- with ha-mode nodes, ha-params must be a non-empty list of node names
        """,
    ),
    case(
        "policy-ha-nodes-params-empty-list",
        """
        vhosts:
          v:
            policies:
              ha:
                pattern: ".*"
                definition:
                  ha-mode: nodes
                  ha-params: []  # <- with ha-mode nodes, ha-params must be a non-empty list of node names
        """,
    ),
    case(
        "policy-ha-all-with-params",
        """
        vhosts:
          v:
            policies:
              ha:
                pattern: ".*"
                definition:
                  ha-mode: all
                  ha-params: 2  # <- ha-params is only used with ha-mode exactly or nodes
        """,
    ),
    case(
        "policy-ha-mode-unknown",
        """
        vhosts:
          v:
            policies:
              ha:
                pattern: ".*"
                definition:
                  ha-mode: some  # <- ha-mode must be one of all, exactly, nodes
        """,
    ),
    case(
        "policy-ha-sync-mode-without-ha-mode",
        """
        vhosts:
          v:
            policies:
              ha:
                pattern: ".*"
                definition:
                  ha-sync-mode: automatic  # <- ha-sync-mode needs ha-mode
        """,
    ),
    case(
        "policy-ha-all-with-sync-mode-ok",
        """
        vhosts:
          v:
            policies:
              ha: {pattern: ".*", definition: {ha-mode: all, ha-sync-mode: manual, ha-promote-on-shutdown: always}}
        """,
    ),
    case(
        "policy-unknown-key",
        """
        vhosts:
          v:
            policies:
              p:
                pattern: ".*"
                definition:
                  message_ttl: 1000  # <- unknown policy key 'message_ttl'
        """,
    ),
    case(
        "policy-invalid-regex",
        """
        vhosts:
          v:
            policies:
              p:
                pattern: "^orders.("  # <- invalid regular expression
                definition: {max-length: 10}
        """,
    ),
    case(
        "policy-regex-repetition-too-large",
        """
        vhosts:
          v:
            policies:
              p:
                pattern: "a{4294967296}"  # <- invalid regular expression
                definition: {max-length: 10}
        """,
    ),
    case(
        "policy-regex-nested-too-deeply",
        f"""
        vhosts:
          v:
            policies:
              p:
                pattern: "{'(' * 2000}{')' * 2000}"  # <- invalid regular expression
                definition: {{max-length: 10}}
        """,
    ),
    case(
        "policy-empty-definition",
        """
        vhosts:
          v:
            policies:
              p:
                pattern: ".*"
                definition: {}  # <- a policy definition cannot be empty
        """,
    ),
    case(
        "policy-values-with-units-ok",
        """
        vhosts:
          v:
            policies:
              p:
                pattern: "^orders\\\\."
                apply_to: quorum_queues
                priority: 5
                definition: {message-ttl: 30s, expires: 1d, max-length-bytes: 10MiB, delivery-limit: 5, overflow: reject-publish}
              s:
                pattern: "^stream\\\\."
                apply_to: streams
                definition: {max-age: 7D, stream-max-segment-size-bytes: 500000}
        """,
    ),
    case(
        "policy-value-kinds",
        """
        vhosts:
          v:
            policies:
              p:
                pattern: ".*"
                definition:
                  message-ttl: thirty  # <- invalid duration 'thirty'
                  expires: 0s  # <- expires must be greater than zero
                  max-length-bytes: 10XB  # <- invalid size '10XB'
                  max-length: "5"  # <- max-length must be a non-negative integer
                  max-age: 7 days  # <- must be a number and one of Y, M, D, h, m, s
                  queue-mode: eager  # <- queue-mode must be one of default, lazy
                  overflow: drop-tail  # <- overflow must be one of drop-head, reject-publish, reject-publish-dlx
        """,
    ),
    case(
        "policy-dead-letter-exchange-undeclared",
        """
        vhosts:
          v:
            policies:
              p:
                pattern: ".*"
                definition:
                  dead-letter-exchange: dlx  # <- dead-letter-exchange 'dlx' is not declared in vhost 'v'
        """,
    ),
    case(
        "policy-alternate-exchange-undeclared",
        """
        vhosts:
          v:
            policies:
              p:
                pattern: ".*"
                apply_to: exchanges
                definition:
                  alternate-exchange: ae  # <- alternate-exchange 'ae' is not declared in vhost 'v'
        """,
    ),
    case(
        "policy-dead-letter-exchange-declared-ok",
        """
        vhosts:
          v:
            exchanges:
              dlx: {type: fanout}
            policies:
              p: {pattern: ".*", definition: {dead-letter-exchange: dlx, dead-letter-routing-key: dead}}
              q: {pattern: "^x", definition: {dead-letter-exchange: ""}}
              r: {pattern: "^y", definition: {dead-letter-exchange: amq.fanout}}
        """,
    ),
    # ---------------------------------------------------------------- exchanges
    case(
        "exchange-type-typo",
        """
        vhosts:
          v:
            exchanges:
              e:
                type: topc  # <- unknown exchange type 'topc'
        """,
    ),
    case(
        "exchange-types-ok",
        """
        vhosts:
          v:
            exchanges:
              a: {type: direct}
              b: {type: fanout}
              c: {type: topic}
              d: {type: headers}
              e: {type: x-consistent-hash}
              f: {type: x-delayed-message, arguments: {x-delayed-type: direct}}
        """,
    ),
    case(
        "exchange-delayed-without-delayed-type",
        """
        vhosts:
          v:
            exchanges:
              delayed:  # <- an x-delayed-message exchange needs the argument x-delayed-type
                type: x-delayed-message
        """,
    ),
    case(
        "exchange-delayed-with-other-arguments-only",
        """
        vhosts:
          v:
            exchanges:
              delayed:
                type: x-delayed-message
                arguments:  # <- an x-delayed-message exchange needs the argument x-delayed-type
                  x-other: 1
        """,
    ),
    # ---------------------------------------------------------------- reserved and empty names
    case(
        "exchange-name-amq-reserved",
        """
        vhosts:
          v:
            exchanges:
              amq.custom:  # <- names starting with 'amq.' are reserved by the broker
                type: topic
        """,
    ),
    case(
        "exchange-name-redeclares-builtin",
        """
        vhosts:
          v:
            exchanges:
              amq.topic: {type: topic}  # <- names starting with 'amq.' are reserved
        """,
    ),
    case(
        "queue-name-amq-reserved",
        """
        vhosts:
          v:
            queues:
              amq.gen-123: {}  # <- names starting with 'amq.' are reserved by the broker
        """,
    ),
    case(
        "amq-elsewhere-in-name-ok",
        """
        vhosts:
          v:
            exchanges:
              my.amq.exchange: {type: topic}
              amqp: {type: topic}
            queues:
              q.amq.x: {}
        """,
    ),
    case(
        "empty-names",
        """
        vhosts:
          v:
            exchanges:
              "": {type: direct}  # <- an exchange name cannot be empty
            queues:
              "": {}  # <- a queue name cannot be empty
            policies:
              "": {pattern: ".*", definition: {max-length: 1}}  # <- a policy name cannot be empty
        """,
    ),
    case(
        "empty-vhost-name",
        """
        vhosts:
          "": {}  # <- a vhost name cannot be empty
        """,
    ),
    case(
        "vhost-tag-with-comma",
        """
        vhosts:
          v:
            tags: [ok, "a,b"]  # <- invalid tag 'a,b'
        """,
    ),
    # ---------------------------------------------------------------- duplicate bindings
    case(
        "binding-declared-twice",
        """
        vhosts:
          v:
            exchanges:
              e: {type: direct}
            queues:
              q: {}
            bindings:
              - {source: e, destination: q, routing_key: k}
              - {source: e, destination: q, routing_key: k}  # <- the same binding is declared twice (also at
        """,
    ),
    case(
        "binding-declared-twice-arguments-in-other-order",
        """
        vhosts:
          v:
            exchanges:
              h: {type: headers}
            queues:
              q: {}
            bindings:
              - {source: h, destination: q, arguments: {x-match: all, a: 1, b: 2}}
              - source: h  # <- the same binding is declared twice
                destination: q
                arguments: {b: 2, a: 1, x-match: all}
        """,
    ),
    case(
        "bindings-differing-only-in-key-or-arguments-ok",
        """
        vhosts:
          v:
            exchanges:
              e: {type: direct}
              h: {type: headers}
            queues:
              q: {}
            bindings:
              - {source: e, destination: q, routing_key: a}
              - {source: e, destination: q, routing_key: b}
              - {source: h, destination: q, arguments: {x-match: all, a: 1}}
              - {source: h, destination: q, arguments: {x-match: any, a: 1}}
        """,
    ),
    # ---------------------------------------------------------------- headers exchanges
    case(
        "headers-binding-with-routing-key",
        """
        vhosts:
          v:
            exchanges:
              h: {type: headers}
            queues:
              q: {}
            bindings:
              - source: h
                destination: q
                routing_key: ignored  # <- a headers exchange ignores the routing key
                arguments: {x-match: all, kind: order}
        """,
    ),
    case(
        "builtin-headers-binding-with-routing-key",
        """
        vhosts:
          v:
            queues:
              q: {}
            bindings:
              - source: amq.headers
                destination: q
                routing_key: ignored  # <- a headers exchange ignores the routing key
        """,
    ),
    case(
        "x-match-invalid",
        """
        vhosts:
          v:
            exchanges:
              h: {type: headers}
            queues:
              q: {}
            bindings:
              - source: h
                destination: q
                arguments:
                  x-match: some  # <- x-match must be one of all, all-with-x, any, any-with-x
                  kind: order
        """,
    ),
    case(
        "x-match-not-a-string",
        """
        vhosts:
          v:
            exchanges:
              h: {type: headers}
            queues:
              q: {}
            bindings:
              - source: h
                destination: q
                arguments:
                  x-match: [all]  # <- x-match must be one of all, all-with-x, any, any-with-x
        """,
    ),
    case(
        "x-match-all-valid-values",
        """
        vhosts:
          v:
            exchanges:
              h: {type: headers}
            queues:
              q: {}
            bindings:
              - {source: h, destination: q, arguments: {x-match: all, k: 1}}
              - {source: h, destination: q, arguments: {x-match: any, k: 1}}
              - {source: h, destination: q, arguments: {x-match: all-with-x, k: 1}}
              - {source: h, destination: q, arguments: {x-match: any-with-x, k: 1}}
              - {source: h, destination: q, arguments: {k: 2}}
        """,
    ),
]


@pytest.mark.parametrize("text", CASES)
def test_rules(tmp_path, text):
    check(tmp_path, text)


def test_the_table_has_both_valid_and_invalid_cases():
    invalid = [p for p in CASES if MARK in p.values[0]]
    valid = [p for p in CASES if MARK not in p.values[0]]
    assert len(invalid) >= 60 and len(valid) >= 15
    assert len({p.id for p in CASES}) == len(CASES), "case ids must be unique"


# --------------------------------------------------------------------------- beyond the table


def test_every_problem_is_reported_at_once_sorted_with_locations(tmp_path):
    text = textwrap.dedent(
        """
        vhosts:
          v:
            exchanges:
              e: {type: topc}
            queues:
              q: {type: quorum, max_priority: 3}
            bindings:
              - {source: nope, destination: q}
            policies:
              p: {pattern: "(", definition: {}}
        """
    ).lstrip("\n")
    _, problems = _problems(tmp_path, text)
    assert [(p.line, p.location) for p in problems] == [
        (4, "vhost 'v' exchange 'e' type"),
        (6, "vhost 'v' queue 'q' max_priority"),
        (8, "vhost 'v' binding #1 source"),
        (10, "vhost 'v' policy 'p' definition"),
        (10, "vhost 'v' policy 'p' pattern"),
    ]
    assert problems == sorted(problems)


def test_validate_returns_none_for_a_valid_topology(tmp_path):
    file = tmp_path / "ok.yaml"
    file.write_text("vhosts:\n  v:\n    queues:\n      q: {}\n")
    assert validate(load([str(file)])) is None


def test_duplicate_binding_names_the_first_place(tmp_path):
    text = (
        "vhosts:\n  v:\n    queues:\n      q: {}\n    bindings:\n"
        "      - {source: amq.direct, destination: q, routing_key: k}\n"
        "      - {source: amq.direct, destination: q, routing_key: k}\n"
    )
    file, problems = _problems(tmp_path, text)
    assert [p.message for p in problems] == [f"the same binding is declared twice (also at {file}:6)"]
    assert problems[0].line == 7


def test_duplicate_binding_across_files(tmp_path):
    a = tmp_path / "a.yaml"
    b = tmp_path / "b.yaml"
    a.write_text("vhosts:\n  v:\n    queues:\n      q: {}\n    bindings:\n      - {source: amq.fanout, destination: q}\n")
    b.write_text("vhosts:\n  v:\n    bindings:\n      - {source: amq.fanout, destination: q}\n")
    with pytest.raises(ConfigError) as info:
        validate(load([str(a), str(b)]))
    [problem] = info.value.problems
    assert (problem.file, problem.line) == (str(b), 4)
    assert problem.message == f"the same binding is declared twice (also at {a}:6)"


def test_references_resolve_across_files(tmp_path):
    a = tmp_path / "a.yaml"
    b = tmp_path / "b.yaml"
    a.write_text("vhosts:\n  v:\n    exchanges:\n      e: {type: topic}\n      dlx: {type: fanout}\n")
    b.write_text(
        "vhosts:\n  v:\n    queues:\n      q: {dead_letter_exchange: dlx}\n"
        "    bindings:\n      - {source: e, destination: q, routing_key: a}\n"
    )
    validate(load([str(a), str(b)]))  # no ConfigError


def test_vhost_default_queue_type_from_another_file_applies(tmp_path):
    a = tmp_path / "a.yaml"
    b = tmp_path / "b.yaml"
    a.write_text("vhosts:\n  v:\n    default_queue_type: quorum\n")
    b.write_text("vhosts:\n  v:\n    queues:\n      q:\n        max_priority: 5\n")
    with pytest.raises(ConfigError) as info:
        validate(load([str(a), str(b)]))
    [problem] = info.value.problems
    assert (problem.file, problem.line) == (str(b), 5)
    assert "not supported by quorum queues" in problem.message


@pytest.mark.parametrize(
    ("queue_type", "argument"),
    [("quorum", "x-quorum-initial-group-size"), ("stream", "x-initial-cluster-size"), ("classic", "x-quorum-initial-group-size")],
)
def test_initial_group_size_maps_to_the_argument_of_the_queue_type(queue_type, argument):
    assert argument_for("initial_group_size", queue_type) == argument
    assert field_for(argument) == "initial_group_size"


@pytest.mark.parametrize(
    ("queue_type", "expected"),
    [("quorum", {"x-quorum-initial-group-size": 3}), ("stream", {"x-initial-cluster-size": 3})],
)
def test_initial_group_size_in_a_loaded_queue(tmp_path, queue_type, expected):
    file = tmp_path / "t.yaml"
    file.write_text(f"vhosts:\n  v:\n    queues:\n      q: {{type: {queue_type}, initial_group_size: 3}}\n")
    topology = load([str(file)])
    validate(topology)
    spec = topology.vhosts["v"].queues["q"].spec
    assert queue_arguments(spec, queue_type) == expected


def test_message_ttl_with_unit_in_policy_is_valid_and_problem_messages_are_readable(tmp_path):
    file = tmp_path / "t.yaml"
    file.write_text('vhosts:\n  v:\n    policies:\n      p: {pattern: ".*", definition: {message-ttl: 30s}}\n')
    validate(load([str(file)]))
    file.write_text('vhosts:\n  v:\n    policies:\n      p: {pattern: ".*", definition: {message-ttl: 30 secs}}\n')
    with pytest.raises(ConfigError) as info:
        validate(load([str(file)]))
    [problem] = info.value.problems
    assert re.search(r"invalid duration '30 secs': use milliseconds", problem.message)
    assert str(problem).startswith(f"{file}:4: vhost 'v' policy 'p' definition.message-ttl: invalid duration")


@pytest.mark.parametrize("section", ["exchanges", "queues", "policies"])
@pytest.mark.parametrize("name", [".", ".."])
def test_names_that_are_path_steps_are_refused(tmp_path, section, name):
    body = {"exchanges": {"type": "direct"}, "queues": {}, "policies": {"pattern": "x", "definition": {"max-length": 1}}}
    path = tmp_path / "t.yaml"
    path.write_text(yaml.safe_dump({"vhosts": {"v": {section: {name: body[section]}}}}), encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_valid([str(path)])
    (problem,) = info.value.problems
    kind = {"exchanges": "exchange", "queues": "queue", "policies": "policy"}[section]
    assert problem.line == 4 and problem.location == f"vhost 'v' {kind} {name!r}"
    assert f"the name {name!r} cannot be managed" in problem.message


def test_a_vhost_named_like_a_path_step_is_refused(tmp_path):
    path = tmp_path / "t.yaml"
    path.write_text("vhosts:\n  ..:\n    queues: {q: {}}\n", encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_valid([str(path)])
    assert [p.line for p in info.value.problems] == [2]
