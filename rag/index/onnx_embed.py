"""Sentence-transformers models through ONNX Runtime, int8-quantised.

The model is exported once with torch.onnx (no optimum: it pins transformers<4.58) and
quantised with onnxruntime.quantization (dynamic int8 weights, stored as uint8: rag/int8.py), into a cache folder. After that, encoding
imports only onnxruntime, tokenizers and numpy, not torch. That is most of the start-up time saved.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
import threading
from pathlib import Path
from typing import Any

from rag import int8
from rag.errors import ConfigError

ONNX_FILE = "model.int8.onnx"
log = logging.getLogger(__name__)
_EXPORT_LOCK = threading.Lock()


class OnnxEncoder:
    """Unit-length sentence vectors from an int8 ONNX export of a sentence-transformers model folder."""

    def __init__(self, model_path: str, cache_dir: Path, threads: int = 0, max_tokens: int = 0,
                 onnx_path: Path | None = None, memory_arena: bool = False) -> None:
        """`onnx_path`: an exported file to run (a committed model, rag/index/small_embed.py); else the folder's
        model is exported into `cache_dir` on first use. `memory_arena`: keep ONNX Runtime's memory arena and
        patterns, faster where the inputs' size is small and bounded (see below)."""
        import numpy as np  # noqa: F401  (fail early where numpy is missing)
        import onnxruntime as ort
        from tokenizers import Tokenizer

        folder = Path(model_path)
        if not (folder / "tokenizer.json").is_file():
            raise ConfigError(f"the ONNX backend needs a local sentence-transformers folder with tokenizer.json; "
                              f"{model_path!r} has none (set RAG_EMBED_BACKEND=torch)")
        self.onnx_path = onnx_path or export(folder, cache_dir)
        config = _read_json(folder / "sentence_bert_config.json")
        pooling = _read_json(folder / "1_Pooling" / "config.json")
        self.cls_pooling = bool(pooling.get("pooling_mode_cls_token"))
        self.max_tokens = int(config.get("max_seq_length") or 256)
        if max_tokens:
            self.max_tokens = min(self.max_tokens, max_tokens)
        self.tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        self.tokenizer.enable_truncation(self.max_tokens)
        self.tokenizer.no_padding()
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads or min(4, os.cpu_count() or 1)
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        # Inputs change shape with every batch: an arena sized for the largest one and per-shape memory
        # patterns only hold memory; without them RSS stays flat over a long run. A model reading few word pieces
        # (the small chunk encoder's 64) keeps them: its largest batch is small.
        options.enable_cpu_mem_arena = memory_arena
        options.enable_mem_pattern = memory_arena
        # Its threads sleep between runs instead of spinning, as the reading models' do (rag/reading/trained.py): a
        # question's sentences are embedded and then read by those models on the same cores, which spinning threads
        # kept busy. 100k chunks, 200 questions (bench.scale): query p50 95-104 -> 74-79 ms, p95 134-145 -> 114-118.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.session = int8.session(self.onnx_path, options)
        self.inputs = {i.name for i in self.session.get_inputs()}
        self.dimension = int(self.encode(["dimension"]).shape[1])

    def encode(self, texts: list[str], batch_size: int = 16) -> Any:
        """Vectors in the order of `texts`; batches are formed from texts of similar length (less padding).
        Small batches run faster here: 16 chunks of ~140 word pieces ran at 74 chunks/s, 64 at 35 (2 cores)."""
        import numpy as np

        encodings = self.tokenizer.encode_batch(texts)
        order = sorted(range(len(texts)), key=lambda i: len(encodings[i].ids))
        out = np.zeros((len(texts), 0), dtype=np.float32)
        for start in range(0, len(order), batch_size):
            chunk = order[start:start + batch_size]
            width = max(len(encodings[i].ids) for i in chunk)
            ids = np.zeros((len(chunk), width), dtype=np.int64)
            mask = np.zeros((len(chunk), width), dtype=np.int64)
            for row, i in enumerate(chunk):
                n = len(encodings[i].ids)
                ids[row, :n] = encodings[i].ids
                mask[row, :n] = 1
            feed = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
            hidden = self.session.run(None, {k: v for k, v in feed.items() if k in self.inputs})[0]
            if self.cls_pooling:
                pooled = hidden[:, 0]
            else:
                weights = mask[..., None].astype(np.float32)
                pooled = (hidden * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), 1e-9)
            pooled = pooled / np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)
            if out.shape[1] == 0:
                out = np.zeros((len(texts), pooled.shape[1]), dtype=np.float32)
            out[chunk] = pooled
        return out


