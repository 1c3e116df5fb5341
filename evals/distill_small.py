"""Distil the small chunk encoder (rag/index/small_embed.py): the bundled all-MiniLM-L6-v2 cut to two of its six
layers, reading a chunk's first word pieces, trained to reproduce the whole model's vector of the same chunk.

What ingestion embeds only has to bring candidate chunks into the pool, and the question is still embedded by the
whole model (the sentence re-ranker embeds it anyway). So the chunk side can be a smaller network, trained to land
where the whole model puts the chunk: a student of the `--layers` it keeps, reading `--max-tokens` word pieces, its mean
pooled output regressed on the whole model's vector of the chunk as ingestion embeds it today (the int8 ONNX
export reading 128 word pieces of "title\\nchunk text").

1. SQuAD 1.1 train's articles (every 20th by title held out, as for the static table and the reader), chunked by the
   project's own chunker (`--chunkings`: 160 tokens with one sentence of overlap, as ingestion chunks, and three
   other sizes and overlaps); each chunk's text as ingestion embeds it, each text once.
2. Targets: the whole model's vectors of those texts (cached in the checkpoint folder).
3. The student: the bundled model with only `--layers` (its first and last by default), trained on 1 - cos(student, target) with AdamW,
   bf16 autocast on CPU, seeded; a checkpoint every `--checkpoint-steps` steps so an interrupted run resumes.
4. Export: int8 ONNX (rag/index/onnx_embed.py's export) with the tokenizer and pooling config into `--out`, and
   `small.json` with the model id, the command, the commit and the figures.
5. Held-out figures: on the held-out articles, each question (whole-model vector) -> its paragraph among the
   paragraphs of the held-out articles, recall at 1 and 5, with the paragraphs embedded by the student, by the
   whole model at 128 and at the student's word pieces; and the mean cosine of student and target.

Trained only on SQuAD 1.1 train (CC BY-SA 4.0, Rajpurkar et al. 2016): its paragraphs' text, no labels.

    python -m evals.distill_small --out models/small-encoder        # about an hour on 2 cores
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from evals.distill_static import SQUAD11, _articles, _git_commit, recall

TARGET_MAX_TOKENS = 128  # what the whole model reads of a chunk at ingestion today (Settings.embed_max_tokens)


def chunk_texts(articles: list[dict[str, Any]], max_tokens: int = 160, overlap: int = 1) -> list[str]:
    """Each article's chunks as ingestion embeds them: the title, a newline, the chunk's text."""
    return chunks_with_questions(articles, max_tokens, overlap)[0]


def chunks_with_questions(articles: list[dict[str, Any]], max_tokens: int = 160, overlap: int = 1
                          ) -> tuple[list[str], list[list[int]], list[str]]:
    """The chunk texts (as `chunk_texts`), for each chunk the questions whose answer starts inside it (indices into
    the third list, every question of the articles)."""
    from ingest.chunk import Chunker
    from rag.types import Article

    chunker = Chunker(max_tokens=max_tokens, overlap_sentences=overlap)
    texts: list[str] = []
    asked: list[list[int]] = []
    questions: list[str] = []
    for a in articles:
        title = a["title"].replace("_", " ")
        body = "\n\n".join(p["context"] for p in a["paragraphs"])
        answers: list[tuple[int, int]] = []  # (start_char in the body, question index)
        offset = 0
        for p in a["paragraphs"]:
            for qa in p["qas"]:
                answers.append((offset + qa["answers"][0]["answer_start"], len(questions)))
                questions.append(qa["question"])
            offset += len(p["context"]) + 2
        for c in chunker.run(Article(id=a["title"], text=body)):
            texts.append(f"{title}\n{c.text}")
            asked.append([q for start, q in answers if c.start_char <= start < c.end_char])
    return texts, asked, questions


def training_chunks(articles: list[dict[str, Any]], chunkings: list[tuple[int, int]]
                    ) -> tuple[list[str], list[list[int]], list[str]]:
    """`chunks_with_questions` under each (max_tokens, overlap sentences) chunking, a text kept once: other chunk
    sizes and overlaps start chunks at other sentences, so the student sees more openings than one chunking gives."""
    texts: list[str] = []
    asked: list[list[int]] = []
    seen: set[str] = set()
    questions: list[str] = []
    for max_tokens, overlap in chunkings:
        chunk_list, chunk_asked, questions = chunks_with_questions(articles, max_tokens, overlap)
        for text, qs in zip(chunk_list, chunk_asked, strict=True):
            if text not in seen:
                seen.add(text)
                texts.append(text)
                asked.append(qs)
    return texts, asked, questions


def _chunkings(value: str) -> list[tuple[int, int]]:
    pairs = [tuple(int(x) for x in part.split(":")) for part in value.split(",")]
    if not pairs or any(len(p) != 2 or p[0] <= 0 or p[1] < 0 for p in pairs):
        raise argparse.ArgumentTypeError("expected max_tokens:overlap pairs, comma-separated, e.g. 160:1,160:0")
    return [(p[0], p[1]) for p in pairs]


def student_model(model_dir: str, layers: list[int]) -> Any:
    """The base model with only the given layers (0-based), in order; embeddings and the rest as they are."""
    import torch
    from transformers import AutoModel

    model = AutoModel.from_pretrained(model_dir)
    model.encoder.layer = torch.nn.ModuleList([model.encoder.layer[i] for i in layers])
    model.config.num_hidden_layers = len(layers)
    return model


def _pool(hidden: Any, mask: Any) -> Any:
    import torch

    weights = mask.unsqueeze(-1).to(hidden.dtype)
    pooled = (hidden * weights).sum(1) / weights.sum(1).clamp(min=1e-9)
    return torch.nn.functional.normalize(pooled.float(), dim=-1)


def train(model: Any, tokenizer: Any, texts: list[str], targets: np.ndarray, args: argparse.Namespace,
          checkpoints: Path, asked: list[list[int]] | None = None, question_vectors: np.ndarray | None = None
          ) -> list[float]:
    """Resumable: the model, optimiser, schedule and step are saved every `checkpoint_steps` steps.

    The loss is 1 - cos(student, target), plus, with `asked` and `question_vectors` (the whole model's vectors of
    the questions), `question_weight` times a contrastive term: each chunk of the batch that answers a question
    (one of its questions, drawn per step) must be that question's nearest chunk in the batch, at `temperature`.
    The question side stays the whole model's, as at query time."""
    import torch
    from tqdm import tqdm

    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    order = []
    for epoch in range(args.epochs):
        epoch_order = list(range(len(texts)))
        random.Random(args.seed + epoch).shuffle(epoch_order)
        order += epoch_order
    batches = [order[i:i + args.batch_size] for i in range(0, len(order), args.batch_size)]
    optimiser = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.01)
    warmup = max(1, len(batches) // 20)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimiser, lambda s: min(1.0, (s + 1) / warmup) * max(0.0, (len(batches) - s) / max(1, len(batches) - warmup)))
    state_file = checkpoints / "state.pt"
    step, losses = 0, []
    if state_file.is_file():
        state = torch.load(state_file, weights_only=False)
        if state["config"] != _config(args):
            raise SystemExit(f"{state_file} was written with other settings; delete it to start again")
        model.load_state_dict(state["model"])
        optimiser.load_state_dict(state["optimiser"])
        schedule.load_state_dict(state["schedule"])
        step, losses = state["step"], state["losses"]
        print(f"resuming at step {step} of {len(batches)}", flush=True)
    target = torch.from_numpy(targets)
    asked_vectors = torch.from_numpy(question_vectors) if question_vectors is not None else None
    model.train()
    bar = tqdm(total=len(batches), initial=step, unit="batch", desc="distil", smoothing=0.05)
    running = []
    while step < len(batches):
        index = batches[step]
        enc = tokenizer([texts[i] for i in index], padding=True, truncation=True, max_length=args.max_tokens,
                        return_tensors="pt")
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=args.precision == "bf16"):
            hidden = model(**enc).last_hidden_state
        vectors = _pool(hidden, enc["attention_mask"])
        loss = (1.0 - (vectors * target[index]).sum(-1)).mean()
        if asked is not None and asked_vectors is not None and args.question_weight > 0:
            draw = random.Random(args.seed * 1_000_003 + step)
            rows = [(row, draw.choice(asked[i])) for row, i in enumerate(index) if asked[i]]
            if rows:
                logits = asked_vectors[[q for _, q in rows]] @ vectors.T / args.temperature
                loss = loss + args.question_weight * torch.nn.functional.cross_entropy(
                    logits, torch.tensor([row for row, _ in rows]))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimiser.step()
        schedule.step()
        optimiser.zero_grad()
        running.append(float(loss))
        step += 1
        bar.update(1)
        bar.set_postfix(loss=f"{np.mean(running[-100:]):.4f}", texts_per_s=f"{bar.format_dict['rate'] or 0:.1f}x"
                        f"{args.batch_size}")
        if step % args.checkpoint_steps == 0 or step == len(batches):
            losses.append(round(float(np.mean(running)), 5))
            running = []
            checkpoints.mkdir(parents=True, exist_ok=True)
            torch.save({"config": _config(args), "model": model.state_dict(), "optimiser": optimiser.state_dict(),
                        "schedule": schedule.state_dict(), "step": step, "losses": losses},
                       checkpoints / "state.tmp")
            (checkpoints / "state.tmp").replace(state_file)
    bar.close()
    model.eval()
    return losses


