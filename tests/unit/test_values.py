"""Unit tests for topology.model.values: durations and sizes."""

from __future__ import annotations

import pytest
from pydantic import BaseModel, ConfigDict, ValidationError

from topology.model.format import Duration, Size
from topology.model.values import parse_duration, parse_size

# --------------------------------------------------------------------------- durations


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        (0, 0),
        (1, 1),
        (30000, 30000),
        (2.0, 2),
        ("0", 0),
        ("1500", 1500),
        (" 42 ", 42),
        ("500ms", 500),
        ("30s", 30_000),
        ("5m", 300_000),
        ("1h", 3_600_000),
        ("1d", 86_400_000),
        ("7d", 7 * 86_400_000),
        ("0s", 0),
        (" 30 s ", 30_000),
        ("90m", 5_400_000),
    ],
    ids=repr,
)
def test_parse_duration_valid(given, expected):
    result = parse_duration(given)
    assert result == expected
    assert type(result) is int


@pytest.mark.parametrize("given", [-1, -30000, -1.0], ids=repr)
def test_parse_duration_negative_number_rejected(given):
    with pytest.raises(ValueError, match="cannot be negative"):
        parse_duration(given)


@pytest.mark.parametrize("given", ["-1", "-5s", "- 5s"], ids=repr)
def test_parse_duration_negative_string_rejected(given):
    with pytest.raises(ValueError, match=r"duration"):
        parse_duration(given)


@pytest.mark.parametrize("given", [True, False], ids=repr)
def test_parse_duration_rejects_booleans(given):
    # bool is a subclass of int: True must not silently become 1 ms
    with pytest.raises(ValueError, match="got a boolean"):
        parse_duration(given)


@pytest.mark.parametrize(
    "given",
    ["", "   ", "abc", "30 seconds", "1.5s", "1.5", "s", "30x", "1w", "30sec", "1h30m", "30ss", "ms500"],
    ids=repr,
)
def test_parse_duration_garbage_rejected_with_clear_message(given):
    with pytest.raises(ValueError) as info:
        parse_duration(given)
    message = str(info.value)
    assert message.startswith("invalid duration")
    assert repr(given) in message
    # the message tells how to write a valid value
    assert "30s" in message and "ms" in message


@pytest.mark.parametrize("given", [None, 1.5, [30], {"s": 30}, b"30s"], ids=repr)
def test_parse_duration_wrong_python_types_rejected(given):
    with pytest.raises(ValueError, match="invalid duration"):
        parse_duration(given)


@pytest.mark.parametrize("parse", [parse_duration, parse_size], ids=["duration", "size"])
@pytest.mark.parametrize("given", ["²", "٣", "１２", "٣s", "²KB", "1²"], ids=repr)
def test_non_ascii_digits_are_garbage_with_a_clear_message(parse, given):
    # str.isdigit() and \d accept these; int() cannot parse some of them
    what = "duration" if parse is parse_duration else "size"
    with pytest.raises(ValueError, match=f"^invalid {what} "):
        parse(given)


# --------------------------------------------------------------------------- sizes


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        (0, 0),
        (1048576, 1048576),
        (4.0, 4),
        ("0", 0),
        ("2048", 2048),
        ("1B", 1),
        ("10b", 10),
        ("1KB", 1000),
        ("1KiB", 1024),
        ("512KiB", 512 * 1024),
        ("10MB", 10_000_000),
        ("10MiB", 10 * 1024**2),
        ("2GB", 2 * 1000**3),
        ("2GiB", 2 * 1024**3),
        ("1TB", 1000**4),
        ("1TiB", 1024**4),
        ("1kb", 1000),
        ("1kib", 1024),
        ("1mib", 1024**2),
        (" 10 MiB ", 10 * 1024**2),
    ],
    ids=repr,
)
def test_parse_size_valid(given, expected):
    result = parse_size(given)
    assert result == expected
    assert type(result) is int


def test_parse_size_si_and_binary_units_differ():
    assert parse_size("1KB") != parse_size("1KiB")
    assert parse_size("1MiB") - parse_size("1MB") == 48_576


@pytest.mark.parametrize("given", [-1, -1024, -2.0], ids=repr)
def test_parse_size_negative_number_rejected(given):
    with pytest.raises(ValueError, match="cannot be negative"):
        parse_size(given)


@pytest.mark.parametrize("given", ["-1", "-1KB"], ids=repr)
def test_parse_size_negative_string_rejected(given):
    with pytest.raises(ValueError, match="size"):
        parse_size(given)


@pytest.mark.parametrize("given", [True, False], ids=repr)
def test_parse_size_rejects_booleans(given):
    with pytest.raises(ValueError, match="got a boolean"):
        parse_size(given)


@pytest.mark.parametrize(
    "given",
    ["", "abc", "10XB", "10 megabytes", "1.5MB", "MB", "10K", "10M", "10KIBB", "KB10", "10 M B"],
    ids=repr,
)
def test_parse_size_garbage_rejected_with_clear_message(given):
    with pytest.raises(ValueError) as info:
        parse_size(given)
    message = str(info.value)
    assert message.startswith("invalid size")
    assert repr(given) in message
    assert "KiB" in message and "MB" in message


@pytest.mark.parametrize("given", [None, 1.5, ["1KB"], b"1KB"], ids=repr)
def test_parse_size_wrong_python_types_rejected(given):
    with pytest.raises(ValueError, match="invalid size"):
        parse_size(given)


# --------------------------------------------------------------------------- the annotated types


class _Model(BaseModel):
    model_config = ConfigDict(strict=True)

    ttl: Duration
    limit: Size


def test_annotated_types_normalise_in_a_strict_model():
    model = _Model.model_validate({"ttl": "30s", "limit": "1MiB"})
    assert model.ttl == 30_000
    assert model.limit == 1024**2
    # an integer in a file and a unit string compare equal once normalised
    assert _Model.model_validate({"ttl": 30000, "limit": 1048576}) == model


def test_annotated_types_report_the_parse_message():
    with pytest.raises(ValidationError) as info:
        _Model.model_validate({"ttl": "soon", "limit": True})
    messages = {error["loc"][0]: error["msg"] for error in info.value.errors()}
    assert "invalid duration 'soon'" in messages["ttl"]
    assert "got a boolean" in messages["limit"]


@pytest.mark.parametrize(("parse", "what"), [(parse_duration, "duration"), (parse_size, "size")])
@pytest.mark.parametrize("given", ["1" * 5000, "1" * 5000 + "s", " " + "9" * 31 + " "])
def test_a_number_of_thousands_of_digits_is_far_too_large_not_a_python_limit(parse, what, given):
    with pytest.raises(ValueError) as error:
        parse(given)
    message = str(error.value)
    assert message.startswith(f"invalid {what} '") and message.endswith("': the number is far too large")
    assert "sys.set_int_max_str_digits" not in message and len(message) < 120


def test_thirty_digits_still_read():
    assert parse_duration("9" * 30) == int("9" * 30)
