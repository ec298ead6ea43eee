"""Stopping a run from outside: a stop flag scoped to the current context, checked between
stages and at every decoding step.

A caller that may abandon a run (the app, when its user leaves or presses Stop) wraps it in
`stop_scope(flag)`; the library calls `check()` as each stage starts and before each generated
token, and `check()` raises `Cancelled` once `flag.is_set()`. No function takes the flag as an
argument: it lives in a `ContextVar`, so signatures stay as they are and code outside a scope
(scripts, benchmarks, tests) never stops. A prefill, once started, runs to its end: the run stops
at the next check.

    flag = threading.Event()
    with stop_scope(flag):
        explain(vlm, image, question)  # raises Cancelled soon after flag.set()

The flag does not cross a process boundary (e.g. Hugging Face ZeroGPU, which pickles the
arguments of a GPU call): there a run can only be stopped before it starts.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Protocol


class StopFlag(Protocol):
    """Anything with `is_set()`, e.g. a `threading.Event`."""

    def is_set(self) -> bool: ...


class Cancelled(Exception):
    """The run was stopped through its stop flag before it finished."""


_FLAG: ContextVar[StopFlag | None] = ContextVar("laser_stop_flag", default=None)


@contextmanager
def stop_scope(flag: StopFlag) -> Iterator[StopFlag]:
    """Within the block, `check()` raises `Cancelled` once `flag.is_set()` is true."""
    token = _FLAG.set(flag)
    try:
        yield flag
    finally:
        _FLAG.reset(token)


def check() -> None:
    """Raise `Cancelled` if the current scope's stop flag is set; outside a scope, do nothing."""
    flag = _FLAG.get()
    if flag is not None and flag.is_set():
        raise Cancelled("the run was stopped before it finished")


def checked(callback: Callable[[str], None]) -> Callable[[str], None]:
    """A stage callback that first calls `check()`, then `callback(stage)`."""

    def notify(stage: str) -> None:
        check()
        callback(stage)

    return notify
