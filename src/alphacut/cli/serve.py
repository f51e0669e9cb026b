"""`alphacut serve`: parse flags, build the app with `create_app`, run uvicorn."""

from __future__ import annotations

import contextlib
import errno
from pathlib import Path
from typing import Any

import click

from .params import runtime_flags


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", type=click.IntRange(0, 65535), default=7000, show_default=True)
@click.option(
    "-m", "--model", help="Default model, loaded at start-up. [default: u2net; env: ALPHACUT_MODEL]"
)
@click.option(
    "--models", help="Comma-separated models clients may use. [default: every cached model]"
)
@click.option("--allow-downloads", is_flag=True, help="Let a request trigger a model download.")
@click.option(
    "--workers", type=click.IntRange(1, 256), help="Inferences at once. [default: one per core]"
)
@click.option(
    "--queue-size",
    type=click.IntRange(0),
    default=16,
    show_default=True,
    help="Requests that may wait; beyond: 503.",
)
@click.option(
    "--timeout",
    type=click.FloatRange(min=0.1),
    default=60.0,
    show_default=True,
    help="Per-request limit in seconds (504).",
)
@click.option(
    "--max-upload-mb",
    type=click.FloatRange(min=0.001),
    default=25.0,
    show_default=True,
    help="Larger bodies get 413.",
)
@click.option("--max-pixels", type=click.IntRange(1), default=80_000_000, show_default=True)
@click.option(
    "--max-matting-pixels",
    type=click.IntRange(0),
    default=1_000_000,
    show_default=True,
    help="Largest image (or video frame) alpha matting (a=true) may solve; 413 beyond. Its "
    "memory grows with the image, about 0.6 GB a megapixel. 0: no limit.",
)
@click.option(
    "--cache-mb",
    type=click.FloatRange(min=0),
    default=128.0,
    show_default=True,
    help="Result cache size; 0 turns it off.",
)
@click.option(
    "--limit-concurrency",
    type=click.IntRange(1),
    default=128,
    show_default=True,
    help="Connections and requests at once; beyond, uvicorn answers 503.",
)
@click.option(
    "--header-timeout",
    type=click.FloatRange(min=0.1),
    default=10.0,
    show_default=True,
    help="Seconds a request's headers may take to arrive before the connection closes.",
)
@click.option(
    "--body-timeout",
    type=click.FloatRange(min=0.1),
    default=15.0,
    show_default=True,
    help="Seconds an upload may go silent before it is refused (408).",
)
@click.option(
    "--allowed-host",
    "allowed_hosts",
    multiple=True,
    metavar="NAME",
    help="Host header name the server answers to (repeatable; '*': any). [default: on a "
    "loopback address, it and localhost, 127.0.0.1 and ::1; elsewhere any]",
)
@click.option(
    "--metrics-public",
    is_flag=True,
    help="Serve /metrics without the API key (default: the key is needed when keys are set).",
)
@click.option(
    "--cors-origin", multiple=True, help="Allowed browser origin (repeatable). [default: none]"
)
@click.option(
    "--api-keys-file",
    type=click.Path(exists=True, dir_okay=False),
    help="One API key per line. [env: ALPHACUT_API_KEYS, ALPHACUT_API_KEYS_FILE]",
)
@click.option(
    "--allow-url", is_flag=True, help="Enable GET /api/remove?url=… (public addresses only)."
)
@click.option(
    "--max-batch",
    type=click.IntRange(1, 256),
    default=1,
    show_default=True,
    help="Group concurrent requests into model runs of up to this many images (for GPUs).",
)
@click.option(
    "--batch-wait-ms",
    type=click.FloatRange(min=0),
    default=5.0,
    show_default=True,
    help="How long a batch waits for more requests.",
)
@click.option(
    "--graceful-timeout",
    type=click.FloatRange(min=0),
    default=30.0,
    show_default=True,
    help="Seconds in-flight requests get to finish on shutdown.",
)
@click.option(
    "--drain-seconds",
    type=click.FloatRange(min=0),
    default=0.0,
    show_default=True,
    help="After SIGTERM, keep answering this long (503 for new work, /readyz 503) so a load "
    "balancer stops routing here before the listener closes.",
)
@click.option(
    "--state-dir",
    type=click.Path(file_okay=False),
    help="Video jobs' state (SQLite), uploads and results. [default: $ALPHACUT_CACHE_DIR/jobs]",
)
@click.option(
    "--video-max-mb",
    type=click.FloatRange(min=0.001),
    default=512.0,
    show_default=True,
    help="Largest video upload; beyond: 413.",
)
@click.option(
    "--video-max-seconds",
    type=click.FloatRange(min=0.001),
    default=600.0,
    show_default=True,
    help="Longest video accepted; beyond: 413.",
)
@click.option("--video-max-frames", type=click.IntRange(1), default=36_000, show_default=True)
@click.option(
    "--video-max-pixels",
    type=click.IntRange(1),
    default=3840 * 2160,
    show_default=True,
    help="Largest frame (width x height) accepted.",
)
@click.option(
    "--video-queue-size",
    type=click.IntRange(0),
    default=4,
    show_default=True,
    help="Video jobs that may wait; beyond: 503.",
)
@click.option(
    "--video-queue-per-key",
    type=click.IntRange(1),
    help="Video jobs one API key may have queued or running. [default: half the queue]",
)
@click.option(
    "--video-job-seconds",
    type=click.FloatRange(min=1),
    default=3600.0,
    show_default=True,
    help="A video job running longer fails (InferenceTimeout) and its output is removed.",
)
@click.option(
    "--video-ttl-hours",
    type=click.FloatRange(min=0.001),
    default=24.0,
    show_default=True,
    help="How long finished video results are kept.",
)
@click.option(
    "--video-disk-mb",
    type=click.FloatRange(min=1),
    default=8192.0,
    show_default=True,
    help="Disk the video jobs' files may use; the oldest results go first.",
)
@click.option(
    "--log-level",
    type=click.Choice(["debug", "info", "warning", "error"]),
    default="info",
    show_default=True,
)
@runtime_flags
def serve_command(**flags: Any) -> None:
    """Run the HTTP service and its web page (POST /api/remove, POST /api/video and
    /api/jobs, /docs, /metrics, /healthz)."""
    import logging

    require_server()
    check_listen(flags["host"], flags["port"])  # before the model loads, not after

    import uvicorn

    from ..models.registry import default_model
    from ..server import ServerSettings, create_app, load_api_keys
    from ..server.protocol import guarded_protocol
    from .choice import ModelFlags

    settings = ServerSettings(
        default_model=flags["model"] or default_model(),
        models=tuple(m.strip() for m in flags["models"].split(",") if m.strip())
        if flags["models"]
        else None,
        allow_downloads=flags["allow_downloads"],
        queue_size=flags["queue_size"],
        request_timeout_s=flags["timeout"],
        max_upload_bytes=int(flags["max_upload_mb"] * 1024 * 1024),
        max_pixels=flags["max_pixels"],
        max_matting_pixels=flags["max_matting_pixels"] or None,
        cache_bytes=int(flags["cache_mb"] * 1024 * 1024),
        cors_origins=tuple(flags["cors_origin"]),
        api_keys=load_api_keys(file=flags["api_keys_file"]),
        metrics_public=flags["metrics_public"],
        allowed_hosts=allowed_hosts(flags["host"], flags["allowed_hosts"]),
        body_timeout_s=flags["body_timeout"],
        allow_url=flags["allow_url"],
        max_batch=flags["max_batch"],
        batch_wait_ms=flags["batch_wait_ms"],
        runtime=ModelFlags(
            providers=flags["providers"], backend=flags["backend"], fast=flags["fast"]
        ).runtime(),
        accept_licenses=flags["accept_licenses"],
        state_dir=Path(flags["state_dir"]) if flags["state_dir"] else None,
        video_max_upload_bytes=int(flags["video_max_mb"] * 1024 * 1024),
        video_max_seconds=flags["video_max_seconds"],
        video_max_frames=flags["video_max_frames"],
        video_max_pixels=flags["video_max_pixels"],
        video_queue_size=flags["video_queue_size"],
        video_queue_per_key=flags["video_queue_per_key"],
        video_job_seconds=flags["video_job_seconds"],
        video_ttl_s=flags["video_ttl_hours"] * 3600,
        video_disk_bytes=int(flags["video_disk_mb"] * 1024 * 1024),
        **({"workers": flags["workers"]} if flags["workers"] else {}),
    )
    logging.getLogger("alphacut").setLevel(flags["log_level"].upper())
    app = create_app(settings)
    config = uvicorn.Config(
        app,
        host=flags["host"],
        port=flags["port"],
        log_level=flags["log_level"],
        access_log=False,  # alphacut.access logs one JSON line per request instead
        timeout_graceful_shutdown=flags["graceful_timeout"],
        server_header=False,
        http=guarded_protocol(flags["header_timeout"]),
        limit_concurrency=flags["limit_concurrency"],
    )
    DrainingServer(config, app, flags["drain_seconds"]).run()


