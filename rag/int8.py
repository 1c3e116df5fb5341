"""int8 ONNX models that compute the same integers on every CPU.

Our models multiply uint8 activations by int8 weights (`MatMulInteger`). Where onnxruntime's u8 x s8 kernel adds
pairs of products in 16 bits with saturation (x86-64 with AVX2 or AVX-512 but no VNNI), large activations meeting
large weights are clipped, and answers change from one CPU to the next. The scheme (`WEIGHT_SCHEME`):

- the models are written with their weights stored as uint8 (the int8 weight q as q + 128, zero point 128), which
  onnxruntime multiplies by widening to 16 bits first: exact on every CPU, whoever loads the file;
- `session()` loads a model so: where this CPU's u8 x s8 kernel is exact (`exact_kernels()` probes it once), the
  weights are handed to onnxruntime as int8 in place of the file's, the same integers through the faster kernel
  (VNNI); elsewhere the file runs as it is.

The weights are read from the file's protobuf bytes (a weight's uint8 and int8 forms are the same byte with its top
bit flipped), not through the `onnx` package, whose import costs about half a second.
"""

from __future__ import annotations

import functools
import logging
import mmap
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rag.errors import ConfigError

log = logging.getLogger(__name__)

WEIGHT_SCHEME = "u8u8"  # named in the export cache's key (rag/index/onnx_embed.py) and the model cards

INT8, UINT8 = 3, 2  # onnx.TensorProto.DataType
_MODEL_GRAPH, _GRAPH_NODE, _GRAPH_INITIALIZER = 7, 1, 5
_NODE_INPUT, _NODE_OP_TYPE = 1, 4
_TENSOR_DIMS, _TENSOR_DATA_TYPE, _TENSOR_NAME, _TENSOR_RAW_DATA = 1, 2, 8, 9
_TENSOR_TYPED_DATA = (4, 5, 6, 7, 10, 11, 13)  # float, int32, string, int64, double, uint64, external


@dataclass(frozen=True)
class _Tensor:
    name: str
    data_type: int
    dims: tuple[int, ...]
    raw: tuple[int, int] | None  # [start, end) of raw_data, None when the values sit in a typed field


class ModelFormatError(ValueError):
    """The bytes are not an ONNX model this module can read."""


Buffer = bytes | bytearray | mmap.mmap


