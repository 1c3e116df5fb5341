"""An exact reference for an int8 ONNX model, and how far a session's outputs are from it.

The reference is the model's own graph with each MatMulInteger rewritten as a float64 MatMul of the same integers
(weights and activations with their zero points taken off): what an exact integer kernel computes, on any CPU,
with every other op (the dynamic quantisation of activations included) run by the same onnxruntime kernels.

    python -m tests.int8_reference MODEL [MODEL ...]

prints, as JSON, each model's largest disagreement with its reference (`plain`: the file loaded as it is; `loaded`:
through rag.int8.session; `int8`: the file with its weights stored as int8, today's form before the scheme)
and the weight types this CPU multiplies exactly: tests/test_int8.py runs it under an emulated AVX2-only CPU.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np

# Outputs may differ from the reference where a fused kernel orders a float operation differently (a last-bit
# rounding, which can move one activation by one quantisation step in a later layer); that is far below what
# saturation did (2.6% to 138% of the largest output, README "Quantisation").
TOLERANCE = 1e-3  # of the reference output's largest magnitude, per output


def exact_reference(model_bytes: bytes) -> bytes:
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    model = onnx.load_from_string(model_bytes)
    graph = model.graph
    initializers = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    nodes = []
    for node in graph.node:
        if node.op_type != "MatMulInteger":
            nodes.append(node)
            continue
        a, b, a_zero, b_zero = node.input
        exact_b = initializers[b].astype(np.float64) - initializers[b_zero].astype(np.float64)
        graph.initializer.append(numpy_helper.from_array(exact_b, f"{b}.exact"))
        out = node.output[0]
        nodes += [
            helper.make_node("Cast", [a], [f"{out}.a"], to=TensorProto.DOUBLE),
            helper.make_node("Cast", [a_zero], [f"{out}.a_zero"], to=TensorProto.DOUBLE),
            helper.make_node("Sub", [f"{out}.a", f"{out}.a_zero"], [f"{out}.a_centred"]),
            helper.make_node("MatMul", [f"{out}.a_centred", f"{b}.exact"], [f"{out}.exact"]),
            helper.make_node("Cast", [f"{out}.exact"], [out], to=TensorProto.INT32),
        ]
    del graph.node[:]
    graph.node.extend(nodes)
    used = {name for n in graph.node for name in n.input}
    kept = [t for t in graph.initializer if t.name in used]
    del graph.initializer[:]
    graph.initializer.extend(kept)
    return bytes(model.SerializeToString())


FEEDS = ((0, 48), (1, 96))  # (seed, word pieces)


def int8_form(model_bytes: bytes) -> bytes:
    """The model with its MatMulInteger weights and zero points stored as int8 (q, zero point 0), as every model
    was before rag/int8.py: the same integers."""
    import onnx
    from onnx import numpy_helper

    model = onnx.load_from_string(model_bytes)
    weights = {n.input[i] for n in model.graph.node if n.op_type == "MatMulInteger" for i in (1, 3)}
    for tensor in model.graph.initializer:
        values = numpy_helper.to_array(tensor)
        if tensor.name in weights and values.dtype == np.uint8:
            signed = (values.astype(np.int16) - 128).astype(np.int8)
            tensor.CopyFrom(numpy_helper.from_array(signed, tensor.name))
    return bytes(model.SerializeToString())


def fixed_feeds(session: Any, count: int = len(FEEDS)) -> list[dict[str, np.ndarray]]:
    """Seeded inputs: word-piece ids of the vocabulary's middle (real words), one pair read as the reader reads."""
    names = {i.name for i in session.get_inputs()}
    feeds = []
    for seed, width in FEEDS[:count]:
        ids = np.random.default_rng(seed).integers(1000, 29000, (1, width)).astype(np.int64)
        ids[0, 0], ids[0, width // 3], ids[0, -1] = 101, 102, 102
        types = np.zeros_like(ids)
        types[0, width // 3 + 1:] = 1
        feed = {"input_ids": ids, "attention_mask": np.ones_like(ids), "token_type_ids": types}
        feeds.append({k: v for k, v in feed.items() if k in names})
    return feeds


def options() -> Any:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    opts.intra_op_num_threads = 1
    return opts


def disagreement(session: Any, reference: Any, feeds: int = len(FEEDS)) -> float:
    """The largest |output - reference|, as a share of the reference output's largest magnitude."""
    worst = 0.0
    for feed in fixed_feeds(reference, feeds):
        for got, want in zip(session.run(None, feed), reference.run(None, feed), strict=True):
            worst = max(worst, float(np.max(np.abs(got - want)) / max(float(np.max(np.abs(want))), 1e-12)))
    return worst


def measure(path: Path, feeds: int = len(FEEDS)) -> dict[str, float]:
    import onnxruntime as ort

    from rag import int8

    data = path.read_bytes()
    reference = ort.InferenceSession(exact_reference(data), options(), providers=["CPUExecutionProvider"])
    signed = int8_form(data)
    return {
        "plain": disagreement(ort.InferenceSession(str(path), options(), providers=["CPUExecutionProvider"]),
                              reference, feeds),
        "loaded": disagreement(int8.session(path, options()), reference, feeds),
        "int8": disagreement(ort.InferenceSession(bytes(signed), options(), providers=["CPUExecutionProvider"]),
                             reference, feeds),
    }


def main(argv: list[str] | None = None) -> int:
    from rag import int8

    parser = argparse.ArgumentParser(prog="python -m tests.int8_reference")
    parser.add_argument("models", nargs="+", type=Path)
    parser.add_argument("--feeds", type=int, default=len(FEEDS), help="how many of the fixed inputs to read")
    args = parser.parse_args(argv)
    print(json.dumps({"exact_kernels": sorted(int8.exact_kernels()),
                      "models": {str(p): measure(p, args.feeds) for p in args.models}}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
