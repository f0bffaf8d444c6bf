"""A small schema language for JSON read from files: every key, type and range, checked.

A schema is built from :class:`Int`, :class:`Num`, :class:`Bool`, :class:`Str`,
:class:`Null`, :class:`AnyOf`, :class:`ListOf`, :class:`Record` (exact keys) and
:class:`MapOf` (string keys, one value schema). ``schema.check(value, "config")`` returns
nothing or raises :class:`~fastgrad._safe_npz.InvalidFile` naming the bad key, e.g.
``config['layers'][1]['n_in'] must be an integer >= 1, got str '3'``.
:func:`parse_json` parses text with a nesting limit, so that no input can exhaust the stack.
"""
from __future__ import annotations

import json
import math
import re

from fastgrad._safe_npz import InvalidFile

MAX_DEPTH = 16
# A string (an unterminated one runs to the end, so no match is ever retried: linear
# time on any input) or a bracket; brackets inside strings are thus skipped.
_TOKENS = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"?|[\[\]{}]', re.DOTALL)


def _got(value) -> str:
    return f"{type(value).__name__} {value!r}"[:80]


def parse_json(text: str, what: str = "config", max_depth: int = MAX_DEPTH):
    """``json.loads(text)``, refusing nesting deeper than ``max_depth`` (checked before parsing)
    and the non-standard constants NaN and Infinity."""
    depth = 0
    for token in _TOKENS.finditer(text):
        ch = token.group()
        if ch in "[{":
            depth += 1
            if depth > max_depth:
                raise InvalidFile(f"{what} is nested more than {max_depth} levels deep")
        elif ch in "]}":
            depth -= 1

    def refuse(name):
        raise InvalidFile(f"{what} holds the non-standard JSON value {name}")

    try:
        return json.loads(text, parse_constant=refuse)
    except (json.JSONDecodeError, ValueError, RecursionError) as exc:
        if isinstance(exc, InvalidFile):
            raise
        raise InvalidFile(f"{what} is not valid JSON ({exc})") from None


class Schema:
    def check(self, value, where: str) -> None:
        raise NotImplementedError

    def fail(self, value, where, expected):
        raise InvalidFile(f"{where} must be {expected}, got {_got(value)}")


class Int(Schema):
    def __init__(self, low=None, high=None):
        self.low, self.high = low, high

    def describe(self):
        parts = ["an integer"] + ([f">= {self.low}"] if self.low is not None else []) + \
                ([f"< {self.high}"] if self.high is not None else [])
        return " ".join(parts)

    def check(self, value, where):
        if isinstance(value, bool) or not isinstance(value, int) or \
                (self.low is not None and value < self.low) or (self.high is not None and value >= self.high):
            self.fail(value, where, self.describe())


class Num(Schema):
    """A finite real number (an int is accepted), ``low``/``high`` closed unless ``*_open``."""

    def __init__(self, low=None, high=None, low_open=False, high_open=False):
        self.low, self.high, self.low_open, self.high_open = low, high, low_open, high_open

    def describe(self):
        text = "a finite number"
        if self.low is not None:
            text += f" {'>' if self.low_open else '>='} {self.low}"
        if self.high is not None:
            text += f" {'<' if self.high_open else '<='} {self.high}"
        return text

    def check(self, value, where):
        ok = not isinstance(value, bool) and isinstance(value, (int, float)) and math.isfinite(value)
        if ok and self.low is not None:
            ok = value > self.low if self.low_open else value >= self.low
        if ok and self.high is not None:
            ok = value < self.high if self.high_open else value <= self.high
        if not ok:
            self.fail(value, where, self.describe())


class Bool(Schema):
    def check(self, value, where):
        if not isinstance(value, bool):
            self.fail(value, where, "true or false")


class Null(Schema):
    def check(self, value, where):
        if value is not None:
            self.fail(value, where, "null")


class Str(Schema):
    def __init__(self, choices=None, max_len=200):
        self.choices, self.max_len = (tuple(choices) if choices is not None else None), max_len

    def check(self, value, where):
        if not isinstance(value, str) or len(value) > self.max_len:
            self.fail(value, where, f"a string of at most {self.max_len} characters")
        if self.choices is not None and value not in self.choices:
            self.fail(value, where, f"one of {', '.join(map(repr, self.choices))}")


class AnyOf(Schema):
    def __init__(self, *options, describe):
        self.options, self.text = options, describe

    def check(self, value, where):
        for option in self.options:
            try:
                option.check(value, where)
                return
            except InvalidFile:
                pass
        self.fail(value, where, self.text)


class ListOf(Schema):
    def __init__(self, item, min_len=0, max_len=10_000):
        self.item, self.min_len, self.max_len = item, min_len, max_len

    def check(self, value, where):
        if not isinstance(value, list) or not self.min_len <= len(value) <= self.max_len:
            self.fail(value, where, f"a list of {self.min_len} to {self.max_len} items")
        for i, v in enumerate(value):
            self.item.check(v, f"{where}[{i}]")


class Record(Schema):
    """A dict with exactly the keys of ``fields`` (those in ``optional`` may be absent)."""

    def __init__(self, fields: dict, optional=()):
        self.fields, self.optional = fields, frozenset(optional)

    def check(self, value, where):
        if not isinstance(value, dict):
            self.fail(value, where, f"an object with keys {sorted(self.fields)}")
        unknown = sorted(set(value) - set(self.fields))
        if unknown:
            raise InvalidFile(f"{where} has unknown key(s) {unknown}")
        for key, schema in self.fields.items():
            if key not in value:
                if key in self.optional:
                    continue
                raise InvalidFile(f"{where} lacks the key {key!r}")
            schema.check(value[key], f"{where}[{key!r}]")


class MapOf(Schema):
    """A dict of string keys (identifiers) to values of one schema."""

    def __init__(self, value, max_len=64):
        self.value, self.max_len = value, max_len

    def check(self, value, where):
        if not isinstance(value, dict) or len(value) > self.max_len:
            self.fail(value, where, f"an object of at most {self.max_len} keys")
        for key, v in value.items():
            if not key.isidentifier():
                raise InvalidFile(f"{where} has an invalid key {key[:40]!r}")
            self.value.check(v, f"{where}[{key!r}]")
