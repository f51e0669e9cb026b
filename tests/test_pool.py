"""The model pool and the kinds table: each model loads once per process, and what a model
can do comes from its kind's row, never from a test of its kind's name."""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import alphacut
from alphacut import RemoveOptions, Remover
from alphacut.imagefile import DecodedImage
from alphacut.models.kinds import KINDS
from alphacut.models.registry import MODELS
from alphacut.pool import ModelPool
from alphacut.video import frame_masks

PACKAGE = Path(alphacut.__file__).parent
PHOTO = Image.fromarray(np.random.default_rng(3).integers(0, 255, (96, 128, 3), np.uint8))


def test_removers_over_one_pool_load_each_model_once() -> None:
    pool = ModelPool()
    first, second = Remover("u2netp", pool=pool), Remover("u2netp", pool=pool)
    assert first.session is second.session
    assert Remover("u2netp").session is not first.session  # a pool of its own loads again
    assert pool.refiner(RemoveOptions()) is None  # nothing asked for ViTMatte
    with pytest.raises(alphacut.OptionsError, match="pool="):
        Remover("u2netp", pool=pool, runtime=alphacut.RuntimeOptions(fast=True))


def test_a_batched_copy_is_made_once_and_masks_as_the_plain_model_does() -> None:
    pool = ModelPool()
    batched = pool.session("u2netp", batched=True)
    assert pool.session("u2netp", batched=True) is batched
    plain = pool.session("u2netp")
    assert plain is not batched
    assert pool.batched(plain) is pool.batched(plain)
    remover = Remover(plain, pool=pool)
    frames = [DecodedImage(PHOTO, None, f"frame {i}") for i in range(3)]
    one_by_one = frame_masks(plain, pool, 1).predict(frames, RemoveOptions())
    in_a_batch = frame_masks(plain, pool, 3).predict(frames, RemoveOptions())
    assert [np.asarray(m[0]).tobytes() for m in one_by_one] == [
        np.asarray(m[0]).tobytes() for m in in_a_batch
    ]
    assert remover.pool is pool


def test_every_registered_kind_has_a_row_and_a_session_class() -> None:
    assert {spec.kind for spec in MODELS.values()} <= set(KINDS)
    for kind in KINDS.values():
        assert issubclass(kind.session_class(), alphacut.Session)
    assert [k for k, row in KINDS.items() if row.stateful] == ["recurrent"]
    assert [k for k, row in KINDS.items() if not row.segments] == ["matting"]


def _kind_tests(tree: ast.AST) -> list[int]:
    """Lines comparing some `….kind` of a spec (or `spec.kind`) with anything."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Compare):
            for side in (node.left, *node.comparators):
                if (
                    isinstance(side, ast.Attribute)
                    and side.attr == "kind"
                    and "spec" in ast.unparse(side.value)
                ):
                    found.append(node.lineno)
    return found


@pytest.mark.parametrize("source", ["if spec.kind == 'cloth': pass", "x = s.spec.kind in KINDS"])
def test_the_kind_scan_finds_a_test_of_a_kind(source: str) -> None:
    assert _kind_tests(ast.parse(source)) == [1]


def test_no_module_outside_the_table_tests_a_kind() -> None:
    allowed = {PACKAGE / "models" / "kinds.py", PACKAGE / "models" / "registry.py"}
    found = {
        f"{path.relative_to(PACKAGE)}:{line}"
        for path in PACKAGE.rglob("*.py")
        if path not in allowed
        for line in _kind_tests(ast.parse(path.read_text()))
    }
    assert found == set()
