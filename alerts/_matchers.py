"""Alertmanager's label matchers: `name=value`, `name!=value`, `name=~regex`, `name!~regex`.

Semantics follow Alertmanager: a label that is absent reads as the empty string
(so `team=""` matches alerts without a team), and regular expressions are
anchored: `model=~"fraud|churn"` matches `fraud` but not `fraud-v2`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_OPERATOR = re.compile(r"\s*(=~|!~|!=|=)\s*")


class MatcherError(ValueError):
    """A matcher that cannot be parsed; the message quotes the text and says why."""


class MatchType(StrEnum):
    EQUAL = "="
    NOT_EQUAL = "!="
    REGEX = "=~"
    NOT_REGEX = "!~"


@dataclass(frozen=True, slots=True)
class Matcher:
    """One condition on one label; build with `Matcher(...)` or `parse_matcher(text)`."""

    name: str
    type: MatchType
    value: str
    _regex: re.Pattern[str] | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        if not _NAME.fullmatch(self.name):
            raise MatcherError(f"invalid label name {self.name!r}")
        object.__setattr__(self, "type", MatchType(self.type))
        if self.type in (MatchType.REGEX, MatchType.NOT_REGEX):
            try:
                compiled = re.compile(self.value)
            except re.error as exc:
                raise MatcherError(f"invalid regular expression {self.value!r}: {exc}") from None
            object.__setattr__(self, "_regex", compiled)

    def matches(self, labels: Mapping[str, str]) -> bool:
        actual = labels.get(self.name, "")
        if self.type is MatchType.EQUAL:
            return actual == self.value
        if self.type is MatchType.NOT_EQUAL:
            return actual != self.value
        assert self._regex is not None
        hit = self._regex.fullmatch(actual) is not None
        return hit if self.type is MatchType.REGEX else not hit

    def __str__(self) -> str:
        escaped = self.value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
        return f'{self.name}{self.type}"{escaped}"'


def parse_matcher(text: str) -> Matcher:
    """Parse one matcher such as `model=~"fraud|churn"` or `severity!=info`.

    The value may be double-quoted (with `\\"`, `\\\\` and `\\n` escapes) or bare;
    a bare value is taken verbatim after trimming spaces.
    """
    source = text.strip()
    head = _NAME.match(source)
    if head is None:
        raise MatcherError(f"matcher {text!r} must start with a label name")
    operator = _OPERATOR.match(source, head.end())
    if operator is None:
        raise MatcherError(f"matcher {text!r} needs one of =, !=, =~, !~ after the label name")
    rest = source[operator.end() :]
    if rest.startswith('"'):
        value, end = _unquote(rest, text)
        if rest[end:].strip():
            raise MatcherError(f"matcher {text!r} has text after the closing quote")
    else:
        if '"' in rest:
            raise MatcherError(f"matcher {text!r} has a quote inside an unquoted value")
        value = rest.strip()
    return Matcher(head.group(), MatchType(operator.group(1)), value)


def _unquote(rest: str, text: str) -> tuple[str, int]:
    out: list[str] = []
    i = 1
    while i < len(rest):
        char = rest[i]
        if char == "\\":
            if i + 1 >= len(rest):
                break
            nxt = rest[i + 1]
            out.append({"n": "\n", "\\": "\\", '"': '"'}.get(nxt, "\\" + nxt))
            i += 2
        elif char == '"':
            return "".join(out), i + 1
        else:
            out.append(char)
            i += 1
    raise MatcherError(f"matcher {text!r} has an unterminated quoted value")


def parse_matchers(text: str | Iterable[str]) -> tuple[Matcher, ...]:
    """Parse `{a="x", b=~"y"}` (or a comma-separated string, or a list of single matchers)."""
    if not isinstance(text, str):
        return tuple(parse_matcher(item) for item in text)
    body = text.strip()
    if body.startswith("{"):
        if not body.endswith("}"):
            raise MatcherError(f"matchers {text!r} open a brace they do not close")
        body = body[1:-1]
    return tuple(parse_matcher(part) for part in _split_commas(body, text) if part.strip())


def _split_commas(body: str, text: str) -> list[str]:
    """Split on commas outside double quotes."""
    parts, current, quoted, escaped = [], [], False, False
    for char in body:
        if escaped:
            escaped = False
        elif char == "\\" and quoted:
            escaped = True
        elif char == '"':
            quoted = not quoted
        elif char == "," and not quoted:
            parts.append("".join(current))
            current = []
            continue
        current.append(char)
    if quoted:
        raise MatcherError(f"matchers {text!r} have an unterminated quoted value")
    parts.append("".join(current))
    return parts


def matches_all(matchers: Iterable[Matcher], labels: Mapping[str, str]) -> bool:
    """True when every matcher matches (so an empty list matches everything)."""
    return all(m.matches(labels) for m in matchers)
