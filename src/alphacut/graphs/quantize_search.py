"""Measuring an INT8 model against FP32, and searching for the nodes to keep in float.

`evaluate_files` is the honest number: masks at each photo's own size (IoU at alpha >= 128)
and end-to-end `predict_mask` time, FP32 and INT8 interleaved with the same threads.

`search_recipe` is the offline mixed-precision search behind `RECIPES`:

1. quantise everything (but the float head) and run FP32 and INT8 side by side on the
   calibration images, keeping every conv's input and output; a conv's *drop* is the
   signal-to-quantisation-noise ratio (dB) of its input minus that of its output, i.e. how
   much precision that layer loses;
2. take the convs with the largest drops as candidates, each with its *unit*: the nodes
   between it and the convs before it that feed nothing else (for u2netp's Conv_787, the
   Concat, Resize and Relu before it and the Conv_765 they come from), since a tensor stays
   8-bit while any neighbour is quantised;
3. try each candidate unit in float, keep the one that most lowers the mask error on the
   calibration images, and repeat; every kept step is a candidate configuration;
4. time each configuration against FP32 and choose the most accurate one that still
   reaches `min_speedup`.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..metrics import agreement
from .quantize import Progress, QuantRecipe, Workspace
from .quantize_graph import consumer_map, ort_session, require_onnx

if TYPE_CHECKING:
    from PIL import Image

    from ..models.registry import ModelSpec
    from ..models.session import Session

__all__ = [
    "Candidate",
    "Evaluation",
    "Fidelity",
    "SearchResult",
    "evaluate_files",
    "evaluate_sessions",
    "search_recipe",
]

_DQ_SUFFIX = "_DequantizeLinear_Output"


@dataclass(frozen=True)
class Evaluation:
    """INT8 against FP32 on held-out photos. IoU of the masks at alpha >= 128 (1.0 when both
    are empty); mae on 0..1; times are mean milliseconds per `predict_mask` call."""

    images: int
    mean_iou: float
    worst_iou: float
    worst_image: str
    mean_mae: float
    speedup: float
    fp32_ms: float
    int8_ms: float
    threads: int | None
    rounds: int
    per_image: tuple[tuple[str, float], ...] = ()

    def to_json(self) -> str:
        summary = dataclasses.asdict(self)
        summary["per_image"] = {name: round(iou, 4) for name, iou in self.per_image}
        return json.dumps(summary, sort_keys=True)


def evaluate_sessions(
    reference: Session,
    candidate: Session,
    images: Sequence[tuple[str, Image.Image]],
    *,
    rounds: int = 3,
) -> Evaluation:
    """Masks and end-to-end time of `candidate` against `reference` on `images`. Timing is
    interleaved per image, and the order alternates, so both see the same machine load."""
    from ..pipeline.predict import predict_mask

    if not images:
        raise ValueError("no images to evaluate on")
    scores = []
    for name, image in images:
        ours = np.asarray(predict_mask(candidate, image))
        theirs = np.asarray(predict_mask(reference, image))
        scores.append((name, agreement(ours, theirs)))
    spent = {id(reference): 0.0, id(candidate): 0.0}
    for round_index in range(rounds):
        for index, (_, image) in enumerate(images):
            pair = (
                (reference, candidate) if (round_index + index) % 2 == 0 else (candidate, reference)
            )
            for session in pair:
                started = time.perf_counter()
                predict_mask(session, image)
                spent[id(session)] += time.perf_counter() - started
    calls = max(rounds * len(images), 1)
    ious = [score.iou for _, score in scores]
    worst = int(np.argmin(ious))
    return Evaluation(
        images=len(images),
        mean_iou=float(np.mean(ious)),
        worst_iou=ious[worst],
        worst_image=scores[worst][0],
        mean_mae=float(np.mean([score.mae for _, score in scores])),
        speedup=spent[id(reference)] / max(spent[id(candidate)], 1e-9),
        fp32_ms=1000 * spent[id(reference)] / calls,
        int8_ms=1000 * spent[id(candidate)] / calls,
        threads=candidate.runtime.intra_op_threads,
        rounds=rounds,
        per_image=tuple((name, score.iou) for name, score in scores),
    )


def evaluate_files(
    source: Path,
    quantized: Path,
    spec: ModelSpec,
    files: Sequence[Path],
    *,
    threads: int | None = None,
    rounds: int = 3,
) -> Evaluation:
    """`evaluate_sessions` for two model files and a list of photos, on ONNX Runtime."""
    from ..imagefile import decode
    from ..models.session import Session
    from ..options import RuntimeOptions

    runtime = RuntimeOptions(intra_op_threads=threads, backend="onnxruntime")
    reference = Session(spec, source, runtime)
    candidate = Session(spec, quantized, runtime)
    images = [(path.name, decode(path).image) for path in files]
    return evaluate_sessions(reference, candidate, images, rounds=rounds)


@dataclass(frozen=True)
class Fidelity:
    """Masks at the model's input size on the search images: IoU at >= 128 and the mean
    absolute difference `mad` in grey levels (0..255)."""

    mean_iou: float
    worst_iou: float
    mad: float


@dataclass(frozen=True)
class Candidate:
    """One configuration the search kept; speedup is FP32 / INT8 inference time."""

    label: str
    recipe: QuantRecipe
    fidelity: Fidelity
    speedup: float = 0.0


@dataclass(frozen=True)
class SearchResult:
    candidates: tuple[Candidate, ...]
    chosen: QuantRecipe


class _Probe:
    """FP32 reference masks on the search images, and the fidelity of a quantised file."""

    def __init__(self, work: Workspace, tensors: Sequence[np.ndarray]) -> None:
        self.work = work
        self.tensors = list(tensors)
        self.reference = [self._mask(work.float_path, t) for t in self._saliency(work.float_path)]

    def _saliency(self, path: Path) -> list[np.ndarray]:
        onnx = require_onnx()
        session = ort_session(onnx.load(str(path)))
        name = session.get_outputs()[self.work.spec.output_index].name
        return [session.run([name], {self.work.input_name: t})[0] for t in self.tensors]

    def _mask(self, path: Path, saliency: np.ndarray) -> np.ndarray:
        from ..pipeline.mask import saliency_to_mask

        flat = saliency.reshape(saliency.shape[-2:])
        spec = self.work.spec
        return np.asarray(saliency_to_mask(flat, spec, spec.input_size))

    def fidelity(self, path: Path) -> Fidelity:
        masks = [self._mask(path, s) for s in self._saliency(path)]
        scores = [agreement(m, r) for m, r in zip(masks, self.reference, strict=True)]
        ious = [s.iou for s in scores]
        return Fidelity(
            float(np.mean(ious)), float(min(ious)), 255 * float(np.mean([s.mae for s in scores]))
        )


def conv_units(model: Any) -> dict[str, tuple[str, ...]]:
    """For each Conv: itself plus the nodes upstream of it that feed nothing else, up to
    and including the convs that start them (see the module docstring, step 2)."""
    consumers = consumer_map(model.graph)
    nodes = list(model.graph.node)
    units = {}
    for position, conv in enumerate(nodes):
        if conv.op_type != "Conv":
            continue
        members = {conv.name}
        feeds_non_conv = set()
        for node in reversed(nodes[:position]):
            users = [c for output in node.output for c, _ in consumers.get(output, [])]
            if not users or any(u.name not in members for u in users):
                continue
            if not any(u.name == conv.name or u.name in feeds_non_conv for u in users):
                continue
            members.add(node.name)
            if node.op_type != "Conv":
                feeds_non_conv.add(node.name)
        order = {n.name: i for i, n in enumerate(nodes)}
        units[conv.name] = tuple(sorted(members, key=order.__getitem__))
    return units


def _sqnr(pairs: dict[str, list[float]]) -> dict[str, float]:
    return {k: 10 * float(np.log10(max(s, 1e-20) / max(e, 1e-20))) for k, (s, e) in pairs.items()}


def sqnr_drops(work: Workspace, quantized: Path, tensors: Sequence[np.ndarray]) -> dict[str, float]:
    """Per Conv of `quantized` (QDQ): SQNR of its input minus SQNR of its output, in dB,
    against the float model, over `tensors`."""
    onnx = require_onnx()
    fmodel, qmodel = onnx.load(str(work.float_path)), onnx.load(str(quantized))
    qconsumers = consumer_map(qmodel.graph)
    pairs: dict[str, tuple[tuple[str, str], tuple[str, str]]] = {}
    for node in qmodel.graph.node:
        if node.op_type != "Conv":
            continue
        q_in = node.input[0]
        f_in = q_in[: -len(_DQ_SUFFIX)] if q_in.endswith(_DQ_SUFFIX) else q_in
        f_out = q_out = node.output[0]
        users = qconsumers.get(q_out, [])
        if len(users) == 1 and users[0][0].op_type == "QuantizeLinear":
            after = qconsumers.get(users[0][0].output[0], [])
            q_out = after[0][0].output[0] if after else q_out
        pairs[node.name] = ((f_in, q_in), (f_out, q_out))
    skip = work.input_name
    fnames = [n for (fi, _), (fo, _) in pairs.values() for n in (fi, fo) if n != skip]
    qnames = [n for (_, qi), (_, qo) in pairs.values() for n in (qi, qo) if n != skip]
    fsession, qsession = (
        ort_session(fmodel, fnames, plain=True),
        ort_session(qmodel, qnames, plain=True),
    )
    totals: dict[str, list[float]] = {}
    for tensor in tensors:
        feed = {work.input_name: tensor}
        fvalues = dict(
            zip([o.name for o in fsession.get_outputs()], fsession.run(None, feed), strict=True)
        )
        fvalues[work.input_name] = tensor
        qvalues = dict(
            zip([o.name for o in qsession.get_outputs()], qsession.run(None, feed), strict=True)
        )
        qvalues[work.input_name] = tensor
        for conv, ((fi, qi), (fo, qo)) in pairs.items():
            for key, (f, q) in ((conv + "/in", (fi, qi)), (conv + "/out", (fo, qo))):
                reference, got = fvalues[f], qvalues[q]
                if reference.shape != got.shape:
                    continue
                entry = totals.setdefault(key, [0.0, 0.0])
                entry[0] += float(np.mean(reference.astype(np.float64) ** 2))
                entry[1] += float(np.mean((reference.astype(np.float64) - got) ** 2))
    ratios = _sqnr(totals)
    return {
        c: ratios[c + "/in"] - ratios[c + "/out"]
        for c in pairs
        if c + "/in" in ratios and c + "/out" in ratios
    }


def inference_speedup(
    source: Path, quantized: Path, tensor: np.ndarray, *, threads: int | None, repeats: int = 12
) -> float:
    """Median over `repeats` interleaved runs of FP32 time / INT8 time, inference only."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    options.inter_op_num_threads = 1
    if threads:
        options.intra_op_num_threads = threads
    sessions = [
        ort.InferenceSession(str(p), options, providers=["CPUExecutionProvider"])
        for p in (source, quantized)
    ]
    feed = {sessions[0].get_inputs()[0].name: tensor}
    for session in sessions:
        session.run(None, feed)
    ratios = []
    for index in range(repeats):
        spent = [0.0, 0.0]
        for which in (0, 1) if index % 2 == 0 else (1, 0):
            started = time.perf_counter()
            sessions[which].run(None, feed)
            spent[which] = time.perf_counter() - started
        ratios.append(spent[0] / max(spent[1], 1e-9))
    return float(np.median(ratios))


