"""The int8 models compute the same on every CPU: each agrees with an exact reference of its own graph, here and on
an emulated AVX2-only CPU (whose u8 x s8 kernel saturates), and their weights are stored in the form that makes it
so (rag/int8.py)."""

from __future__ import annotations

import json
import platform
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import numpy_helper

from rag import int8
from rag.errors import ConfigError
from rag.index.embed import resolve_model_path
from rag.index.onnx_embed import cache_name, export
from tests.conftest import REPO
from tests.int8_reference import TOLERANCE, disagreement, exact_reference, int8_form, measure, options

COMMITTED = [REPO / "models" / "reader" / "reader.int8.onnx", REPO / "models" / "span" / "reader.int8.onnx",
             REPO / "models" / "small-encoder" / "model.int8.onnx"]


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """The three committed models and the all-MiniLM-L6-v2 encoder as this machine exports it."""
    return [*COMMITTED, export(Path(resolve_model_path("")), tmp_path_factory.mktemp("onnx"))]


def test_every_model_stores_its_weights_as_uint8(models: list[Path]) -> None:
    for path in models:
        data = path.read_bytes()
        assert int8.weight_types(data) == {int8.UINT8}, path
        assert int8.weights_as(data, int8.INT8) is not None, f"{path}: its weights cannot be handed over as int8"


@pytest.mark.parametrize("index", range(4), ids=["reader", "span", "small-encoder", "minilm-export"])
def test_each_model_agrees_with_an_exact_reference_of_its_graph(models: list[Path], index: int) -> None:
    """On this CPU, loaded as it is and through rag.int8.session (which may store its weights as int8 here)."""
    found = measure(models[index])
    assert found["plain"] <= TOLERANCE and found["loaded"] <= TOLERANCE, found


@pytest.mark.slow
@pytest.mark.skipif(platform.machine() not in ("x86_64", "AMD64"), reason="the x86-64 kernels are what is checked")
def test_the_models_agree_with_their_reference_on_an_avx2_only_cpu(models: list[Path]) -> None:
    """Under qemu's Haswell (AVX2 and FMA, no AVX-512, no VNNI): the probe sees the u8 x s8 kernel saturate, the
    models agree with their references as committed and as loaded, and the same models with int8 weights (the form
    of every model before rag/int8.py) do not: the check catches what it is for."""
    qemu = shutil.which("qemu-x86_64")
    assert qemu, "qemu-x86_64 is missing: `make test` installs Debian's qemu-user"

    def run(paths: list[Path]) -> dict:
        done = subprocess.run([qemu, "-cpu", "Haswell", sys.executable, "-m", "tests.int8_reference", "--feeds", "1",
                               *map(str, paths)], cwd=REPO, capture_output=True, text=True, timeout=900)
        assert done.returncode == 0, done.stderr[-3000:]
        return dict(json.loads(done.stdout.strip().splitlines()[-1]))

    with ThreadPoolExecutor(2) as pool:  # one process a core
        halves = list(pool.map(run, [models[::2], models[1::2]]))
    assert all(h["exact_kernels"] == [int8.UINT8] for h in halves), halves
    found = {**halves[0]["models"], **halves[1]["models"]}
    for path, figures in found.items():
        assert figures["plain"] <= TOLERANCE and figures["loaded"] <= TOLERANCE, (path, figures)
        assert figures["int8"] > 10 * TOLERANCE, (path, figures)


def test_this_cpu_multiplies_uint8_weights_exactly() -> None:
    """u8 x u8 widens to 16 bits before it multiplies, on every x86-64 and ARM kernel of onnxruntime; the probe's
    model is a valid ONNX graph."""
    assert int8.UINT8 in int8.exact_kernels()
    onnx.checker.check_model(onnx.load_from_string(int8._probe_model(int8.INT8, bytes(64 * 16))), full_check=True)


def test_the_weights_handed_over_are_the_same_integers_in_either_form() -> None:
    """rag.int8.weights_as reads the file's bytes as onnx reads the tensors: uint8 weights as int8 and back."""
    committed = COMMITTED[2].read_bytes()
    signed = int8_form(committed)
    graph = onnx.load_from_string(committed).graph
    stored = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    as_int8, as_uint8 = int8.weights_as(committed, int8.INT8), int8.weights_as(signed, int8.UINT8)
    assert as_int8 is not None and as_uint8 is not None and as_int8.keys() == as_uint8.keys()
    for name, values in as_int8.items():
        assert values.dtype == np.int8 and values.shape == stored[name].shape
        assert np.array_equal(values.astype(np.int16) + 128, stored[name]) and np.array_equal(as_uint8[name],
                                                                                              stored[name])
    assert int8.weights_as(committed, int8.UINT8) is not None  # already so: the same arrays
    assert len(as_int8) == 24 and {n.input[3] for n in graph.node if n.op_type == "MatMulInteger"} <= as_int8.keys()


def test_a_model_that_is_not_onnx_is_a_clear_error(tmp_path: Path) -> None:
    for content in (b"", b"\x0a\xff\xff\xff"):
        bad = tmp_path / "model.onnx"
        bad.write_bytes(content)
        with pytest.raises(ConfigError, match="model"):
            int8.session(bad, options())


def test_a_model_quantised_the_old_way_is_stored_as_uint8_by_the_command(tmp_path: Path) -> None:
    """An int8 export of before (zero points in int32_data, which cannot be flipped in place): the loader leaves it
    as it is, and `python -m evals.int8_weights` stores it in the scheme's form, computing the same integers."""
    old = tmp_path / "old.onnx"
    model = onnx.load(str(COMMITTED[2]))
    for tensor in model.graph.initializer:
        values = numpy_helper.to_array(tensor)
        if values.dtype == np.uint8:
            signed = (values.astype(np.int16) - 128).astype(np.int8)
            tensor.CopyFrom(onnx.helper.make_tensor(tensor.name, onnx.TensorProto.INT8, signed.shape,
                                                    signed.flatten().tolist()))
    onnx.save(model, str(old))
    assert int8.weights_as(old.read_bytes(), int8.UINT8) is None
    done = subprocess.run([sys.executable, "-m", "evals.int8_weights", str(old)], cwd=REPO, capture_output=True,
                          text=True, check=True)
    assert "24 int8 weight tensors stored as uint8" in done.stdout
    assert int8.weight_types(old.read_bytes()) == {int8.UINT8}
    reference = ort.InferenceSession(exact_reference(COMMITTED[2].read_bytes()), options(),
                                     providers=["CPUExecutionProvider"])
    assert disagreement(int8.session(old, options()), reference) <= TOLERANCE


def test_the_export_cache_is_keyed_by_the_weight_scheme(monkeypatch: pytest.MonkeyPatch) -> None:
    folder = Path(resolve_model_path(""))
    before = cache_name(folder)
    monkeypatch.setattr(int8, "WEIGHT_SCHEME", "another")
    assert cache_name(folder) != before
