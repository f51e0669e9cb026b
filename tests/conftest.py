from __future__ import annotations

import os
import secrets
import signal
import tempfile

import pytest


def pytest_configure(config: pytest.Config) -> None:
    # Saved optimised graphs go to a folder of this run's, not the user's ~/.cache; servers
    # and CLIs the tests start inherit it.
    os.environ["ALPHACUT_CACHE_DIR"] = tempfile.mkdtemp(prefix="alphacut-test-cache-")
    # The shipped default is u2net (176 MB, 4x u2netp's time): tests that do not name a model
    # run u2netp instead, and test_default_model.py checks the real default with this unset.
    os.environ["ALPHACUT_MODEL"] = "u2netp"
    # Every Ray process of the run (the `ray start` head, drivers, the CLI's own local
    # clusters) authenticates with this run's token, whatever ~/.ray holds: a machine that
    # never ran Ray has no ~/.ray/auth_token, and a developer's must not leak in. Ray reads
    # both variables once, at import, so they are set before any test imports it.
    os.environ["RAY_AUTH_MODE"] = "token"
    os.environ["RAY_AUTH_TOKEN"] = secrets.token_hex(32)
    os.environ.pop("RAY_AUTH_TOKEN_PATH", None)
    os.environ.pop("RAY_ADDRESS", None)
    # A shell that starts pytest in the background (`make test &`) hands it SIGINT ignored,
    # and every CLI it starts would inherit that and shrug off the Ctrl-C tests' signal.
    # A handled signal is reset to the default at exec, so the children get Ctrl-C back.
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


# `make test` spreads the tests over two processes (pytest-xdist) one by one, except these
# groups, each run by one worker in order: a module whose costly module-scoped fixture
# (an INT8 build, a quantisation, ground-truth clips) would otherwise be made twice, and
# everything that starts or joins a Ray cluster, which takes both cores and a share of
# /dev/shm, so that only one cluster runs at a time. (xdist's own xdist_group marks rely
# on a node-id attribute that pytest 9.2 no longer reads.)
GROUPED_MODULES = {"test_ray_engine.py": "ray", "test_fast.py": "int8", "test_quantize.py": "int8",
                   "test_smoothing.py": "smoothing"}  # fmt: skip


def xdist_group_of(nodeid: str) -> str | None:
    """The group a test runs in (see above), None when it may run anywhere."""
    path, _, name = nodeid.partition("::")
    grouped = GROUPED_MODULES.get(path.rsplit("/", 1)[-1])
    if grouped:
        return grouped
    if name.startswith("test_ray") or name.endswith("-ray]"):  # docs blocks: see their ids
        return "ray"
    return None


@pytest.hookimpl(optionalhook=True)  # a plain `pytest` without xdist runs too
def pytest_xdist_make_scheduler(config: pytest.Config, log: object) -> object:
    from xdist.scheduler import LoadScopeScheduling

    class GroupedScheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return xdist_group_of(nodeid) or nodeid

    return GroupedScheduling(config, log)


@pytest.fixture(scope="session")
def session():
    """One real u2netp session for the whole run."""
    from alphacut import RuntimeOptions, new_session

    # rembg runs on ONNX Runtime, so exact comparisons with it use the same runtime.
    return new_session("u2netp", runtime=RuntimeOptions(backend="onnxruntime"))


# The web page's fixtures (tests/web.py has the helpers they use).


@pytest.fixture(scope="module")
def base_url():
    from alphacut.server import ServerSettings
    from web import running_server

    with running_server(ServerSettings()) as url:
        yield url


@pytest.fixture(scope="module")
def browser():
    from playwright import sync_api

    from web import CHROMIUM, LAUNCH_ARGS

    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=LAUNCH_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def page_errors() -> list[str]:
    """Uncaught exceptions thrown by the page during one test."""
    return []


@pytest.fixture
def page(browser, base_url: str, page_errors: list[str]):
    from web import open_page

    context, page = open_page(
        browser, base_url, page_errors, viewport={"width": 1280, "height": 900}
    )
    try:
        yield page
    finally:
        context.close()


# The scale-out fixtures (tests/cluster.py has the helpers they use).


@pytest.fixture(scope="session")
def s3_env():
    """The environment of a real S3-compatible server (moto) on loopback, with a fresh
    bucket per test taken from `bucket`."""
    from cluster import s3_server

    with s3_server() as env:
        saved = {k: os.environ.get(k) for k in env}
        os.environ.update(env)
        try:
            yield env
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value


@pytest.fixture
def bucket(s3_env, request) -> str:
    import re

    import boto3

    name = re.sub(r"[^a-z0-9-]", "-", request.node.name.lower())[:50].strip("-")
    boto3.client("s3").create_bucket(Bucket=name)
    return name


@pytest.fixture(scope="session")
def ray_head_node(s3_env):
    """A Ray head started once per session with `ray start` (its workers can reach the S3
    server): its address and its Ray Client URL."""
    from cluster import ray_head

    with ray_head(s3_env) as addresses:
        yield addresses


@pytest.fixture(scope="session")
def ray_address(ray_head_node):
    """The session's Ray head, with this process connected to it as a driver."""
    import ray

    address, _ = ray_head_node
    ray.init(address=address, log_to_driver=False)
    try:
        yield address
    finally:
        ray.shutdown()