def _varint(buf: Buffer, pos: int) -> tuple[int, int]:
    value, shift = 0, 0
    while True:
        if pos >= len(buf):
            raise ModelFormatError("truncated varint")
        byte = buf[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, pos
        shift += 7


def _fields(buf: Buffer, start: int, end: int) -> Iterator[tuple[int, int, int, int]]:
    """(field number, wire type, start, end) of each field of the message in buf[start:end]; a varint field's
    value is read with `_varint(buf, start)`."""
    pos = start
    while pos < end:
        key, pos = _varint(buf, pos)
        field, wire = key >> 3, key & 7
        if wire == 0:
            _, after = _varint(buf, pos)
        elif wire == 1:
            after = pos + 8
        elif wire == 2:
            length, pos = _varint(buf, pos)
            after = pos + length
        elif wire == 5:
            after = pos + 4
        else:
            raise ModelFormatError(f"wire type {wire} at byte {pos}")
        if after > end:
            raise ModelFormatError("a field runs past its message")
        yield field, wire, pos, after
        pos = after


def _tensor(buf: Buffer, start: int, end: int) -> _Tensor:
    name, data_type, dims, raw, typed = "", 0, [], None, False
    for field, wire, s, e in _fields(buf, start, end):
        if field == _TENSOR_NAME and wire == 2:
            name = bytes(buf[s:e]).decode()
        elif field == _TENSOR_DATA_TYPE and wire == 0:
            data_type = _varint(buf, s)[0]
        elif field == _TENSOR_DIMS and wire == 0:
            dims.append(_varint(buf, s)[0])
        elif field == _TENSOR_DIMS and wire == 2:  # packed
            pos = s
            while pos < e:
                dim, pos = _varint(buf, pos)
                dims.append(dim)
        elif field == _TENSOR_RAW_DATA and wire == 2:
            raw = (s, e)
        elif field in _TENSOR_TYPED_DATA:
            typed = True
    return _Tensor(name, data_type, tuple(dims), None if typed else raw)


def _matmul_weights(buf: Buffer) -> tuple[dict[str, _Tensor], set[str], bool]:
    """The initializers read by MatMulInteger as weights or weight zero points, the names read by any other
    input slot or op, and whether every MatMulInteger has both as initializers."""
    graph = next(((s, e) for f, w, s, e in _fields(buf, 0, len(buf)) if f == _MODEL_GRAPH and w == 2), None)
    if graph is None:
        raise ModelFormatError("no graph")
    weights: set[str] = set()
    other_uses: set[str] = set()
    complete = True
    initializers: dict[str, tuple[int, int]] = {}
    for field, wire, start, end in _fields(buf, *graph):
        if field == _GRAPH_NODE and wire == 2:
            inputs: list[str] = []
            op_type = ""
            for f, w, s, e in _fields(buf, start, end):
                if f == _NODE_INPUT and w == 2:
                    inputs.append(bytes(buf[s:e]).decode())
                elif f == _NODE_OP_TYPE and w == 2:
                    op_type = bytes(buf[s:e]).decode()
            if op_type == "MatMulInteger":
                complete &= len(inputs) == 4 and all(inputs)
                weights |= {inputs[i] for i in (1, 3) if i < len(inputs)}
                other_uses |= {name for i, name in enumerate(inputs) if i not in (1, 3)}
            else:
                other_uses |= set(inputs)
        elif field == _GRAPH_INITIALIZER and wire == 2:
            name = next((bytes(buf[s:e]).decode() for f, w, s, e in _fields(buf, start, end)
                         if f == _TENSOR_NAME and w == 2), "")
            initializers[name] = (start, end)
    found = {name: _tensor(buf, *initializers[name]) for name in weights if name in initializers}
    complete &= len(found) == len(weights)
    return found, other_uses, complete


def weight_types(buf: Buffer) -> set[int]:
    """The element types of the MatMulInteger weights in a serialized model (INT8, UINT8)."""
    return {t.data_type for t in _matmul_weights(buf)[0].values()}


def weights_as(buf: Buffer, data_type: int) -> dict[str, Any] | None:
    """Every MatMulInteger weight and weight zero point of a serialized model as a numpy array of `data_type`
    (INT8 or UINT8): the same integers once the zero point is taken off (q + 128 as uint8 is q as int8 with its top
    bit flipped). None where the model does not allow it (a weight without its zero point, values outside
    raw_data, a weight another op also reads)."""
    import numpy as np

    tensors, other_uses, complete = _matmul_weights(buf)
    if not complete or other_uses & tensors.keys():
        return None
    if any(t.raw is None or t.data_type not in (INT8, UINT8) for t in tensors.values()):
        return None
    out = {}
    for t in tensors.values():
        assert t.raw is not None
        values = np.frombuffer(buf[t.raw[0]:t.raw[1]], dtype=np.uint8)
        if t.data_type != data_type:
            values = values ^ np.uint8(0x80)
        out[t.name] = values.view(np.int8 if data_type == INT8 else np.uint8).reshape(t.dims)
    return out


def store_uint8_weights(model: Any) -> int:
    """Store an onnx.ModelProto's MatMulInteger weights and their zero points as uint8 raw data (q + 128), in
    place: how export writes every model (exact on every CPU as it stands). Returns how many tensors changed."""
    import numpy as np
    from onnx import numpy_helper

    graph = model.graph
    weights = {n.input[i] for n in graph.node if n.op_type == "MatMulInteger" for i in (1, 3) if i < len(n.input)}
    if any(n.op_type == "MatMulInteger" and (len(n.input) < 4 or not n.input[3]) for n in graph.node):
        raise ValueError("a MatMulInteger without a weight zero point: its weights cannot be stored as uint8")
    changed = 0
    for tensor in graph.initializer:
        if tensor.name not in weights:
            continue
        values = numpy_helper.to_array(tensor)
        if values.dtype == np.int8:
            values = (values.astype(np.int16) + 128).astype(np.uint8)
            changed += 1
        elif values.dtype != np.uint8:
            raise ValueError(f"{tensor.name}: MatMulInteger weights of type {values.dtype}")
        tensor.CopyFrom(numpy_helper.from_array(np.ascontiguousarray(values), tensor.name))
    return changed


def store_uint8_file(path: Path) -> int:
    """`store_uint8_weights` on the model file at `path`, rewritten in place (atomically)."""
    import onnx

    model = onnx.load(str(path))
    changed = store_uint8_weights(model)
    partial = path.with_name(path.name + ".uint8")
    onnx.save(model, str(partial))
    partial.replace(path)
    return changed


@functools.cache
def exact_kernels() -> frozenset[int]:
    """The weight types (INT8, UINT8) whose MatMulInteger this onnxruntime computes exactly on this CPU, probed
    once: uint8 activations of 255 against weights of the type's extremes, where one saturated pair shows."""
    import numpy as np
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    options.intra_op_num_threads = 1
    exact = set()
    for data_type, values in ((INT8, (127, -128)), (UINT8, (255, 255))):
        weights = np.resize(np.array(values, dtype=np.int8 if data_type == INT8 else np.uint8), (_PROBE_K, _PROBE_N))
        session = ort.InferenceSession(_probe_model(data_type, weights.tobytes()), options,
                                       providers=["CPUExecutionProvider"])
        right = True
        for rows in (1, 4):  # one row and several may take different kernels
            activations = np.full((rows, _PROBE_K), 255, dtype=np.uint8)
            got = session.run(None, {"a": activations})[0]
            right &= bool(np.array_equal(got, activations.astype(np.int64) @ weights.astype(np.int64)))
        if right:
            exact.add(data_type)
    return frozenset(exact)


def preferred_weight_type() -> int | None:
    """INT8 where its kernel is exact here (the faster one where both are), else UINT8, else None."""
    exact = exact_kernels()
    return INT8 if INT8 in exact else UINT8 if UINT8 in exact else None


def session(path: Path, options: Any) -> Any:
    """An onnxruntime CPU session of the model at `path`, its int8 weights in the form this CPU computes exactly
    (and fastest). `options` (an ort.SessionOptions) is given the weights that replace the file's."""
    import onnxruntime as ort

    if path.stat().st_size == 0:
        raise ConfigError(f"the model {path} is an empty file")
    want = preferred_weight_type()
    replaced: dict[str, Any] = {}
    with path.open("rb") as file, mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ) as data:
        try:
            types = weight_types(data)
            weights = weights_as(data, want) if types and want is not None and types != {want} else None
        except ModelFormatError as exc:
            raise ConfigError(f"the model {path} is not an ONNX file this version can read ({exc})") from exc
    for name, values in (weights or {}).items():
        replaced[name] = ort.OrtValue.ortvalue_from_numpy(values)
        options.add_initializer(name, replaced[name])
    if not replaced and types - exact_kernels():
        log.warning("%s holds int8 weights that onnxruntime does not multiply exactly on this CPU, so its outputs "
                    "may differ from other CPUs'; store them as uint8: python -m evals.int8_weights %s", path, path)
    model = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    model.rag_replaced_weights = replaced  # onnxruntime reads them in place: they must live as long as the session
    return model


