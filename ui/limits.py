"""The limits that make LASER Lens safe to host in public, from environment variables.

Memory is bounded by construction: an upload is at most `max_upload_mb` on disk and
`max_pixels` decoded (checked from the file header, before decoding); the app then works on a
copy whose long side is at most `work_side` (the library crops from whatever image it is given);
each session keeps only display-size pictures, that working copy and the captured attention, for
`session_ttl_s` seconds, and at most `max_sessions` sessions are kept. Model runs wait in a queue
of `queue_size` jobs, one per session.

The budget this gives: a kept LASER run of a 2048 x 2048 upload holds about 27 MB (the working
copy 12.6 MB, four display copies 12.6 MB, the overlay base 1.8 MB; attention arrays are small),
a CLVS run about 6 MB, so at most about `max_sessions` x 33 MB for the sessions, plus the model
and one run at a time (taking a 40 Mpx upload in peaks at about 0.4 GB, briefly: see
`bench/bench_intake.py`).

Read at call time (`hosting_limits()`), so a test can set the variables before building a demo.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, fields
from typing import Any


@dataclass(frozen=True)
class HostingLimits:
    max_upload_mb: float = 10.0  # LASER_MAX_UPLOAD_MB: largest upload accepted, MB (> 0)
    max_pixels: int = 40_000_000  # LASER_MAX_PIXELS: largest decoded image, pixels (>= 1)
    work_side: int = 2048  # LASER_WORK_SIDE: long side the app downscales uploads to, px (>= 64)
    session_ttl_s: float = 900.0  # LASER_SESSION_TTL: seconds a run is kept per session (> 0)
    max_sessions: int = 64  # LASER_MAX_SESSIONS: sessions kept in memory at once (>= 1)
    queue_size: int = 16  # LASER_QUEUE_SIZE: model jobs waiting or running, all users (>= 1)
    max_text: int = 2000  # LASER_MAX_TEXT: longest question or text setting, characters (>= 1)

    def __post_init__(self) -> None:
        minimum = {"work_side": 64}
        for field in fields(self):
            value = getattr(self, field.name)
            floor = minimum.get(field.name, 1)
            if not math.isfinite(value) or value <= 0 or value < floor:
                raise ValueError(f"{ENV[field.name]} must be at least {floor}, got {value}")

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * 1_000_000)


ENV = {
    "max_upload_mb": "LASER_MAX_UPLOAD_MB",
    "max_pixels": "LASER_MAX_PIXELS",
    "work_side": "LASER_WORK_SIDE",
    "session_ttl_s": "LASER_SESSION_TTL",
    "max_sessions": "LASER_MAX_SESSIONS",
    "queue_size": "LASER_QUEUE_SIZE",
    "max_text": "LASER_MAX_TEXT",
}


def hosting_limits() -> HostingLimits:
    """The limits, each from its environment variable when set (see `ENV`), else the default.

    Raises:
        ValueError: a variable that is not a number in its range, naming the variable.
    """
    values: dict[str, Any] = {}
    for field in fields(HostingLimits):
        raw = os.environ.get(ENV[field.name], "").strip()
        if not raw:
            continue
        try:
            number = float(raw)
        except ValueError:
            raise ValueError(f"{ENV[field.name]} must be a number, got {raw!r}") from None
        is_int = field.type in (int, "int")
        values[field.name] = int(number) if is_int and math.isfinite(number) else number
    return HostingLimits(**values)