def _teacher_vectors(teacher: Any, texts: list[str], cache: Path, batch: int, desc: str) -> np.ndarray:
    """The whole model's vectors of `texts`, float32, kept in `cache` (the checkpoint folder) for a resumed run."""
    if cache.is_file():
        return np.load(cache)
    from tqdm import tqdm

    vectors = np.concatenate([teacher.encode(texts[i:i + batch]) for i in tqdm(
        range(0, len(texts), batch), desc=desc, unit=f"x{batch}")]).astype(np.float32)
    cache.parent.mkdir(parents=True, exist_ok=True)
    np.save(cache, vectors)
    return vectors


def _config(args: argparse.Namespace) -> dict[str, Any]:
    return {k: getattr(args, k) for k in ("layers", "max_tokens", "epochs", "batch_size", "lr", "seed", "precision",
                                          "question_weight", "temperature", "chunkings")}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m evals.distill_small", description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=Path("models/small-encoder"))
    parser.add_argument("--data", type=Path, default=SQUAD11)
    parser.add_argument("--layers", type=lambda v: [int(x) for x in v.split(",")], default=[0, 5],
                        help="the base model's layers the student keeps, 0-based, comma-separated (its first and "
                             "last by default: 0.83 held-out cosine after one epoch, against 0.72 for the first two)")
    parser.add_argument("--max-tokens", type=int, default=64, help="word pieces the student reads of a chunk")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=5e-4)
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--precision", choices=("bf16", "fp32"), default="bf16")
    parser.add_argument("--question-weight", type=float, default=0.0,
                        help="weight of a contrastive term on SQuAD 1.1 train's questions (0, the default: "
                             "distillation only; at 1.0 it lowered held-out recall@1 from 0.547 to 0.521 and the "
                             "cosine to the whole model from 0.835 to 0.764)")
    parser.add_argument("--temperature", type=float, default=0.05, help="of the contrastive term's softmax")
    parser.add_argument("--chunkings", type=_chunkings, default=_chunkings("160:1,160:0,160:2,110:1"),
                        help="the chunkings of the training articles, max_tokens:overlap_sentences, comma-separated: "
                             "ingestion's own (160:1) and three that start chunks at other sentences (105,449 texts; "
                             "160:1 alone, 26,970 texts for 4 epochs, gave held-out cosine 0.835 against 0.844)")
    parser.add_argument("--articles", type=int, default=0, help="train on the first N articles only (0: all)")
    parser.add_argument("--checkpoint-steps", type=int, default=200)
    parser.add_argument("--checkpoints", type=Path, default=Path(".cache/distill-small"),
                        help="where the run keeps its resumable state and the targets (deleted at the end)")
    args = parser.parse_args(argv)

    from transformers import AutoTokenizer

    from rag.index.embed import BUNDLED_MODEL, Encoder, resolve_model_path
    from rag.index.onnx_embed import _export_int8
    from rag.index.small_embed import MODEL_FILE, SmallEncoder

    started = time.time()
    model_dir = resolve_model_path("")
    train_articles, held = _articles(args.data)
    train_articles = train_articles[:args.articles or None]
    texts, asked, questions = training_chunks(train_articles, args.chunkings)
    print(f"{len(texts)} chunks of {len(train_articles)} articles, {sum(map(bool, asked))} answering some of "
          f"{len(questions)} questions", flush=True)
    teacher = Encoder("", backend="onnx", cache_dir=str(Path.home() / ".cache" / "news-rag" / "onnx"),
                      max_tokens=TARGET_MAX_TOKENS)
    targets = _teacher_vectors(teacher, texts, args.checkpoints / f"targets-{len(texts)}.npy", 512, "targets")
    question_vectors = None
    if args.question_weight > 0:
        question_vectors = _teacher_vectors(teacher, questions, args.checkpoints / f"questions-{len(questions)}.npy",
                                            1024, "questions")
    trained_at = time.time()
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = student_model(model_dir, args.layers)
    losses = train(model, tokenizer, texts, targets, args, args.checkpoints, asked, question_vectors)
    train_seconds = time.time() - trained_at

    staging = args.checkpoints / "export"
    shutil.rmtree(staging, ignore_errors=True)
    model.save_pretrained(str(staging))
    tokenizer.save_pretrained(str(staging))
    args.out.mkdir(parents=True, exist_ok=True)
    _export_int8(staging, args.out / MODEL_FILE)
    shutil.copyfile(staging / "tokenizer.json", args.out / "tokenizer.json")
    size_mb = (args.out / MODEL_FILE).stat().st_size / 1e6
    info: dict[str, Any] = {
        "base": BUNDLED_MODEL, "layers": args.layers, "max_tokens": args.max_tokens, "dims": int(targets.shape[1]),
        "target": f"{BUNDLED_MODEL} int8 ONNX, first {TARGET_MAX_TOKENS} word pieces, mean pooled",
        "config": _config(args), "epoch_losses": losses, "chunks": len(texts),
        "data": f"SQuAD 1.1 train (CC BY-SA 4.0), {len(train_articles)} articles' paragraphs (every 20th article by "
                "title held out), chunked "
                + ", ".join(f"at {m} tokens with {o} sentence(s) of overlap" for m, o in args.chunkings)
                + ", each text once"
                + (f", and their {len(questions)} questions" if question_vectors is not None else ""),
        "command": "python -m evals.distill_small " + " ".join(argv if argv is not None else sys.argv[1:]),
        "commit": _git_commit(), "train_seconds": round(train_seconds, 1), "size_mb": round(size_mb, 1),
    }
    info["model_id"] = f"{BUNDLED_MODEL}+small{len(args.layers)}x{args.max_tokens}-{SmallEncoder.digest(args.out)}"
    (args.out / "small.json").write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
    student = SmallEncoder(args.out)
    short = Encoder("", backend="onnx", cache_dir=str(Path.home() / ".cache" / "news-rag" / "onnx"),
                    max_tokens=args.max_tokens)
    held_texts = chunk_texts(held)
    cosines = (student.encode(held_texts) * teacher.encode(held_texts)).sum(axis=1)
    info["held_out"] = {
        "articles": len(held), "chunks": len(held_texts),
        "cosine_to_target_mean": round(float(cosines.mean()), 4),
        "cosine_to_target_p10": round(float(np.percentile(cosines, 10)), 4),
        "recall_student": recall(teacher.encode, held, encode_paragraphs=student.encode, titled=True),
        f"recall_whole_model_{TARGET_MAX_TOKENS}": recall(teacher.encode, held, titled=True),
        f"recall_whole_model_{args.max_tokens}": recall(teacher.encode, held, encode_paragraphs=short.encode,
                                                         titled=True),
    }
    shutil.rmtree(args.checkpoints, ignore_errors=True)
    info["seconds"] = round(time.time() - started, 1)
    (args.out / "small.json").write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(info, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
