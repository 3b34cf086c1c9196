"""The management client builds each request itself instead of through ``requests.Session.request``
(whose per-request merging cost more CPU than sending the request). What it sends must stay what
the session would have sent: the same URL, headers and body, for every kind of request it makes."""

from __future__ import annotations

import itertools

import pytest
import requests

from topology.broker.client import ManagementClient, _segment
from topology.errors import BrokerError

SEGMENTS = [
    ("overview",),
    ("queues", "/", "orders"),
    ("queues", "a vhost/with #odd%chars", "q?x=1&y"),
    ("exchanges", "é-vhost", "ünïcødé 名前 ~-._"),
    ("bindings", "v", "e", "q", "q", "~"),
    ("definitions", ""),
]

PARAMS = [
    None,
    {"columns": "name,messages,consumers"},
    {"if-empty": "true", "if-unused": "true"},
    {"disable_stats": "true", "enable_queue_totals": "true", "lengths_age": "60", "odd": "a b+c/é"},
]

BODIES = [
    None,
    {},
    {"durable": True, "arguments": {"x-queue-type": "quorum", "x-max-length": 10}},
    {"value": {"uri": "amqp://h", "ünï": "名前", "list": [1, 2.5, None, "\u0000"]}},
]


def session_request(client: ManagementClient, method: str, path: str, params, body, accept_any: bool):
    session = client._thread_session()
    return session.prepare_request(requests.Request(
        method, client.url + path, params=params, json=body, headers={"accept": "*/*"} if accept_any else None))


@pytest.mark.parametrize("url", ["http://127.0.0.1:15672", "https://rabbit.example:443/", "http://bücher.example:15672",
                                 "https://[::1]:15671/prefix"])
def test_a_request_is_what_the_session_would_have_sent(url):
    client = ManagementClient(url, "user ü", "p:ss wörd")
    for segments, params, body, method, accept_any in itertools.product(
            SEGMENTS, PARAMS, BODIES, ("GET", "PUT", "POST", "DELETE"), (False, True)):
        if method == "GET" and body is not None:
            continue
        path = "/api/" + "/".join(_segment(s) for s in segments)
        ours = client._prepare(client._thread_session(), method, path, params, body, accept_any)
        theirs = session_request(client, method, path, params, body, accept_any)
        assert (ours.method, ours.url, ours.body) == (theirs.method, theirs.url, theirs.body)
        assert list(ours.headers.items()) == list(theirs.headers.items())  # in the same order, too
    client.close()


def test_a_cookie_is_sent_as_the_session_would_send_it():
    client = ManagementClient("http://127.0.0.1:15672")
    session = client._thread_session()
    session.cookies.set("AWSALB", "node-2", domain="127.0.0.1", path="/")
    session.cookies.set("elsewhere", "x", domain="other.example", path="/")
    for method, body in (("GET", None), ("PUT", {"a": 1})):
        ours = client._prepare(session, method, "/api/overview", None, body, False)
        theirs = session_request(client, method, "/api/overview", None, body, False)
        assert ours.headers["Cookie"] == theirs.headers["Cookie"] == "AWSALB=node-2"
        assert list(ours.headers.items()) == list(theirs.headers.items())
    client.close()


def test_requests_do_not_share_headers():
    """Each request has its own copy of the headers: one that accepts anything, or has a body,
    changes nothing for the next."""
    client = ManagementClient()
    session = client._thread_session()
    first = client._prepare(session, "PUT", "/api/x", None, {"a": 1}, True)
    second = client._prepare(session, "GET", "/api/x", None, None, False)
    assert first.headers["accept"] == "*/*" and "Content-Length" in first.headers
    assert second.headers["accept"] == "application/json" and "Content-Length" not in second.headers
    client.close()


def test_a_body_that_is_not_json_is_refused_as_the_session_would():
    client = ManagementClient()
    for body in ({"x": float("nan")}, {"x": float("inf")}):
        with pytest.raises(requests.exceptions.InvalidJSONError):
            session_request(client, "PUT", "/api/x", None, body, False)
        with pytest.raises(requests.exceptions.InvalidJSONError):
            client._prepare(client._thread_session(), "PUT", "/api/x", None, body, False)
    client.close()


def test_a_body_that_is_not_json_is_one_line_naming_the_request():
    client = ManagementClient("http://127.0.0.1:9")
    with pytest.raises(BrokerError) as info:
        client.request("PUT", "queues", "v", "q", body={"arguments": {"x-odd": float("nan")}})
    assert str(info.value) == "request to http://127.0.0.1:9 failed (PUT /api/queues/v/q)"
    assert client.requests_made["PUT"] == 1
    client.close()
