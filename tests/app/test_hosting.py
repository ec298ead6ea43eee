"""The app is safe to host in public: each finding of the hosting review, tried against a running
server the way an attacker or a crowd would (raw HTTP and gradio_client).

1. no server file is read through a forged upload payload, and no message tells which exist;
2. upload size and pixel limits hold, and a session's memory is freed when it expires;
3. a run stops when its client leaves or presses Stop, and the next one starts promptly,
   never overlapping it on the model; one job per session, a bounded queue;
4. text typed by a user is never shown as HTML;
5. bad API values get a sentence, not `{"error": null}`.
"""

from __future__ import annotations

import gc
import json
import math
import struct
import threading
import time
import weakref
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import gradio as gr
import httpx
import pytest
from gradio_client import Client, handle_file
from PIL import Image

from laser_core.cancel import check
from ui import models
from ui.settings import SETTINGS
from ui.uploads import NOT_AN_UPLOAD

LIMITS = {
    "LASER_MAX_UPLOAD_MB": "1",
    "LASER_MAX_PIXELS": "4000000",
    "LASER_QUEUE_SIZE": "3",
    "LASER_SESSION_TTL": "600",
}
N_INPUTS = 3 + len(SETTINGS)  # image, question, model, *settings


def png(width: int, height: int) -> bytes:
    """A PNG whose header says width x height but whose pixel data is a few bytes: only a
    decoder that trusts the header before decoding says how many pixels it has."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8-bit RGB
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\0" * 64))
        + chunk(b"IEND", b"")
    )


def _serve(app_module: ModuleType, env: dict[str, str]) -> Iterator[gr.Blocks]:
    with pytest.MonkeyPatch.context() as patch:
        for name, value in env.items():
            patch.setenv(name, value)
        demo = app_module.build_demo()
        demo.launch(
            prevent_thread_lock=True,
            server_name="127.0.0.1",
            quiet=True,
            **app_module.launch_options(),
        )
        try:
            yield demo
        finally:
            demo.close()


@pytest.fixture(scope="module")
def demo(app_module: ModuleType, tiny_model: str) -> Iterator[gr.Blocks]:
    yield from _serve(app_module, LIMITS)


def call(url: str, api: str, data: list[Any], timeout: float = 120) -> tuple[str, Any]:
    """(event, data) of one /gradio_api/call/ request, as curl would make it."""
    posted = httpx.post(f"{url}gradio_api/call/{api}", json={"data": data}, timeout=timeout)
    if posted.status_code != 200:
        return f"http {posted.status_code}", posted.text
    event_id = posted.json()["event_id"]
    stream = httpx.get(f"{url}gradio_api/call/{api}/{event_id}", timeout=timeout).text
    lines = [line for line in stream.splitlines() if line.startswith(("event:", "data:"))]
    event, data_line = lines[-2], lines[-1]
    return event.split(":", 1)[1].strip(), json.loads(data_line.split(":", 1)[1])


def model_event(image: Any, question: str = "what colour", **settings: Any) -> list[Any]:
    values = [settings.get(s.name) for s in SETTINGS]
    return [image, question, None, *values]


# --- 1. no server file is read -------------------------------------------------------------------


def test_path_payloads_read_no_server_file(demo: gr.Blocks, tmp_path: Path) -> None:
    """A forged {"path": ...} is refused with one message, whatever exists there."""
    secret = tmp_path / "secret.png"
    Image.new("RGB", (64, 48), "red").save(secret)
    targets = [str(secret), "/etc/passwd", "/etc", "/no/such/file.png", "../../../etc/hosts"]
    for api, status_index in (("run", 1), ("compare", 0), ("clvs", 1)):
        for target in targets:
            event, data = call(demo.local_url, api, model_event({"path": target}))
            assert event == "complete", (api, target, data)
            assert data[status_index] == f"⚠️ {NOT_AN_UPLOAD}", (api, target)
            files = [v for v in data if isinstance(v, dict) and v.get("path")]
            assert files == [], f"{api} returned files for {target}"
        marked = {"path": str(secret), "meta": {"_type": "gradio.FileData"}}
        event, data = call(demo.local_url, api, model_event(marked))
        assert "Done" not in json.dumps(data) and "Compared" not in json.dumps(data)


def test_a_plain_path_string_is_not_opened(demo: gr.Blocks, tmp_path: Path) -> None:
    secret = tmp_path / "secret.png"
    Image.new("RGB", (64, 48), "red").save(secret)
    event, data = call(demo.local_url, "run", model_event(str(secret)))
    assert (event, "ImageData" in data) == ("http 400", True), data  # Gradio's type check
    assert "Done" not in data


# --- 2. memory -----------------------------------------------------------------------------------


def test_upload_size_limit(demo: gr.Blocks) -> None:
    big = b"\x89PNG" + b"\0" * 1_200_000  # over LASER_MAX_UPLOAD_MB=1
    response = httpx.post(
        f"{demo.local_url}gradio_api/upload", files={"files": ("big.png", big)}, timeout=60
    )
    assert response.status_code == 413, response.text


def test_pixel_limit_is_checked_from_the_header(demo: gr.Blocks, tmp_path: Path) -> None:
    """12000 x 12000 declared in a tiny file: refused by its header, before any decoding (the
    pixel data would not even decode)."""
    path = tmp_path / "bomb.png"
    path.write_bytes(png(12000, 12000))
    client = Client(demo.local_url, verbose=False)
    status = client.predict(image=handle_file(str(path)), question="what", api_name="/run")[0]
    assert "“bomb.png” is 12000 × 12000 pixels" in status, status
    assert "up to 4 megapixels" in status


def test_a_session_is_freed_when_it_expires(
    app_module: ModuleType, tiny_model: str, picture: Image.Image, tmp_path: Path
) -> None:
    for served in _serve(app_module, {**LIMITS, "LASER_SESSION_TTL": "2"}):
        path = tmp_path / "scene.png"
        picture.save(path)
        client = Client(served.local_url, verbose=False)
        done = client.predict(
            image=handle_file(str(path)), question="what", max_new_tokens=2, api_name="/run"
        )
        assert done[0].startswith("Done"), done[0]
        state = served.state_holder.session_data[client.session_hash]
        kept = [v for v in state.state_data.values() if type(v).__name__ == "Session"]
        assert len(kept) == 1
        session = weakref.ref(kept[0])
        del kept, state
        deadline = time.monotonic() + 20
        while session() is not None and time.monotonic() < deadline:
            time.sleep(0.5)
            gc.collect()
        assert session() is None, "the expired session is still in memory"
        status = client.predict(layer=1, api_name="/force_layer")[0]
        assert "Run LASER first" in status and "kept" in status


def test_a_closed_tab_forgets_its_session(demo: gr.Blocks) -> None:
    """The unload event deletes the session's state at once (Gradio would keep it an hour)."""
    from gradio.context import LocalContext

    from ui.runs import forget_session

    holder = demo.state_holder
    state = holder["closed-tab"]
    session_block = next(b for b in demo.blocks.values() if isinstance(b, gr.State))
    state[session_block._id] = "a run"
    request = type("FakeRequest", (), {"session_hash": "closed-tab"})()
    tokens = (LocalContext.blocks.set(demo), LocalContext.request.set(request))
    try:
        forget_session()
    finally:
        LocalContext.blocks.reset(tokens[0])
        LocalContext.request.reset(tokens[1])
    assert session_block._id not in holder.session_data["closed-tab"].state_data


