"""Facts about the machine that several parts size themselves by."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = [
    "cache_home",
    "cpu_flag_line",
    "cpu_flags",
    "int8_dot_product",
    "thread_share",
    "usable_cores",
]


def usable_cores() -> int:
    """Cores this process may run on (its CPU affinity, which containers restrict)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not on Linux
        return max(1, os.cpu_count() or 1)


def thread_share(workers: int) -> int:
    """Inference threads for each of `workers` runs side by side, so that together they fill
    this process's cores without oversubscribing them (at least one each)."""
    return max(1, usable_cores() // max(1, workers))


def cpu_flag_line() -> str:
    """The CPU's feature flags as Linux lists them, in its order ("" where it does not)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as info:
            for line in info:
                if line.startswith(("flags", "Features")):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return ""


def cpu_flags() -> frozenset[str]:
    """The CPU's feature flags as a set (empty where Linux does not list them)."""
    return frozenset(cpu_flag_line().split())


# oneDNN (inside OpenVINO) caps its instruction set at $ONEDNN_MAX_CPU_ISA; these caps leave
# out every 8-bit dot-product instruction.
_CAPS_WITHOUT_INT8_DOT = frozenset({"SSE41", "AVX", "AVX2", "AVX512_CORE"})


def int8_dot_product() -> bool:
    """Whether this x86 CPU multiplies and sums 8-bit integers in one instruction (VNNI or
    AMX), as oneDNN may use it. Without one, oneDNN sums pairs of 8-bit products in
    saturating 16-bit lanes: slower than float32, and it clips large sums, which ruins
    U²-Net's masks (measured: mean IoU 0.83, worst 0.18)."""
    cap = os.environ.get("ONEDNN_MAX_CPU_ISA") or os.environ.get("DNNL_MAX_CPU_ISA") or ""
    if cap.upper() in _CAPS_WITHOUT_INT8_DOT:
        return False
    return bool(cpu_flags() & {"avx512_vnni", "avx_vnni", "amx_int8"})


def cache_home() -> Path:
    """alphacut's own cache and state: $ALPHACUT_CACHE_DIR, else $XDG_CACHE_HOME/alphacut,
    else ~/.cache/alphacut (models live apart, in the cache rembg shares)."""
    own = os.environ.get("ALPHACUT_CACHE_DIR")
    if own:
        return Path(own).expanduser()
    return Path(os.environ.get("XDG_CACHE_HOME") or "~/.cache").expanduser() / "alphacut"
