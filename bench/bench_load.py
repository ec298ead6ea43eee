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
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
from gradio_client import Client, handle_file
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from load_client import (  # noqa: E402
    HELD,
    ROOT,
    ROWS,
    TTL_S,
    Server,
    blank_png,
    call,
    case,
    model_event,
    run_image,
    scene,
    settings,
    slow_llava,
    timed,
    upload,
)


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
    message = status.split(" ", 1)[-1][:48]  # without the warning sign
    return [seconds], "no", f"html shown as text: {escaped}; nan: “{message}”"


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
        model = slow_llava(work / "slow-llava")
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
