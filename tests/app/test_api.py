"""The app served in-process and called through gradio_client, as an API user would."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from gradio_client import Client, handle_file
from PIL import Image


@pytest.fixture(scope="module")
def client(app_module: ModuleType) -> Iterator[Client]:
    demo = app_module.build_demo()
    demo.launch(
        prevent_thread_lock=True, server_name="127.0.0.1", quiet=True, **app_module.launch_options()
    )
    try:
        yield Client(demo.local_url, verbose=False)
    finally:
        demo.close()


def test_api_lists_named_optional_settings(client: Client) -> None:
    parameters = client.view_api(return_format="dict")["named_endpoints"]["/run"]["parameters"]
    names = [p["parameter_name"] for p in parameters]
    assert names[:3] == ["image", "question", "model"] and "k_heads" in names
    assert all(p["parameter_has_default"] for p in parameters[2:])


def test_run_through_the_api(
    client: Client, tiny_model: str, picture: Image.Image, tmp_path: Path
) -> None:
    path = tmp_path / "scene.png"
    picture.save(path)
    result = client.predict(
        image=handle_file(str(path)),
        question="what colour is the box",
        model=tiny_model,
        max_new_tokens=3,
        api_name="/run",
    )
    status, answer, layer, heads, *images = result[:9]
    assert status.startswith("Done"), status
    assert "laser-answer-main" in answer
    assert layer["value"] in range(int(layer["maximum"]) + 1)
    for image in images[:5]:  # raw, relative, contrastive, VAQ, crop box
        with Image.open(image) as opened:
            assert opened.width > 100


def test_force_layer_refocuses_the_same_sessions_run(
    client: Client, tiny_model: str, picture: Image.Image, tmp_path: Path
) -> None:
    """/force_layer reuses the run kept in this client's session (gr.State)."""
    fresh = Client(client.src, verbose=False)  # a new session: nothing to refocus yet
    status = fresh.predict(model=tiny_model, layer=1, api_name="/force_layer")[0]
    assert status.startswith("⚠️") and "Run LASER first" in status
    path = tmp_path / "scene.png"
    picture.save(path)
    done = fresh.predict(
        image=handle_file(str(path)), question="what colour", model=tiny_model, api_name="/run"
    )
    assert done[0].startswith("Done"), done[0]
    status, answer, layer = fresh.predict(model=tiny_model, layer=1, api_name="/force_layer")[:3]
    assert status.startswith("Refocused on layer 1"), status
    assert "forced" in answer and layer["value"] == 1


def test_corrupt_upload_through_the_api(client: Client, tiny_model: str, tmp_path: Path) -> None:
    path = tmp_path / "broken.png"
    path.write_bytes(b"\x89PNG\r\n\x1a\n not an image at all")
    result = client.predict(
        image=handle_file(str(path)), question="what colour", model=tiny_model, api_name="/run"
    )
    assert result[0].startswith("⚠️") and "broken.png" in result[0]


def test_empty_question_through_the_api(client: Client, tmp_path: Path, tiny_model: str) -> None:
    path = tmp_path / "small.png"
    Image.new("RGB", (64, 64), "red").save(path)
    result = client.predict(image=handle_file(str(path)), question="", api_name="/run")
    assert result[0].startswith("⚠️") and "question" in result[0]


def test_two_users_at_once_get_their_own_results(
    client: Client, app_module: ModuleType, tiny_model: str, scene: Any, tmp_path: Path
) -> None:
    """Model calls queue one at a time; each session gets the panels of its own image."""
    sizes = [(320, 200), (200, 320)]
    jobs = []
    for index, size in enumerate(sizes):
        path = tmp_path / f"user{index}.png"
        scene(*size).save(path)
        other = Client(client.src, verbose=False)  # a second browser tab: its own session
        jobs.append(
            other.submit(
                image=handle_file(str(path)),
                question=f"what is {index}",
                model=tiny_model,
                max_new_tokens=2,
                api_name="/run",
            )
        )
    for job, size in zip(jobs, sizes, strict=True):
        result = job.result(timeout=120)
        assert result[0].startswith("Done"), result[0]
        with Image.open(result[8]) as crop_boxed:  # the image with the crop box
            assert crop_boxed.size == size
