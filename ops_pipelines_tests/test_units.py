import datetime as dt

import pytest

from ops_pipelines.units import format_bytes, parse_duration, parse_size


@pytest.mark.parametrize(
    ("text", "months", "seconds"),
    [
        ("26h", 0, 26 * 3600),
        ("365 days", 0, 365 * 86400),
        ("1 day 12 hours", 0, 36 * 3600),
        ("30s", 0, 30),
        ("5 min", 0, 300),
        ("2 weeks", 0, 14 * 86400),
        ("6 months", 6, 0),
        ("1 year", 12, 0),
        ("1.5h", 0, 5400),
    ],
)
def test_durations_parse(text, months, seconds):
    duration = parse_duration(text)
    assert (duration.months, duration.seconds) == (months, seconds)
    assert str(duration) == text


@pytest.mark.parametrize("text", ["1y", "26", "", "soon", "5 parsecs", "1.5 months", "h26", 26])
def test_malformed_durations_are_refused(text):
    with pytest.raises(ValueError, match="expected a duration"):
        parse_duration(text)


def test_months_are_calendar_months_not_31_days():
    end_of_march = dt.datetime(2024, 3, 31, 12, tzinfo=dt.UTC)
    assert parse_duration("1 month").before(end_of_march) == dt.datetime(2024, 2, 29, 12, tzinfo=dt.UTC)
    assert parse_duration("1 year").before(end_of_march) == dt.datetime(2023, 3, 31, 12, tzinfo=dt.UTC)
    assert parse_duration("365 days").before(end_of_march) == dt.datetime(2023, 4, 1, 12, tzinfo=dt.UTC)


def test_fixed_length_needed_for_timeouts():
    assert parse_duration("90s").to_timedelta() == dt.timedelta(seconds=90)
    with pytest.raises(ValueError, match="no fixed length"):
        parse_duration("1 month").to_timedelta()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("500GB", 500 * 10**9),
        ("1.5 GiB", int(1.5 * 2**30)),
        ("800mb", 800 * 10**6),
        ("42", 42),
        (1024, 1024),
        ("10 kB", 10_000),
    ],
)
def test_sizes_parse(text, expected):
    assert parse_size(text) == expected


@pytest.mark.parametrize("text", ["500XB", "GB", "-5GB", "", True, 1.5, "5 GB extra"])
def test_malformed_sizes_are_refused(text):
    with pytest.raises(ValueError, match="expected a size"):
        parse_size(text)


def test_format_bytes():
    assert format_bytes(512) == "512 bytes"
    assert format_bytes(1500) == "1.5 kB"
    assert format_bytes(3 * 10**9) == "3.0 GB"
    assert format_bytes(parse_size("250MB")) == "250.0 MB"  # one convention: config and display agree
