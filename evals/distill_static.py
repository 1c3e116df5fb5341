"""Distil the static chunk encoder (rag/index/static_embed.py) from the bundled all-MiniLM-L6-v2.

model2vec's method, written out here (its distiller pins a transformers older than ours):
1. every word piece of the vocabulary goes through the transformer alone (`[CLS] piece [SEP]`, mean-pooled as the
   sentence-transformers model pools);
2. PCA to `--dims` dimensions;
3. each row is weighted by sif / (sif + p(piece)), p counted over the SQuAD 1.1 training paragraphs, so that
   common pieces ("the", ",") weigh little in a text's mean;
4. the table is then tuned on SQuAD 1.1 train's question -> paragraph pairs (contrastive, the other paragraphs of a
   batch as negatives; `--epochs`, seeded, a checkpoint after each epoch so an interrupted run resumes);
5. rows are stored int8 with a scale each (models/static/table.int8.npz).

Then it measures, on SQuAD 1.1 articles held out of the frequency count, how often a question's paragraph is among
the nearest 1 and 5 paragraphs of its article set, with the table and with the transformer, and writes
static.json and the figures into the model card's folder.

    python -m evals.distill_static --out models/static      # about 7 minutes on 2 cores
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

SQUAD11 = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "squad11-train" / \
    "train-v1.1.derived-from-explorer.json"
HELD_OUT_EVERY = 20  # every 20th article by title is held out of the counts and measured on (as for the reader)


def _articles(path: Path) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    data = sorted(json.loads(path.read_text(encoding="utf-8"))["data"], key=lambda a: a["title"])
    held = [a for i, a in enumerate(data) if i % HELD_OUT_EVERY == 0]
    train = [a for i, a in enumerate(data) if i % HELD_OUT_EVERY != 0]
    return train, held


def piece_vectors(model_dir: str, batch_size: int = 512) -> np.ndarray:
    """One mean-pooled transformer output per vocabulary id, float32, in id order."""
    import torch
    from transformers import AutoModel, AutoTokenizer

    torch.manual_seed(0)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModel.from_pretrained(model_dir).eval()
    size = len(tokenizer)
    cls, sep = tokenizer.cls_token_id, tokenizer.sep_token_id
    rows = []
    with torch.inference_mode():
        for start in range(0, size, batch_size):
            ids = torch.arange(start, min(start + batch_size, size))[:, None]
            batch = torch.cat([torch.full_like(ids, cls), ids, torch.full_like(ids, sep)], dim=1)
            hidden = model(input_ids=batch, attention_mask=torch.ones_like(batch)).last_hidden_state
            rows.append(hidden.mean(dim=1).numpy())
    return np.concatenate(rows).astype(np.float32)


def piece_probabilities(tokenizer: Any, paragraphs: list[str], size: int) -> np.ndarray:
    counts: Counter[int] = Counter()
    for encoding in tokenizer.encode_batch(paragraphs, add_special_tokens=False):
        counts.update(encoding.ids)
    freq = np.ones(size, dtype=np.float64)  # add-one: a piece never seen counts as seen once
    for i, n in counts.items():
        freq[i] += n
    return freq / freq.sum()


def build_table(vectors: np.ndarray, probabilities: np.ndarray, dims: int, sif: float) -> np.ndarray:
    centred = vectors - vectors.mean(axis=0)
    _, _, components = np.linalg.svd(centred, full_matrices=False)
    reduced = centred @ components[:dims].T
    return (reduced * (sif / (sif + probabilities))[:, None]).astype(np.float32)


def _bag(encoder: Any, lists: list[list[int]]) -> Any:
    import torch

    flat = torch.tensor([i for ids in lists for i in ids])
    offsets = torch.tensor(np.cumsum([0] + [len(ids) for ids in lists[:-1]]))
    return torch.nn.functional.normalize(encoder(flat, offsets), dim=-1)


def tune(table: np.ndarray, tokenizer: Any, train: list[dict[str, Any]], epochs: int, lr: float, seed: int,
         checkpoints: Path, batch_size: int = 256, temperature: float = 0.05) -> tuple[np.ndarray, list[float]]:
    """The table tuned so that a question's vector is nearest its paragraph's among the batch's paragraphs
    (symmetric in nothing: questions against paragraphs, a paragraph shared by two questions of a batch is not
    a negative). Returns the table and each epoch's mean loss."""
    import torch

    torch.manual_seed(seed)
    torch.set_num_threads(min(2, torch.get_num_threads()))
    paragraphs: list[str] = []
    pairs: list[tuple[str, int]] = []
    for article in train:
        for p in article["paragraphs"]:
            for qa in p["qas"]:
                pairs.append((qa["question"], len(paragraphs)))
            paragraphs.append(p["context"])
    p_ids = [e.ids[:512] for e in tokenizer.encode_batch(paragraphs, add_special_tokens=False)]
    q_ids = [e.ids[:64] or [100] for e in tokenizer.encode_batch([q for q, _ in pairs], add_special_tokens=False)]
    encoder = torch.nn.EmbeddingBag.from_pretrained(torch.tensor(table), freeze=False, mode="sum")
    optimiser = torch.optim.Adam(encoder.parameters(), lr=lr)
    losses: list[float] = []
    checkpoints.mkdir(parents=True, exist_ok=True)
    state = checkpoints / "tune.pt"
    if state.is_file():
        saved = torch.load(state)
        encoder.load_state_dict(saved["encoder"])
        optimiser.load_state_dict(saved["optimiser"])
        losses = list(saved["losses"])
        print(f"resuming after epoch {len(losses)}", file=sys.stderr)
    from tqdm import tqdm

    for epoch in range(len(losses), epochs):
        order = np.random.default_rng(seed + epoch).permutation(len(pairs))
        steps = len(order) // batch_size
        total = 0.0
        for step in tqdm(range(steps), desc=f"epoch {epoch + 1}/{epochs}", unit="batch", file=sys.stderr):
            index = order[step * batch_size:(step + 1) * batch_size]
            gold = torch.tensor([pairs[i][1] for i in index])
            q = _bag(encoder, [q_ids[i] for i in index])
            p = _bag(encoder, [p_ids[j] for j in gold.tolist()])
            logits = q @ p.T / temperature
            same = (gold[:, None] == gold[None, :]) & ~torch.eye(len(index), dtype=torch.bool)
            loss = torch.nn.functional.cross_entropy(logits.masked_fill(same, -1e4), torch.arange(len(index)))
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            total += float(loss)
        losses.append(round(total / max(steps, 1), 4))
        torch.save({"encoder": encoder.state_dict(), "optimiser": optimiser.state_dict(), "losses": losses}, state)
    return encoder.weight.detach().numpy().astype(np.float32), losses


