"""Model runs in a shared, public app: stopped when their user leaves or presses Stop, one at a
time on the model, one per session in the queue.

Gradio alone does not stop a plain (sync) function: after a disconnect it only marks the job
dead, and after `cancels=` it cancels the asyncio task while the worker thread runs on, so the
next job can start on the model while the cancelled one still uses it. Hence:

- `RunStop`: the stop flag of one run. `is_set()` is true once Stop was pressed or the job's
  client went away, read from Gradio's queue (the job is gone from it, or marked dead).
  `model_turn()` puts it in `laser_core.cancel.stop_scope`, so the library checks it as each
  stage starts and before each generated token, and raises `Cancelled`.
- `model_turn()` also holds `_MODEL_SLOT` until the worker has really returned: a cancelled
  run's successor waits for it (at most one decoding step), never overlaps it.
- `job_validator()`: a Gradio validator (it runs when a job asks to join the queue) that
  refuses a second job from the same session and any job beyond `queue_size`, with a sentence.
- `forget_session`: on unload (a closed tab), the session's state is deleted at once, not after
  Gradio's default hour for closed sessions.

This module is the only one that reads Gradio's queue (`Blocks._queue`), whose layout is not a
public API; `tests/app/test_hosting.py` pins the behaviour it relies on.

On Hugging Face ZeroGPU the model call runs in another process: the flag is checked before the
call, not inside it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import gradio as gr
from gradio.context import LocalContext

from laser_core.cancel import Cancelled, stop_scope
from ui.limits import hosting_limits

_MODEL_SLOT = threading.Lock()  # held by the worker that uses the model, until it returns
_WAIT_STEP_S = 0.1  # how often a run waiting for the slot looks at its own stop flag

STOPPED = "Stopped: the run was cancelled before it finished."


class RunStop:
    """The stop flag of one queued run; outside a Gradio event (tests, scripts) only `stop()`
    sets it."""

    def __init__(self, blocks: Any = None, event_id: str | None = None) -> None:
        self._blocks = blocks
        self._event_id = event_id
        self._stopped = threading.Event()

    @classmethod
    def current(cls) -> RunStop:
        """The flag of the Gradio event this thread is running, if any."""
        return cls(LocalContext.blocks.get(None), LocalContext.event_id.get(None))

    def stop(self) -> None:
        self._stopped.set()

    def is_set(self) -> bool:
        if not self._stopped.is_set() and self._client_gone():
            self._stopped.set()
        return self._stopped.is_set()

    def _client_gone(self) -> bool:
        """The job was cancelled (it left the queue's table) or lost its client (not alive)."""
        queue = getattr(self._blocks, "_queue", None)
        if queue is None or self._event_id is None:
            return False
        event = queue.event_ids_to_events.get(self._event_id)
        return event is None or not event.alive


@contextmanager
def model_turn(stop: RunStop | None = None) -> Iterator[RunStop]:
    """Hold the model slot and the run's stop scope for the block.

    Waits for the slot (a cancelled predecessor still returning), checking the run's own flag
    meanwhile.

    Raises:
        Cancelled: the run was stopped while waiting or, from `laser_core`, while running.
    """
    stop = stop or RunStop.current()
    while not _MODEL_SLOT.acquire(timeout=_WAIT_STEP_S):
        if stop.is_set():
            raise Cancelled("the run was stopped while waiting for the model")
    try:
        with stop_scope(stop):
            if stop.is_set():
                raise Cancelled("the run was stopped before it started")
            yield stop
    finally:
        _MODEL_SLOT.release()


def job_validator(shown_on: int = 0) -> Callable[..., list[dict[str, Any]]]:
    """A validator for a queued event: at most one job per session, `queue_size` in all.

    It returns one verdict per input (Gradio's validator contract); a refusal is shown on input
    `shown_on` (pick a visible one: the page draws the message under it).
    """

    def one_job_per_session(*values: Any) -> list[dict[str, Any]]:
        problem = _why_not_queued()
        verdicts = [gr.validate(True, "") for _ in values]
        if problem is not None:
            verdicts[min(shown_on, len(values) - 1)] = gr.validate(False, problem)
        return verdicts

    return one_job_per_session


def _why_not_queued() -> str | None:
    queue = getattr(LocalContext.blocks.get(None), "_queue", None)
    if queue is None:
        return None
    jobs = [event for event in list(queue.event_ids_to_events.values()) if event.alive]
    session = getattr(LocalContext.request.get(None), "session_hash", None)
    if session is not None and any(event.session_hash == session for event in jobs):
        return (
            "Your previous run is still going: wait for it to finish (or press Stop), "
            "then try again."
        )
    if len(jobs) >= hosting_limits().queue_size:
        return f"The app is busy ({len(jobs)} runs waiting): try again in a moment."
    return None


def forget_session() -> None:
    """Unload event: delete the closed session's state now (its delete callbacks run)."""
    holder = getattr(LocalContext.blocks.get(None), "state_holder", None)
    session = getattr(LocalContext.request.get(None), "session_hash", None)
    if holder is not None and session is not None:
        holder.delete_state(session)