# --- 3. abandoned runs stop; nobody starves ------------------------------------------------------


class SlowModel:
    """Stands in for `models.explain_on_device`: "slow" questions run up to 20 s, checking the
    stop flag every 20 ms like a decoding loop; every call's [start, end] is recorded."""

    def __init__(self, real: Callable[..., Any]) -> None:
        self.real = real
        self.runs: dict[str, list[float]] = {}
        self.started = threading.Event()

    def __call__(self, choice: str, image: Any, question: str, config: Any, on_stage: Any) -> Any:
        record = self.runs.setdefault(question, [time.monotonic(), math.inf])
        self.started.set()
        try:
            if question.startswith("slow"):
                for _ in range(1000):
                    check()
                    time.sleep(0.02)
            return self.real(choice, image, question, config, on_stage)
        finally:
            record[1] = time.monotonic()


@pytest.fixture
def slow_model(monkeypatch: pytest.MonkeyPatch) -> SlowModel:
    fake = SlowModel(models.explain_on_device)
    monkeypatch.setattr(models, "explain_on_device", fake)
    return fake


def _scene_file(tmp_path: Path, picture: Image.Image) -> str:
    path = tmp_path / "scene.png"
    picture.save(path)
    return str(path)


def _assert_next_run_prompt(fake: SlowModel, stopped_at: float, first: str, second: str) -> None:
    start_first, end_first = fake.runs[first]
    start_second, _ = fake.runs[second]
    assert end_first - stopped_at < 2.0, "the abandoned run went on"
    assert start_second - stopped_at < 2.0, "the next run waited for the abandoned one"
    assert start_second >= end_first, "the next run overlapped the abandoned one on the model"


