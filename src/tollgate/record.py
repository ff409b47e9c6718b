"""`@record`: an immutable value class (a call, a verdict, a reservation's closing).

Frozen for the type checker, which refuses any assignment to a field (mypy runs in `make lint`, so in
CI); at run time a plain dataclass with value equality and a hash. A frozen dataclass sets each field
through `object.__setattr__` when it builds an instance, and the check path builds about twenty per
call: measured by `bench/instructions.py`, the runtime freeze cost 13 % of a check's instructions."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TypeVar, dataclass_transform

T = TypeVar("T")


@dataclass_transform(frozen_default=True, eq_default=True, field_specifiers=(field,))
def record(cls: type[T]) -> type[T]:
    return dataclass(eq=True, unsafe_hash=True)(cls)
