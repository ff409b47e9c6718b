"""Endpoint patterns ("POST /v1/refunds", "GET /v1/charges/*") and parameter rules. Pure."""

from __future__ import annotations

import re
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from functools import cached_property, lru_cache
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

METHODS = ("GET", "POST", "DELETE", "*")
_SEGMENT = re.compile(r"^(\*\*|\*|[A-Za-z0-9_.\-]+)$")
_PATTERN = re.compile(r"^(?P<method>[A-Z*]+) (?P<path>/\S*)$")


@lru_cache(maxsize=4096)
def _parsed(pattern: str) -> tuple[str, tuple[str, ...]]:
    """An EndpointPattern's method and segments (patterns are few: one per allowlist entry)."""
    method, _, path = pattern.partition(" ")
    return method, tuple(s for s in path.split("/") if s)


class EndpointPattern(str):
    """`METHOD /path` where a `*` segment matches one path segment and a final `**` matches the rest.

    A string subclass so it serialises as the text people wrote.
    """

    __slots__ = ()

    def __new__(cls, text: str) -> EndpointPattern:
        text = " ".join(str(text).split())
        m = _PATTERN.fullmatch(text)
        if not m:
            raise ValueError(f"{text!r} is not 'METHOD /path' (e.g. 'POST /v1/refunds')")
        method, path = m["method"], m["path"]
        if method not in METHODS:
            raise ValueError(f"{text!r}: method must be one of {', '.join(METHODS)}")
        segments = path.strip("/").split("/") if path != "/" else []
        for i, seg in enumerate(segments):
            if not _SEGMENT.fullmatch(seg) or seg in (".", ".."):
                raise ValueError(f"{text!r}: path segment {seg!r} is not allowed")
            if seg == "**" and i != len(segments) - 1:
                raise ValueError(f"{text!r}: '**' may only be the last segment")
        return super().__new__(cls, f"{method} /{'/'.join(segments)}")

    @property
    def method(self) -> str:
        return _parsed(self)[0]

    @property
    def segments(self) -> list[str]:
        return list(_parsed(self)[1])

    def matches(self, method: str, path: str) -> bool:
        own_method, pattern = _parsed(self)  # every check asks each entry of an allowlist
        if own_method != "*" and own_method != method.upper():
            return False
        parts = [s for s in path.split("/") if s]
        for i, seg in enumerate(pattern):
            if seg == "**":
                return True
            if i >= len(parts) or (seg != "*" and seg != parts[i]):
                return False
        return len(parts) == len(pattern)

    @classmethod
    def __get_pydantic_core_schema__(cls, _source: Any, handler: Any) -> Any:
        from pydantic_core import core_schema

        return core_schema.no_info_after_validator_function(
            cls, handler(str), serialization=core_schema.to_string_ser_schema()
        )


class Op(StrEnum):
    IN = "in"
    NOT_IN = "not_in"
    EQ = "eq"
    NE = "ne"
    LT = "lt"
    LTE = "lte"
    GT = "gt"
    GTE = "gte"
    ABSENT = "absent"
    PRESENT = "present"
    MATCHES = "matches"


_NUMERIC = {Op.LT, Op.LTE, Op.GT, Op.GTE}
_LIST = {Op.IN, Op.NOT_IN}
_NO_VALUE = {Op.ABSENT, Op.PRESENT}
_FIELD = re.compile(r"^[A-Za-z0-9_]+(\[[A-Za-z0-9_]*\])*$")

ParamValue = str | list[str]