def test_stop_frees_the_model_at_once(
    demo: gr.Blocks, slow_model: SlowModel, picture: Image.Image, tmp_path: Path
) -> None:
    image = handle_file(_scene_file(tmp_path, picture))
    leaving = Client(demo.local_url, verbose=False)
    job = leaving.submit(image=image, question="slow stop", max_new_tokens=2, api_name="/run")
    other = Client(demo.local_url, verbose=False)  # the next user, already on the page
    assert slow_model.started.wait(30)
    time.sleep(0.5)
    stopped_at = time.monotonic()
    job.cancel()  # what the Stop button sends (/cancel)
    done = other.predict(image=image, question="next one", max_new_tokens=2, api_name="/run")
    assert done[0].startswith("Done"), done[0]
    _assert_next_run_prompt(slow_model, stopped_at, "slow stop", "next one")


def test_a_client_that_leaves_stops_its_run(
    demo: gr.Blocks, slow_model: SlowModel, picture: Image.Image, tmp_path: Path
) -> None:
    uploaded = _upload(demo.local_url, _scene_file(tmp_path, picture))
    url = demo.local_url
    posted = httpx.post(
        f"{url}gradio_api/call/run",
        json={"data": model_event(uploaded, "slow leave", max_new_tokens=2)},
    )
    event_id = posted.json()["event_id"]
    other = Client(url, verbose=False)  # the next user, already on the page
    with httpx.stream("GET", f"{url}gradio_api/call/run/{event_id}", timeout=60):  # open
        assert slow_model.started.wait(30)
        time.sleep(0.5)
        stopped_at = time.monotonic()
    # the connection is closed: the client has gone
    done = other.predict(
        image=uploaded,
        question="after leave",
        max_new_tokens=2,
        api_name="/run",
    )
    assert done[0].startswith("Done"), done[0]
    _assert_next_run_prompt(slow_model, stopped_at, "slow leave", "after leave")


def _upload(url: str, path: str) -> dict[str, Any]:
    """Upload a file as the browser does; its payload (path in Gradio's upload folder)."""
    with open(path, "rb") as handle:
        response = httpx.post(f"{url}gradio_api/upload", files={"files": handle}, timeout=60)
    response.raise_for_status()
    stored = response.json()[0]
    return {"path": stored, "orig_name": Path(path).name, "meta": {"_type": "gradio.FileData"}}


def test_one_job_per_session_and_a_bounded_queue(
    demo: gr.Blocks, slow_model: SlowModel, picture: Image.Image, tmp_path: Path
) -> None:
    image = handle_file(_scene_file(tmp_path, picture))
    first = Client(demo.local_url, verbose=False)
    jobs = [first.submit(image=image, question="slow a", max_new_tokens=2, api_name="/run")]
    assert slow_model.started.wait(30)
    with pytest.raises(Exception, match="previous run is still going"):
        first.predict(image=image, question="again", api_name="/compare")
    for name in ("slow b", "slow c"):  # LASER_QUEUE_SIZE = 3: these fill it
        jobs.append(
            Client(demo.local_url, verbose=False).submit(
                image=image, question=name, api_name="/run"
            )
        )
    time.sleep(1.0)
    with pytest.raises(Exception, match="busy .* try again in a moment"):
        Client(demo.local_url, verbose=False).predict(image=image, question="d", api_name="/run")
    for job in jobs:
        job.cancel()