def search_recipe(
    work: Workspace,
    base: QuantRecipe,
    *,
    steps: int = 4,
    breadth: int = 4,
    min_speedup: float = 1.7,
    max_images: int = 16,
    threads: int | None = None,
    progress: Progress | None = None,
) -> SearchResult:
    """Greedy mixed-precision search (module docstring) starting from `base` with no float
    nodes of its own. Returns every kept configuration and the chosen recipe.

    min_speedup: inference-only FP32/INT8 ratio a configuration must reach; above the 1.5x
    end-to-end goal, because prepare and mask time (the same for both) dilute the ratio on
    large photos, and one short timing on a shared machine is noisy."""
    onnx = require_onnx()
    say = progress or (lambda message: None)
    if base.format != "qdq":
        from ..errors import OptionsError

        raise OptionsError("--search needs the qdq format (it reads the Q/DQ tensors)")
    pick = np.linspace(0, len(work.tensors) - 1, min(max_images, len(work.tensors))).round()
    tensors = [work.tensors[int(i)] for i in dict.fromkeys(pick)]
    probe = _Probe(work, tensors)
    units = conv_units(onnx.load(str(work.float_path)))
    head = set(work.head) if base.float_head else set()
    current = dataclasses.replace(base, float_nodes=())
    counter = iter(range(10_000))

    def trial(recipe: QuantRecipe) -> tuple[Path, Fidelity]:
        path = work.folder / f"search-{next(counter)}.onnx"
        work.quantize(recipe, path)
        return path, probe.fidelity(path)

    path, fidelity = trial(current)
    kept = [("all int8" + (" but the head" if head else ""), current, fidelity, path)]
    say(f"search: start  mad {fidelity.mad:.2f}  iou {fidelity.mean_iou:.4f}")
    for step in range(steps):
        drops = sqnr_drops(work, path, tensors[:4])
        ranked = sorted(drops, key=drops.__getitem__, reverse=True)
        chosen_nodes = set(current.float_nodes) | head
        fresh = [c for c in ranked if not set(units.get(c, (c,))) <= chosen_nodes][:breadth]
        best: tuple[str, QuantRecipe, Fidelity, Path] | None = None
        for conv in fresh:
            nodes = tuple(dict.fromkeys([*current.float_nodes, *units.get(conv, (conv,))]))
            recipe = dataclasses.replace(current, float_nodes=nodes)
            trial_path, trial_fidelity = trial(recipe)
            say(
                f"search: step {step + 1}: {conv} (drop {drops[conv]:.1f} dB) -> mad {trial_fidelity.mad:.2f}"
            )
            if best is None or trial_fidelity.mad < best[2].mad:
                best = (conv, recipe, trial_fidelity, trial_path)
        if best is None or best[2].mad > 0.97 * fidelity.mad:
            break
        label, current, fidelity, path = best
        kept.append((f"+ {label} unit", current, fidelity, path))
    candidates = []
    for label, recipe, fid, candidate_path in kept:
        speedup = inference_speedup(work.source, candidate_path, tensors[0], threads=threads)
        candidates.append(Candidate(label, recipe, fid, speedup))
        say(
            f"search: {label:24s} iou {fid.mean_iou:.4f} worst {fid.worst_iou:.3f} mad {fid.mad:.2f} speed-up {speedup:.2f}x"
        )
    fast = [c for c in candidates if c.speedup >= min_speedup] or candidates[:1]
    chosen = min(fast, key=lambda c: c.fidelity.mad)
    return SearchResult(tuple(candidates), chosen.recipe)
