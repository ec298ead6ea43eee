"""Timing script helpers of `bench_load.py`: the served app, its clients, and test images.

`Server` starts a fresh `python app.py` on a random LLaVA slow enough that abandoned runs matter
and reads its memory from /proc; the other functions are the client side (uploads, events,
timed calls) and the images the cases send.
"""

from __future__ import annotations

import json
import os
import statistics
import struct
import subprocess
import sys
import time
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from gradio_client import Client, handle_file
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))  # the tiny checkpoint builders of the test suite
sys.path.insert(0, str(ROOT))


import tiny_models  # noqa: E402

from ui.settings import SETTINGS  # noqa: E402

SLOW_TEXT = {  # about 25 ms per decoding step on the 2-core development machine
    "hidden_size": 512,
    "intermediate_size": 1536,
    "num_hidden_layers": 6,
    "num_attention_heads": 8,
    "num_key_value_heads": 4,
    "max_position_embeddings": 1024,
}
TTL_S = 60
ROWS: list[dict[str, Any]] = []
HELD: list[Client] = []  # clients kept connected, so their sessions can only expire


def slow_llava(folder: Path) -> Path:
    """A random LLaVA checkpoint of the real class, slow enough that abandoned runs matter."""
    tiny_models.TEXT_SHAPE = SLOW_TEXT
    return tiny_models.build_tiny_llava(folder)


# --- the server ----------------------------------------------------------------------------------


class Server:
    """`python app.py` in a fresh process; its RSS from /proc."""

    def __init__(self, port: int, model: Path, log: Path) -> None:
        env = {
            **os.environ,
            "LASER_MODEL": str(model),
            "LASER_SESSION_TTL": str(TTL_S),
            "GRADIO_SERVER_PORT": str(port),
            "OMP_WAIT_POLICY": "PASSIVE",
        }
        self.url = f"http://127.0.0.1:{port}/"
        self.log = log.open("w")
        self.process = subprocess.Popen(
            [sys.executable, "app.py"], cwd=ROOT, env=env, stdout=self.log, stderr=self.log
        )
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                if httpx.get(self.url, timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.5)
        raise RuntimeError(f"the app did not start; see {log}")

    def _status(self, key: str) -> float:
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1]) / 1024  # MB
        return float("nan")

    def rss(self) -> float:
        return self._status("VmRSS")

    def peak(self) -> float:
        return self._status("VmHWM")

    def reset_peak(self) -> None:
        Path(f"/proc/{self.process.pid}/clear_refs").write_text("5")

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)
        self.log.close()


def case(server: Server, name: str, run: Callable[[], tuple[list[float], str, str]]) -> None:
    """Run one case: its latencies (s), whether anything leaked, and what happened."""
    server.reset_peak()
    base = server.rss()
    latencies, leaked, outcome = run()
    time.sleep(0.5)
    row = {
        "case": name,
        "latency_s": (
            f"{statistics.median(latencies):.2f} / {max(latencies):.2f}" if latencies else "-"
        ),
        "rss_before_mb": round(base),
        "peak_mb": round(server.peak()),
        "final_mb": round(server.rss()),
        "leak": leaked,
        "outcome": outcome,
    }
    ROWS.append(row)
    print(json.dumps(row, ensure_ascii=False), flush=True)


# --- requests ------------------------------------------------------------------------------------


def settings(**overrides: Any) -> dict[str, Any]:
    return {s.name: overrides[s.name] for s in SETTINGS if s.name in overrides}


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    value = fn()
    return time.perf_counter() - start, value


def run_image(url: str, path: Path, question: str, **options: Any) -> tuple[float, Any, Client]:
    client = Client(url, verbose=False)
    seconds, result = timed(
        lambda: client.predict(
            image=handle_file(str(path)),
            question=question,
            api_name="/run",
            **settings(max_new_tokens=4, **options),
        )
    )
    return seconds, result, client


def call(url: str, api: str, data: list[Any]) -> tuple[str, Any]:
    posted = httpx.post(f"{url}gradio_api/call/{api}", json={"data": data}, timeout=60)
    if posted.status_code != 200:
        return f"http {posted.status_code}", posted.text
    event_id = posted.json()["event_id"]
    text = httpx.get(f"{url}gradio_api/call/{api}/{event_id}", timeout=120).text
    lines = [line for line in text.splitlines() if line.startswith(("event:", "data:"))]
    return lines[-2].split(":", 1)[1].strip(), json.loads(lines[-1].split(":", 1)[1])


def model_event(image: Any, question: str, **options: Any) -> list[Any]:
    return [image, question, None, *[options.get(s.name) for s in SETTINGS]]


def upload(url: str, path: Path) -> dict[str, Any]:
    with path.open("rb") as handle:
        response = httpx.post(f"{url}gradio_api/upload", files={"files": handle}, timeout=60)
    response.raise_for_status()
    return {
        "path": response.json()[0],
        "orig_name": path.name,
        "meta": {"_type": "gradio.FileData"},
    }


# --- inputs --------------------------------------------------------------------------------------


def blank_png(path: Path, width: int, height: int) -> Path:
    """A valid, flat PNG of any size, written row by row (a 12000 x 12000 one is ~0.4 MB)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    compressor = zlib.compressobj(9)
    row = b"\0" + b"\x80" * (3 * width)
    body = b"".join(compressor.compress(row) for _ in range(height)) + compressor.flush()
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", body) + chunk(b"IEND", b"")
    )
    return path


def scene(path: Path, width: int, height: int, seed: int) -> Path:
    image = Image.new("RGB", (width, height), (235, 235, 235))
    box = (width // 4 + seed, height // 4, width // 2 + seed, height // 2)
    image.paste((40 * seed % 255, 120, 200), box)
    image.save(path)
    return path


# --- the cases -----------------------------------------------------------------------------------