# --- 4. typed text is never HTML -----------------------------------------------------------------

ATTACK = (
    '<img src="http://127.0.0.1:9/probe.png"> [a link](http://127.0.0.1:9/) '
    '![img](http://127.0.0.1:9/i.png) <form action="/x"><button>go</button></form> $$x$$'
)


def test_typed_html_is_escaped_in_the_status_and_the_pop_up(
    handlers: ModuleType,
    tiny_model: str,
    picture: Image.Image,
    settings: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    markdown_it = pytest.importorskip("markdown_it")
    popped: list[str] = []
    monkeypatch.setattr(gr, "Warning", lambda message, *_, **__: popped.append(message))
    view = handlers.explain_view(picture, "what", tiny_model, settings(force_layer=ATTACK))
    rendered = markdown_it.MarkdownIt("commonmark", {"html": True}).render(view.status)
    for tag in ("<img", "<a ", "<form", "<button"):
        assert tag not in rendered, rendered
    assert popped and "<img" not in popped[0] and "&lt;img" in popped[0]
    assert "&lt;img" in rendered and "[a link]" in rendered  # shown as typed
    assert "force_layer" in view.status


# --- 5. bad API values get a sentence ------------------------------------------------------------


@pytest.fixture(scope="module")
def ran(demo: gr.Blocks, picture: Image.Image, tmp_path_factory: pytest.TempPathFactory) -> Client:
    """A client whose session holds one run."""
    path = tmp_path_factory.mktemp("ran") / "scene.png"
    picture.save(path)
    client = Client(demo.local_url, verbose=False)
    done = client.predict(
        image=handle_file(str(path)), question="what", max_new_tokens=2, api_name="/run"
    )
    assert done[0].startswith("Done"), done[0]
    return client


def test_bad_export_values_get_a_sentence(demo: gr.Blocks, ran: Client) -> None:
    for bad, words in (
        ({"opacity": "nan"}, "opacity must be a finite number"),
        ({"opacity": "dark"}, "opacity must be a number"),
        ({"layer": 1.5}, "layer must be a whole number"),
    ):
        values = {"layer": 1, "heads": "method", "opacity": 0.5, "smooth": False, **bad}
        files, status = ran.predict(**values, api_name="/export")
        assert files is None and words in status.lower(), status
    body = '{"data": [1, "method", NaN, false]}'  # a raw NaN, as a careless client sends it
    posted = httpx.post(
        f"{demo.local_url}gradio_api/call/export",
        content=body,
        headers={"content-type": "application/json"},
    )
    assert posted.status_code == 200, posted.text
    event_id = posted.json()["event_id"]
    stream = httpx.get(f"{demo.local_url}gradio_api/call/export/{event_id}").text
    assert stream.startswith("event: complete") and "\\u26a0" in stream, stream  # a sentence


def test_a_fractional_layer_is_refused_not_rounded(ran: Client) -> None:
    status = ran.predict(layer=2.7, api_name="/force_layer")[0]
    assert "layer must be a whole number, got 2.7" in status.lower(), status


def test_the_export_hides_the_model_folder(ran: Client, tiny_model: str) -> None:
    files, _ = ran.predict(layer=1, heads="method", opacity=0.5, smooth=False, api_name="/export")
    exported = json.loads(Path(files[1]).read_text())
    assert exported["model_id"] == Path(tiny_model).name
    assert str(Path(tiny_model).parent) not in json.dumps(exported)


def test_an_empty_file_is_named_once(demo: gr.Blocks, tmp_path: Path) -> None:
    path = tmp_path / "empty.png"
    path.write_bytes(b"")
    status = Client(demo.local_url, verbose=False).predict(
        image=handle_file(str(path)), question="what", api_name="/run"
    )[0]
    assert status.count("empty.png") == 1 and "“empty.png” cannot be read" in status, status


def test_the_slider_redraw_is_an_api_endpoint(ran: Client) -> None:
    frames = ran.predict(layer=1, heads="mean", opacity=0.4, smooth=False, api_name="/redraw")
    assert len(frames) == 3
    for frame in frames:
        with Image.open(frame) as opened:
            assert opened.width > 100