def allowed_hosts(bound: str, named: tuple[str, ...]) -> tuple[str, ...] | None:
    """The Host names to answer: those named ('*': any); by default, on a loopback address
    its own names only (a DNS-rebinding page cannot reach it), elsewhere any."""
    if "*" in named:
        return None
    if named:
        return named
    import ipaddress

    loopback = bound == "localhost"
    with contextlib.suppress(ValueError):
        loopback = ipaddress.ip_address(bound).is_loopback
    return (bound, "localhost", "127.0.0.1", "::1") if loopback else None


def require_server() -> None:
    """Import the server's extras now: a missing one is one MissingDependency line."""
    from .._extras import installed, require

    for module in ("fastapi", "uvicorn", "prometheus_client"):
        require(module, "alphacut serve")
    if not installed("swagger_ui"):  # only its files are served: see server.app
        require("swagger_ui", "alphacut serve")
    if not installed("multipart"):  # python-multipart before 0.0.13 had only this name
        require("python_multipart", "alphacut serve")


_BIND_REASONS = {
    errno.EADDRINUSE: "address already in use (another server there? choose another --port)",
    errno.EACCES: "permission denied (ports below 1024 need privileges)",
    errno.EADDRNOTAVAIL: "this machine has no such address (check --host)",
}


def check_listen(host: str, port: int) -> None:
    """Bind `host`:`port` (every address the host resolves to) and let go at once, so that an
    address that is taken or not allowed is one CannotListen line before the model loads;
    uvicorn binds it for real moments later. SO_REUSEADDR as asyncio sets it: a port whose
    old connections linger in TIME_WAIT is free, one with a listener is not."""
    import socket

    from ..errors import CannotListen

    where = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    try:
        addresses = socket.getaddrinfo(
            host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )
    except socket.gaierror as exc:
        raise CannotListen(f"cannot listen on {where}: {exc.strerror}") from None
    for family, kind, proto, _, address in addresses:
        with socket.socket(family, kind, proto) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                probe.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            try:
                probe.bind(address)
            except OSError as exc:
                reason = _BIND_REASONS.get(exc.errno or 0, (exc.strerror or str(exc)).lower())
                raise CannotListen(f"cannot listen on {where}: {reason}") from None


class DrainingServer:
    """uvicorn's Server, but a shutdown signal first marks the app as draining: new requests
    get 503 while in-flight ones finish. With `drain_seconds`, the listener stays open that
    long before uvicorn's own graceful shutdown starts; a second signal skips the wait."""

    def __new__(cls, config: Any, app: Any, drain_seconds: float = 0.0) -> Any:
        import threading

        import uvicorn

        class _Server(uvicorn.Server):
            _drain_started = False

            def handle_exit(self, sig: int, frame: Any) -> None:
                app.state.draining = True
                if drain_seconds > 0 and not self._drain_started:
                    self._drain_started = True
                    timer = threading.Timer(
                        drain_seconds, uvicorn.Server.handle_exit, (self, sig, frame)
                    )
                    timer.daemon = True
                    timer.start()
                    return
                super().handle_exit(sig, frame)

        return _Server(config)