def export(model_folder: Path, cache_dir: Path) -> Path:
    """The int8 ONNX file for this model folder, kept in `cache_dir` (the index's). It is exported and quantised
    once per machine (a few seconds) into the user cache ($XDG_CACHE_HOME or ~/.cache, news-rag/onnx), and
    linked or copied from there into each index."""
    name = cache_name(model_folder)
    target = cache_dir / name / ONNX_FILE
    if target.is_file():
        return target
    shared = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "news-rag" / "onnx" / name / ONNX_FILE
    with _EXPORT_LOCK:
        if not shared.is_file():
            _export_int8(model_folder, shared)
        partial = target.with_name(f"{ONNX_FILE}.{os.getpid()}.part")
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            try:
                os.link(shared, partial)
            except OSError:  # another filesystem
                shutil.copyfile(shared, partial)
            partial.replace(target)
        except OSError as exc:  # a full disk or a read-only index: the machine's copy serves as well
            partial.unlink(missing_ok=True)
            log.warning("could not place the ONNX model in %s (%s); using %s", target.parent, exc, shared)
            return shared
    return target


def cache_name(model_folder: Path) -> str:
    """The export's folder name: the model folder, its weights' size and the weight scheme, so that a file
    quantised another way (one that saturated on some CPUs) is never reused."""
    weights = next((model_folder / n for n in ("model.safetensors", "pytorch_model.bin")
                    if (model_folder / n).is_file()), None)
    stamp = f"{model_folder.resolve()}:{weights.stat().st_size if weights else 0}:{int8.WEIGHT_SCHEME}"
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "-", model_folder.name)[:40]
    return f"{slug}-{hashlib.sha256(stamp.encode()).hexdigest()[:12]}"


def _export_int8(model_folder: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    full = target.with_name(f"model.fp32.{os.getpid()}.onnx")
    partial = target.with_name(f"{ONNX_FILE}.{os.getpid()}.part")
    try:
        _export_fp32(model_folder, full)
        from onnxruntime.quantization import QuantType, quantize_dynamic

        root = logging.getLogger()
        level = root.level
        root.setLevel(logging.ERROR)  # quantize_dynamic warns on the root logger about optional pre-processing
        try:
            quantize_dynamic(str(full), str(partial), weight_type=QuantType.QInt8, per_channel=True)
        finally:
            root.setLevel(level)
        int8.store_uint8_file(partial)
        partial.replace(target)  # atomic: a reader sees the whole file or none
    except Exception as exc:
        raise ConfigError(f"exporting {model_folder} to ONNX failed ({exc}); set RAG_EMBED_BACKEND=torch") from exc
    finally:
        full.unlink(missing_ok=True)
        partial.unlink(missing_ok=True)


def _export_fp32(model_folder: Path, path: Path) -> None:
    import warnings

    import torch
    from transformers import AutoModel, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    tokenizer = AutoTokenizer.from_pretrained(str(model_folder))
    model = AutoModel.from_pretrained(str(model_folder)).eval()

    class Encoder(torch.nn.Module):
        def __init__(self, inner: Any) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any) -> Any:
            return self.inner(input_ids=input_ids, attention_mask=attention_mask,
                              token_type_ids=token_type_ids).last_hidden_state

    sample = tokenizer(["an example sentence", "another, somewhat longer example sentence"], padding=True,
                       return_tensors="pt")
    token_type_ids = sample.get("token_type_ids", torch.zeros_like(sample["input_ids"]))
    axes = {0: "batch", 1: "tokens"}
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(Encoder(model), (sample["input_ids"], sample["attention_mask"], token_type_ids), str(path),
                          input_names=["input_ids", "attention_mask", "token_type_ids"],
                          output_names=["last_hidden_state"],
                          dynamic_axes={"input_ids": axes, "attention_mask": axes, "token_type_ids": axes,
                                        "last_hidden_state": axes},
                          opset_version=17, dynamo=False)


def _read_json(path: Path) -> dict[str, Any]:
    try:
        return dict(json.loads(path.read_text()))
    except (OSError, ValueError):
        return {}
