"""Alertmanager matchers: parsing, anchored regular expressions, absent labels, clear errors."""

from __future__ import annotations

import pytest

from inferloop.alerts._matchers import (
    Matcher,
    MatcherError,
    MatchType,
    matches_all,
    parse_matcher,
    parse_matchers,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('model="fraud"', Matcher("model", MatchType.EQUAL, "fraud")),
        ("model=fraud", Matcher("model", MatchType.EQUAL, "fraud")),
        ('severity != "info"', Matcher("severity", MatchType.NOT_EQUAL, "info")),
        ('model=~"fraud|churn"', Matcher("model", MatchType.REGEX, "fraud|churn")),
        ('kind!~".*drift"', Matcher("kind", MatchType.NOT_REGEX, ".*drift")),
        ('title="say \\"hi\\""', Matcher("title", MatchType.EQUAL, 'say "hi"')),
        ('team=""', Matcher("team", MatchType.EQUAL, "")),
    ],
)
def test_each_operator_parses_from_its_text_form(text: str, expected: Matcher) -> None:
    assert parse_matcher(text) == expected
    assert parse_matcher(str(expected)) == expected


def test_regular_expressions_are_anchored_to_the_whole_value() -> None:
    matcher = parse_matcher('model=~"fraud|churn"')
    assert matcher.matches({"model": "fraud"})
    assert matcher.matches({"model": "churn"})
    assert not matcher.matches({"model": "fraud-v2"})
    assert not matcher.matches({"model": "antifraud"})
    assert parse_matcher('model!~"fraud|churn"').matches({"model": "fraud-v2"})


def test_an_absent_label_reads_as_the_empty_string() -> None:
    assert parse_matcher('team=""').matches({})
    assert parse_matcher('team!="risk"').matches({})
    assert not parse_matcher('team="risk"').matches({})
    assert parse_matcher('team=~"risk|"').matches({})


def test_a_brace_list_parses_with_commas_inside_quotes_kept() -> None:
    matchers = parse_matchers('{model=~"a,b|c", severity="critical"}')
    assert [str(m) for m in matchers] == ['model=~"a,b|c"', 'severity="critical"']
    assert matches_all(matchers, {"model": "a,b", "severity": "critical"})
    assert not matches_all(matchers, {"model": "a,b", "severity": "warning"})
    assert matches_all((), {"anything": "x"})


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ('="x"', "must start with a label name"),
        ("model", "needs one of"),
        ('model=~"(unclosed"', "invalid regular expression"),
        ('model="open', "unterminated"),
        ('model="a" b', "after the closing quote"),
        ('model=a"b', "quote inside an unquoted value"),
        ("9model=x", "must start with a label name"),
    ],
)
def test_malformed_matchers_say_what_is_wrong(text: str, reason: str) -> None:
    with pytest.raises(MatcherError, match=reason):
        parse_matcher(text)


def test_an_unclosed_brace_is_an_error() -> None:
    with pytest.raises(MatcherError, match="brace"):
        parse_matchers('{model="x"')
