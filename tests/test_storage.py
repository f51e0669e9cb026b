"""Object-store inputs and outputs against a real S3-compatible server (moto's, on
loopback), through s3fs and botocore as a user runs them: credentials and endpoint from
the usual AWS_* environment variables, no client library mocked."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import boto3
import pytest
from click.testing import CliRunner
from PIL import Image

from alphacut.cli.main import cli
from cluster import recorded_requests
from helpers import PHOTOS

ALPHACUT = str(Path(sys.executable).with_name("alphacut"))

NAMES = ["car-1.jpg", "bike.jpg", "horse.jpg"]


def upload_tree(bucket: str, prefix: str, folder: Path) -> None:
    s3 = boto3.client("s3")
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            s3.upload_file(str(path), bucket, f"{prefix}{path.relative_to(folder).as_posix()}")


def objects(bucket: str, prefix: str) -> dict[str, bytes]:
    s3 = boto3.client("s3")
    listing = s3.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", [])
    return {
        o["Key"][len(prefix) :]: s3.get_object(Bucket=bucket, Key=o["Key"])["Body"].read()
        for o in listing
    }


def local_outputs(folder: Path) -> dict[str, bytes]:
    return {
        p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*") if p.is_file()
    }


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    folder = tmp_path / "tree"
    (folder / "shoes" / "red").mkdir(parents=True)
    for index, name in enumerate(NAMES):
        place = folder / ("shoes/red" if index == 0 else "shoes" if index == 1 else ".")
        Image.open(PHOTOS / name).convert("RGB").resize((240, 180)).save(place / name)
    (folder / "shoes" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0\x00\x10JFIF" + b"\x00" * 40)
    (folder / ".hidden.jpg").write_bytes(b"skipped, never read")
    return folder


def invoke(*args: str):
    return CliRunner().invoke(cli, ["remove", *args, "--no-progress"])


def test_s3_round_trip_mirrors_the_tree_and_resumes(
    bucket: str, tree: Path, tmp_path: Path, s3_env: dict[str, str]
) -> None:
    upload_tree(bucket, "in/", tree)
    local = invoke(str(tree), "-o", str(tmp_path / "local"))
    first = invoke(f"s3://{bucket}/in/", "-o", f"s3://{bucket}/out/")
    assert first.exit_code == local.exit_code == 1, first.output
    assert objects(bucket, "out/") == local_outputs(tmp_path / "local")
    assert sorted(objects(bucket, "out/")) == ["horse.png", "shoes/bike.png", "shoes/red/car-1.png"]
    assert f"alphacut: failed: s3://{bucket}/in/shoes/broken.jpg: " in first.output
    assert "3 done, 0 skipped, 1 failed of 4" in first.output
    # The resume asks for one listing of the output prefix, not one request per file: the
    # requests the server received are counted (in a new process, so no client cache helps).
    command = [ALPHACUT, "remove", f"s3://{bucket}/in/", "-o", f"s3://{bucket}/out/"]
    with recorded_requests(s3_env["AWS_ENDPOINT_URL"]) as received:
        again = subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)
    assert "0 done, 3 skipped, 1 failed of 4" in again.stderr, again.stderr
    paths = [(r["method"], urlsplit(r["url"])) for r in received]
    about_outputs = [(m, u) for m, u in paths if u.path.startswith(f"/{bucket}/out/")]
    assert about_outputs == [], about_outputs  # no HEAD or GET per output
    listings = [u for m, u in paths if m == "GET" and "prefix=out" in u.query]
    assert 1 <= len(listings) <= 2, paths


def test_glob_and_single_objects_between_disk_and_s3(
    bucket: str, tree: Path, tmp_path: Path
) -> None:
    upload_tree(bucket, "in/", tree)
    globbed = invoke(f"s3://{bucket}/in/shoes/**/*.jpg", "-o", str(tmp_path / "g"))
    assert sorted(local_outputs(tmp_path / "g")) == ["bike.png", "red/car-1.png"], globbed.output
    assert f"alphacut: failed: s3://{bucket}/in/shoes/broken.jpg: " in globbed.output

    down = invoke(f"s3://{bucket}/in/horse.jpg", "-o", str(tmp_path / "horse.webp"))
    assert down.exit_code == 0, down.output
    up = invoke(str(tree / "horse.jpg"), "-o", f"s3://{bucket}/single/horse.webp")
    assert up.exit_code == 0, up.output
    assert objects(bucket, "single/")["horse.webp"] == (tmp_path / "horse.webp").read_bytes()
    assert (tmp_path / "horse.webp").read_bytes()[:4] == b"RIFF"


def test_unwritable_bucket_fails_each_file_clearly(bucket: str, tree: Path) -> None:
    result = invoke(str(tree), "-o", "s3://no-such-bucket-here/out/")
    assert result.exit_code == 1
    lines = [line for line in result.output.splitlines() if line.startswith("alphacut: failed:")]
    assert len(lines) == 4, result.output
    assert all("[StorageError]" in line or "[UnsupportedImage]" in line for line in lines)
    assert re.search(r"horse\.jpg: cannot write: .*\[StorageError\]", result.output)


def test_missing_prefix_is_one_clear_line(bucket: str, tmp_path: Path) -> None:
    result = invoke(f"s3://{bucket}/nothing-here/", "-o", str(tmp_path / "out"))
    assert result.exit_code == 1
    assert (
        f"alphacut: failed: s3://{bucket}/nothing-here/: no such object or prefix" in result.output
    )


def test_ray_engine_reads_and_writes_s3(ray_address: str, bucket: str, tree: Path) -> None:
    upload_tree(bucket, "in/", tree)
    local = invoke(f"s3://{bucket}/in/", "-o", f"s3://{bucket}/local/")
    remote = invoke(f"s3://{bucket}/in/", "-o", f"s3://{bucket}/ray/", "--engine", "ray")
    assert remote.exit_code == local.exit_code == 1, remote.output
    assert objects(bucket, "ray/") == objects(bucket, "local/")
    assert f"alphacut: failed: s3://{bucket}/in/shoes/broken.jpg: " in remote.output
