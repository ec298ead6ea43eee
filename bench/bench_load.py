"""A bounded load and fault test of LASER Lens as hosted: a fresh `python app.py`, hit the way a
crowd and an attacker would, with the server's memory read from /proc.

The server runs a random LLaVA of the real class, big enough that decoding 512 tokens takes tens
of seconds on a CPU (LASER_MODEL points at it), so abandoned runs matter; "quick" runs decode 4
tokens. Cases, in order:

    warm-up      one run (loads the model)
    crowd        N sessions at once, each its own image size; then each exports, and the export
                 and the panels are checked to be that session's own (no leak across sessions)
    big images   N sessions upload a 6000 x 6000 PNG (36 Mpx, under the 40 Mpx limit): downscaled
    bombs        N sessions upload a 446 KB PNG of 12000 x 12000: refused from the header
    expired      wait for LASER_SESSION_TTL (set to 60 s here): the sessions' state is deleted
    again        the big images once more: memory is reused, not added
    closed       those clients go away: their sessions are deleted at once (unload)
    oversized    a 12 MB upload: HTTP 413
    paths        forged {"path": ...} payloads to /run, /compare, /clvs: one message, no image
    leaves       a client disconnects 3 s into a long run; the next user's quick run
    stop         a client presses Stop (/cancel) 3 s into a long run; the next user's quick run
    flood        32 sessions queue long runs and all disconnect; then a quick run
    twice        one session asks twice: the second is refused
    html, nan    HTML typed in a setting, NaN for the export's opacity

For each case: the latency (median / max over its requests), the server's peak RSS during the
case (VmHWM, reset before each case through /proc/PID/clear_refs) and its RSS at the end, and
whether anything leaked across sessions. Bounded: every request has a timeout; about 4 minutes.

    OMP_WAIT_POLICY=PASSIVE python bench/bench_load.py [--sessions 8] [--port 7893]
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import time
import zlib
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
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


def crowd(server: Server, work: Path, n: int) -> tuple[list[float], str, str]:
    sizes = [(320 + 16 * i, 240 - 8 * i) for i in range(n)]
    paths = [scene(work / f"user{i}.png", *size, i) for i, size in enumerate(sizes)]
    with ThreadPoolExecutor(n) as pool:
        done = list(
            pool.map(lambda i: run_image(server.url, paths[i], f"what is box {i}"), range(n))
        )
    leaks = 0
    for i, (_, result, client) in enumerate(done):
        if not result[0].startswith("Done"):
            leaks += 1
            continue
        with Image.open(result[8]) as boxed:  # the image with the crop box: this user's size
            leaks += boxed.size != sizes[i]
        files, _ = client.predict(
            layer=1, heads="method", opacity=0.5, smooth=False, api_name="/export"
        )
        exported = json.loads(Path(files[1]).read_text())
        leaks += exported["question"] != f"what is box {i}" or exported["image_size"] != list(
            sizes[i]
        )
    ok = sum(r[0].startswith("Done") for _, r, _ in done)
    HELD.extend(client for _, _, client in done)
    return [s for s, _, _ in done], "yes" if leaks else "no", f"{ok}/{n} done, exports checked"


def big_images(server: Server, work: Path, n: int) -> tuple[list[float], str, str]:
    path = blank_png(work / "big.png", 6000, 6000)
    with ThreadPoolExecutor(n) as pool:
        done = list(pool.map(lambda i: run_image(server.url, path, f"big {i}"), range(n)))
    ok = sum("downscaled from the upload's 6000 × 6000" in r[0] for _, r, _ in done)
    HELD.extend(client for _, _, client in done)
    size = path.stat().st_size / 1e6
    return [s for s, _, _ in done], "no", f"{ok}/{n} run at 2048 × 2048 ({size:.1f} MB file)"


def bombs(server: Server, work: Path, n: int) -> tuple[list[float], str, str]:
    path = blank_png(work / "bomb.png", 12000, 12000)
    with ThreadPoolExecutor(n) as pool:
        done = list(pool.map(lambda i: run_image(server.url, path, f"bomb {i}"), range(n)))
    refused = sum("12000 × 12000 pixels" in r[0] for _, r, _ in done)
    size = path.stat().st_size / 1e3
    return [s for s, _, _ in done], "no", f"{refused}/{n} refused ({size:.0f} KB file)"


def expired(server: Server) -> tuple[list[float], str, str]:
    """The held clients stay connected: their sessions can only go by expiring."""
    before, held = server.rss(), len(HELD)
    time.sleep(TTL_S + 5)
    return [], "-", f"{held} connected sessions: RSS {before:.0f} -> {server.rss():.0f} MB"


def closed(server: Server) -> tuple[list[float], str, str]:
    """The held clients go away (as a closed tab): their sessions are deleted on unload."""
    before, held = server.rss(), len(HELD)
    HELD.clear()
    gc.collect()
    time.sleep(5)
    return [], "-", f"{held} clients closed: RSS {before:.0f} -> {server.rss():.0f} MB"


def oversized(server: Server, work: Path) -> tuple[list[float], str, str]:
    path = work / "huge.png"
    path.write_bytes(b"\x89PNG" + os.urandom(12_000_000))
    with path.open("rb") as handle:
        seconds, response = timed(
            lambda: httpx.post(
                f"{server.url}gradio_api/upload", files={"files": handle}, timeout=60
            )
        )
    return [seconds], "no", f"HTTP {response.status_code}"


def paths(server: Server, secret: dict[str, Any]) -> tuple[list[float], str, str]:
    exports = sorted(Path(tempfile.gettempdir()).glob("laser-lens-*/laser-slide.png"))
    targets = ["/etc/passwd", "/etc", "/no/such.png", str(ROOT / "app.py"), "../../etc/hosts"]
    targets += [str(p) for p in exports[:1]]  # another session's slide, where export wrote it
    latencies, messages, images = [], set(), 0
    for api, index in (("run", 1), ("compare", 0), ("clvs", 1)):
        for target in targets:
            seconds, (event, data) = timed(
                lambda a=api, t=target: call(server.url, a, model_event({"path": t}, "what"))
            )
            latencies.append(seconds)
            messages.add(str(data[index]) if event == "complete" else f"{event} {data}")
            images += any(isinstance(v, dict) and v.get("path") for v in data)
    # A file inside Gradio's upload folder (another session's upload, whose unguessable path an
    # attacker would have to know; Gradio serves such files to anyone holding the path anyway).
    event, data = call(server.url, "run", model_event(secret, "what"))
    cached = "read" if event == "complete" and str(data[1]).startswith("Done") else "refused"
    leaked = "yes" if images or len(messages) != 1 else "no"
    outcome = (
        f"{len(targets) * 3} payloads outside the upload folder: {len(messages)} distinct "
        f"message(s), {images} with images; a known upload-folder path: {cached}"
    )
    return latencies, leaked, outcome


def abandoned(server: Server, work: Path, how: str) -> tuple[list[float], str, str]:
    path = scene(work / f"{how}.png", 300, 200, 1)
    long = settings(max_new_tokens=512)
    if how == "leaves":
        image = upload(server.url, path)
        posted = httpx.post(
            f"{server.url}gradio_api/call/run",
            json={"data": model_event(image, "long run", **long)},
            timeout=30,
        )
        event_id = posted.json()["event_id"]
        with httpx.stream("GET", f"{server.url}gradio_api/call/run/{event_id}", timeout=60):
            time.sleep(3.0)  # then the connection closes: the client has gone
    else:
        leaving = Client(server.url, verbose=False)
        job = leaving.submit(
            image=handle_file(str(path)), question="long run", api_name="/run", **long
        )
        time.sleep(3.0)
        job.cancel()
    seconds, result, _ = run_image(server.url, path, "next user")
    return [seconds], "no", f"next user: {result[0][:40]}"


def flood(server: Server, work: Path, n: int = 32) -> tuple[list[float], str, str]:
    path = scene(work / "flood.png", 300, 200, 2)
    image = upload(server.url, path)
    accepted, refused, streams = 0, 0, []
    http = httpx.Client(timeout=60)
    for i in range(n):
        posted = http.post(
            f"{server.url}gradio_api/call/run",
            json={"data": model_event(image, f"flood {i}", max_new_tokens=512)},
        )
        if posted.status_code == 200:
            accepted += 1
            event_id = posted.json()["event_id"]
            request = http.build_request("GET", f"{server.url}gradio_api/call/run/{event_id}")
            streams.append(http.send(request, stream=True))
        else:
            refused += "busy" in posted.text
    time.sleep(2.0)
    for stream in streams:
        stream.close()
    http.close()
    seconds, result, _ = run_image(server.url, path, "after the flood")
    outcome = f"{accepted} queued, {refused} refused busy; then: {result[0][:30]}"
    return [seconds], "no", outcome


def twice(server: Server, work: Path) -> tuple[list[float], str, str]:
    path = scene(work / "twice.png", 300, 200, 3)
    client = Client(server.url, verbose=False)
    first = client.submit(
        image=handle_file(str(path)), question="one", api_name="/run", max_new_tokens=64
    )
    time.sleep(0.5)
    try:
        seconds, _ = timed(
            lambda: client.predict(image=handle_file(str(path)), question="two", api_name="/run")
        )
        outcome = "second accepted"
    except Exception as error:  # noqa: BLE001 - the refusal is the expected outcome
        seconds, outcome = 0.0, f"second refused: {str(error).splitlines()[-1][:60]}"
    first.result(timeout=120)
    return [seconds], "no", outcome


def html_and_nan(server: Server, work: Path) -> tuple[list[float], str, str]:
    path = scene(work / "html.png", 300, 200, 4)
    attack = '<img src="http://127.0.0.1:9/x.png"> [a](http://127.0.0.1:9/)'
    seconds, result, client = run_image(server.url, path, "what", force_layer=attack)
    escaped = "<img" not in result[0] and "&lt;img" in result[0] and "\\[a\\]" in result[0]
    client.predict(image=handle_file(str(path)), question="what", api_name="/run")  # a run
    _, status = client.predict(
        layer=1, heads="method", opacity="nan", smooth=False, api_name="/export"
    )
    return [seconds], "no", f"html shown as text: {escaped}; nan: “{status[2:50]}”"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=8)
    parser.add_argument("--port", type=int, default=7893)
    args = parser.parse_args()
    with socket.socket() as probe:
        if probe.connect_ex(("127.0.0.1", args.port)) == 0:
            raise SystemExit(f"port {args.port} is in use: pass --port")
    with tempfile.TemporaryDirectory(prefix="bench-load-") as folder:
        work = Path(folder)
        tiny_models.TEXT_SHAPE = SLOW_TEXT
        model = tiny_models.build_tiny_llava(work / "slow-llava")
        server = Server(args.port, model, work / "server.log")
        print(
            f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, load "
            f"{os.getloadavg()[0]:.1f}; python {platform.python_version()}; server pid "
            f"{server.process.pid}, RSS {server.rss():.0f} MB at start",
            flush=True,
        )
        try:
            warm = scene(work / "warm.png", 320, 240, 0)
            case(
                server, "warm-up", lambda: ([run_image(server.url, warm, "warm")[0]], "-", "1 run")
            )
            case(
                server,
                f"crowd ({args.sessions} sessions)",
                lambda: crowd(server, work, args.sessions),
            )
            case(
                server,
                f"big images ({args.sessions} x 36 Mpx)",
                lambda: big_images(server, work, args.sessions),
            )
            case(
                server,
                f"bombs ({args.sessions} x 144 Mpx)",
                lambda: bombs(server, work, args.sessions),
            )
            case(server, "sessions expire", lambda: expired(server))
            case(
                server,
                f"big images again ({args.sessions} x 36 Mpx)",
                lambda: big_images(server, work, args.sessions),
            )
            case(server, "clients close", lambda: closed(server))
            case(server, "oversized upload (12 MB)", lambda: oversized(server, work))
            secret = upload(server.url, scene(work / "secret.png", 200, 200, 5))
            case(server, "path payloads", lambda: paths(server, secret))
            case(server, "client leaves mid-run", lambda: abandoned(server, work, "leaves"))
            case(server, "Stop mid-run", lambda: abandoned(server, work, "stop"))
            case(server, "flood: 32 abandoned", lambda: flood(server, work))
            case(server, "same session twice", lambda: twice(server, work))
            case(server, "html and nan", lambda: html_and_nan(server, work))
        finally:
            server.stop()
    print()
    print("| case | latency (s, median / max) | peak RSS (MB) | final RSS (MB) | leak | outcome |")
    print("|---|---|---|---|---|---|")
    for row in ROWS:
        print(
            f"| {row['case']} | {row['latency_s']} | {row['peak_mb']} | {row['final_mb']} | "
            f"{row['leak']} | {row['outcome']} |"
        )


if __name__ == "__main__":
    main()