def quantise(table: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    scales = np.maximum(np.abs(table).max(axis=1), 1e-12) / 127.0
    rows = np.clip(np.round(table / scales[:, None]), -127, 127).astype(np.int8)
    return rows, scales.astype(np.float16)


def recall(encode: Any, held: list[dict[str, Any]], questions_per_article: int = 40,
           encode_paragraphs: Any = None, titled: bool = False) -> dict[str, Any]:
    """Question -> its paragraph among all paragraphs of the held-out articles: recall at 1 and 5. Questions are
    embedded by `encode`, paragraphs by `encode_paragraphs` (default the same); `titled`: a paragraph is read as
    ingestion embeds a chunk, "title\nparagraph"."""
    paragraphs: list[str] = []
    questions: list[str] = []
    gold: list[int] = []
    for article in held:
        title = article["title"].replace("_", " ")
        for p in article["paragraphs"]:
            index = len(paragraphs)
            paragraphs.append(f"{title}\n{p['context']}" if titled else p["context"])
            for qa in p["qas"]:
                questions.append(qa["question"])
                gold.append(index)
    rng = np.random.default_rng(13)
    pick = rng.choice(len(questions), size=min(len(questions), questions_per_article * len(held)), replace=False)
    p_vec = (encode_paragraphs or encode)(paragraphs)
    q_vec = encode([questions[i] for i in pick])
    ranks = np.argsort(-(q_vec @ p_vec.T), axis=1)[:, :5]
    hits = np.array([gold[i] for i in pick])[:, None] == ranks
    return {"questions": len(pick), "paragraphs": len(paragraphs),
            "recall_at_1": round(float(hits[:, 0].mean()), 4), "recall_at_5": round(float(hits.any(axis=1).mean()), 4)}


def _git_commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m evals.distill_static", description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=Path("models/static"))
    parser.add_argument("--data", type=Path, default=SQUAD11)
    parser.add_argument("--dims", type=int, default=256)
    parser.add_argument("--sif", type=float, default=1e-4)
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--checkpoints", type=Path, default=Path(".cache/distill-static"),
                        help="where the run keeps its resumable state (deleted at the end)")
    args = parser.parse_args(argv)

    from tokenizers import Tokenizer

    from rag.index.embed import BUNDLED_MODEL, Encoder, resolve_model_path
    from rag.index.static_embed import MAX_TOKENS, TABLE_FILE, StaticEncoder, table_vectors

    started = time.time()
    model_dir = resolve_model_path("")
    tokenizer = Tokenizer.from_file(str(Path(model_dir) / "tokenizer.json"))
    train, held = _articles(args.data)
    vectors = piece_vectors(model_dir)
    probabilities = piece_probabilities(
        tokenizer, [p["context"] for a in train for p in a["paragraphs"]], vectors.shape[0])
    distilled = build_table(vectors, probabilities, args.dims, args.sif)
    table, losses = tune(distilled, tokenizer, train, args.epochs, args.lr, args.seed, args.checkpoints)
    rows, scales = quantise(table)
    digest = hashlib.sha256(rows.tobytes() + scales.tobytes()).hexdigest()[:8]
    args.out.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(args.out / TABLE_FILE, rows=rows, scales=scales)
    shutil.copyfile(Path(model_dir) / "tokenizer.json", args.out / "tokenizer.json")
    info: dict[str, Any] = {
        "model_id": f"{BUNDLED_MODEL}+static{args.dims}-{digest}", "base": BUNDLED_MODEL, "dims": args.dims,
        "sif": args.sif, "vocabulary": int(rows.shape[0]), "epochs": args.epochs, "lr": args.lr, "seed": args.seed,
        "epoch_losses": losses,
        "data": f"SQuAD 1.1 train, {len(train)} articles (every {HELD_OUT_EVERY}th by title held out): piece "
                "frequencies and the question -> paragraph pairs",
        "command": "python -m evals.distill_static " + " ".join(argv if argv is not None else sys.argv[1:]),
        "commit": _git_commit(),
    }
    (args.out / "static.json").write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
    static = StaticEncoder(args.out)
    transformer = Encoder("", backend="onnx", cache_dir=str(Path.home() / ".cache" / "news-rag" / "onnx"),
                          max_tokens=256)
    distilled_only = recall(lambda texts: table_vectors(distilled, [
        e.ids[:MAX_TOKENS] for e in tokenizer.encode_batch(texts, add_special_tokens=False)]), held)
    info["held_out"] = {"static": recall(static.encode, held), "static_before_tuning": distilled_only,
                        "transformer_onnx": recall(transformer.encode, held)}
    shutil.rmtree(args.checkpoints, ignore_errors=True)
    info["seconds"] = round(time.time() - started, 1)
    (args.out / "static.json").write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(info, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