# The probe: one MatMulInteger of a [rows, K] uint8 input by a constant [K, N] weight, written as protobuf by hand.
_PROBE_K, _PROBE_N = 64, 16


def _probe_model(data_type: int, weights: bytes) -> bytes:
    def varint(value: int) -> bytes:
        out = bytearray()
        while True:
            byte, value = value & 0x7F, value >> 7
            out.append(byte | (0x80 if value else 0))
            if not value:
                return bytes(out)

    def field(number: int, payload: bytes | int | str) -> bytes:
        if isinstance(payload, int):
            return varint(number << 3) + varint(payload)
        data = payload.encode() if isinstance(payload, str) else payload
        return varint(number << 3 | 2) + varint(len(data)) + data

    def tensor(name: str, dims: tuple[int, ...], kind: int, raw: bytes) -> bytes:
        return b"".join(field(1, d) for d in dims) + field(2, kind) + field(8, name) + field(9, raw)

    def value_info(name: str, kind: int, dims: tuple[int | str, ...]) -> bytes:
        shape = b"".join(field(1, field(1, d) if isinstance(d, int) else field(2, d)) for d in dims)
        return field(1, name) + field(2, field(1, field(1, kind) + field(2, shape)))

    int32 = 6
    node = field(1, "a") + field(1, "b") + field(1, "a_zero") + field(1, "b_zero") + field(2, "y") + field(
        4, "MatMulInteger")
    graph = (field(1, node) + field(2, "probe")
             + field(5, tensor("b", (_PROBE_K, _PROBE_N), data_type, weights))
             + field(5, tensor("a_zero", (), UINT8, b"\x00"))
             + field(5, tensor("b_zero", (_PROBE_N,), data_type, bytes(_PROBE_N)))
             + field(11, value_info("a", UINT8, ("rows", _PROBE_K)))
             + field(12, value_info("y", int32, ("rows", _PROBE_N))))
    return field(1, 8) + field(8, field(1, "") + field(2, 13)) + field(7, graph)