class ParamRule(BaseModel):
    """One constraint on a request parameter, e.g. `amount lte 5000` or `capture_method in [manual]`.

    `field` uses the vendor's wire name (Stripe nested form: `metadata[order]`). Every comparison on an
    absent field fails, so a rule can never be dodged by leaving the parameter out; say `absent` or
    `present` to talk about presence itself.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    field: str = Field(description="Parameter name as sent on the wire, e.g. `amount` or `metadata[reason]`.")
    op: Op = Field(description="Comparison operator.")
    value: str | int | list[str | int] | None = Field(
        default=None,
        description="Operand: a list for in/not_in, a number for lt/lte/gt/gte, none for absent/present.",
    )
    endpoints: list[EndpointPattern] | None = Field(
        default=None, description="Apply only to these endpoints; all allowed endpoints when omitted."
    )

    @field_validator("field")
    @classmethod
    def _field_name(cls, v: str) -> str:
        if not _FIELD.fullmatch(v):
            raise ValueError(f"{v!r} is not a parameter name like 'amount' or 'metadata[reason]'")
        return v

    @model_validator(mode="after")
    def _operand_fits_op(self) -> ParamRule:
        v = self.value
        if self.op in _NO_VALUE and v is not None:
            raise ValueError(f"op '{self.op}' takes no value")
        if self.op in _LIST and not isinstance(v, list):
            raise ValueError(f"op '{self.op}' needs a list value")
        if self.op in _NUMERIC and (isinstance(v, list) or v is None or _number(v) is None):
            raise ValueError(f"op '{self.op}' needs a numeric value")
        if self.op in (Op.EQ, Op.NE) and (v is None or isinstance(v, list)):
            raise ValueError(f"op '{self.op}' needs a single value")
        if self.op is Op.MATCHES:
            if not isinstance(v, str):
                raise ValueError("op 'matches' needs a regular expression string")
            try:
                re.compile(v)
            except re.error as exc:
                raise ValueError(f"invalid regular expression: {exc}") from exc
        return self

    def applies_to(self, method: str, path: str) -> bool:
        return self.endpoints is None or any(p.matches(method, path) for p in self.endpoints)

    def holds(self, params: Mapping[str, ParamValue]) -> bool:
        """True when `params` satisfy the rule."""
        present = self.field in params
        if self.op is Op.ABSENT:
            return not present
        if self.op is Op.PRESENT:
            return present
        if not present:
            return False
        actual = params[self.field]
        if isinstance(actual, list):  # arrays only satisfy membership of every element
            return self.op in (Op.IN, Op.NOT_IN) and all(self._holds_one(a) for a in actual)
        return self._holds_one(actual)

    def _holds_one(self, actual: str) -> bool:
        v = self.value
        if self.op is Op.IN:
            return actual in self._texts
        if self.op is Op.NOT_IN:
            return actual not in self._texts
        if self.op is Op.EQ:
            return actual == str(v)
        if self.op is Op.NE:
            return actual != str(v)
        if self.op is Op.MATCHES:
            return self._regex.fullmatch(actual) is not None
        a, b = _number(actual), _number(v)
        if a is None or b is None:
            return False  # a non-number where a number is required breaks the rule
        return {Op.LT: a < b, Op.LTE: a <= b, Op.GT: a > b, Op.GTE: a >= b}[self.op]

    @cached_property
    def _texts(self) -> frozenset[str]:
        assert isinstance(self.value, list)
        return frozenset(str(x) for x in self.value)

    @cached_property
    def _regex(self) -> re.Pattern[str]:
        return re.compile(str(self.value))

    def describe(self) -> str:
        if self.op in _NO_VALUE:
            return f"{self.field} must be {self.op}"
        words = {
            Op.IN: "must be one of",
            Op.NOT_IN: "must not be one of",
            Op.EQ: "must equal",
            Op.NE: "must not equal",
            Op.LT: "must be <",
            Op.LTE: "must be ≤",
            Op.GT: "must be >",
            Op.GTE: "must be ≥",
            Op.MATCHES: "must match",
        }[self.op]
        return f"{self.field} {words} {self.value}"


def _number(v: object) -> Decimal | None:
    if isinstance(v, bool):
        return None
    try:
        d = Decimal(str(v))
    except InvalidOperation:
        return None
    return d if d.is_finite() else None
