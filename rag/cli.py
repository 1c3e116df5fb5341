"""`rag`: the command line. Argument parsing and turning errors into messages and exit codes; no logic."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from typing import Any

from rag.config import ANSWER_BACKENDS, Settings
from rag.errors import RagError

EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_FAILED_GATE = 0, 1, 2, 3


def filters_from_args(args: argparse.Namespace) -> Any:
    """--source/--since/--until/--as-of as Filters; a malformed date is a usage error."""
    from rag.types import Filters

    try:
        return Filters(sources=tuple(args.source or ()), published_from=args.since or "", published_to=args.until or "",
                       as_of=getattr(args, "as_of", None) or "")
    except ValueError as exc:
        raise RagError(f"--since/--until/--as-of: {exc}") from exc


def _settings(args: argparse.Namespace) -> Settings:
    return Settings.from_env().with_overrides(
        index_dir=getattr(args, "index", None), top_k=getattr(args, "top_k", None),
        chroma_url=getattr(args, "chroma_url", None), answer_backend=getattr(args, "backend", None),
        fetch_allow_private=True if getattr(args, "allow_private", False) else None,
        record_columns=getattr(args, "columns", None),
    )


def _assistant(args: argparse.Namespace, existing: bool = False) -> Any:
    """The Assistant of the command's settings; `existing`: the index must be there already (only ingest makes one,
    so a mistyped --index is an error, not an empty corpus that "doesn't say")."""
    from rag.assistant import Assistant
    from rag.index.catalog import index_exists

    settings = _settings(args)
    if existing and not index_exists(settings.index_dir):
        raise RagError(f"no index at {settings.index_dir}: run `rag ingest PATH --index {settings.index_dir}` first "
                       "(or give the --index of an existing one)")
    return Assistant(settings=settings)


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def cmd_ingest(args: argparse.Namespace) -> int:
    from ingest.watch import read_url_list

    paths = list(args.paths) + (read_url_list(args.urls) if args.urls else [])
    if not paths:
        raise RagError("give files, folders or URLs to ingest (or --urls FILE)")
    from ingest.web import is_url

    assistant = _assistant(args)
    report = assistant.ingest(paths, sync=args.sync, progress=False if args.json else None)
    if args.json:
        print(json.dumps(report.as_dict(), ensure_ascii=False))
    else:
        _print_report(report, assistant)
    # A script must be able to tell that a path was wrong, or that nothing was there to ingest.
    missing = [p for p in args.paths if not is_url(p) and not os.path.lexists(p)]
    if missing:
        raise RagError(f"no such file or folder: {', '.join(missing)}")
    if not (report.added or report.updated or report.unchanged or report.removed or report.urls):
        raise RagError("nothing was ingested: " + ("every file was skipped (reasons above)" if report.skipped
                                                   else "no files were found"))
    return EXIT_OK


def _print_report(report: Any, assistant: Any, prefix: str = "") -> None:
    docs, chunks = assistant.catalog.counts()
    rate = report.chunks / report.seconds if report.seconds > 0 else 0.0
    print(f"{prefix}added {report.added}, updated {report.updated}, unchanged {report.unchanged}, "
          f"removed {report.removed}, skipped {len(report.skipped)}; {_plural(report.chunks, 'chunk')} embedded "
          f"in {report.seconds:.1f}s ({rate:.1f} chunks/s). Index: {_plural(docs, 'document')}, "
          f"{_plural(chunks, 'chunk')}.", flush=True)
    for url, counts in report.urls.items():
        print(f"{prefix}  {url}: " + ", ".join(f"{k} {v}" for k, v in counts.items()), flush=True)
    for s in report.skipped:
        print(f"{prefix}  skipped {s.path}: {s.reason}", file=sys.stderr, flush=True)


def cmd_watch(args: argparse.Namespace) -> int:
    import signal
    import threading
    import time

    from ingest.watch import parse_interval, read_url_list, watch

    every_s = parse_interval(args.every)
    read_url_list(args.lists)  # a bad list fails now, not at the first poll
    assistant = _assistant(args)
    stop = threading.Event()

    def request_stop(signum: int, frame: object) -> None:
        if stop.is_set():  # a second Ctrl-C: stop now (what was committed stays; the next run completes it)
            raise KeyboardInterrupt
        print("rag watch: stopping after the feed being read", file=sys.stderr, flush=True)
        stop.set()

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)

    def on_poll(n: int, report: Any) -> None:
        if args.json:
            print(json.dumps({"poll": n, **report.as_dict()}, ensure_ascii=False), flush=True)
        else:
            _print_report(report, assistant, prefix=f"[{time.strftime('%Y-%m-%d %H:%M:%S')} poll {n}] ")

    watch(lambda urls, stop_event: assistant.ingest(urls, progress=False, stop=stop_event), args.lists, every_s,
          stop, on_poll, polls=args.polls or 0)
    return EXIT_OK


def cmd_ask(args: argparse.Namespace) -> int:
    filters = filters_from_args(args)  # a bad date is told before the models load
    assistant = _assistant(args, existing=True)
    if args.json:
        from rag.serialize import answer_to_dict

        answer = assistant.ask(args.question, filters=filters)
        print(json.dumps(answer_to_dict(answer), ensure_ascii=False))
        return EXIT_OK
    from rag.types import AnswerPiece

    answer = None
    for event in assistant.ask_stream(args.question, filters=filters):
        if isinstance(event, AnswerPiece):
            print(event.text, end="", flush=True)
        else:
            answer = event
    print()
    assert answer is not None
    if answer.fallback:
        print(f"(the extractive answer: {answer.fallback})", file=sys.stderr)
    if answer.notice:
        print(f"({answer.notice})")
    if answer.short_answer and not answer.abstained:
        print(f"Short answer: {answer.short_answer}")
    if answer.period:
        print(f"({answer.period})")
    for c in answer.citations:
        where = ", ".join(x for x in (c.title, c.source, c.published) if x)
        print(f"\n[{c.id}] {where}\n    {c.doc_id} [{c.start_char}:{c.end_char}]\n    “{c.quote}”")
        if c.also_in:
            print("    also in: " + "; ".join(", ".join(x for x in (r.source or r.doc_id, r.published) if x)
                                          for r in c.also_in))
    return EXIT_OK


def cmd_serve(args: argparse.Namespace) -> int:
    import app

    return app.main(
        [*(["--index", args.index] if args.index else []), *(["--port", str(args.port)] if args.port else []),
         *(["--host", args.host] if args.host else []), *(["--share"] if args.share else []),
         *(["--no-auth"] if args.no_auth else [])]
    )


def cmd_eval(args: argparse.Namespace) -> int:
    from evals.run import main as eval_main

    return eval_main(args)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rag", description="Cited answers from a corpus of news articles.")
    sub = parser.add_subparsers(dest="command", required=True)

    def index_arg(p: argparse.ArgumentParser) -> None:
        p.add_argument("--index", metavar="DIR", help="index directory (default: $RAG_INDEX_DIR or ./.rag)")
        p.add_argument("--chroma-url", metavar="URL", help="use a Chroma server (default: $RAG_CHROMA_URL; embedded if unset)")

    def fetch_args(p: argparse.ArgumentParser) -> None:
        p.add_argument("--allow-private", action="store_true",
                       help="allow URLs on loopback and private addresses (refused by default)")

    p = sub.add_parser("ingest", help="add or update articles from files, folders, feeds and pages")
    p.add_argument("paths", nargs="*", metavar="PATH_OR_URL",
                   help=".txt .md .html .htm .pdf .jsonl .csv .parquet .warc .warc.gz files or folders, or "
                        "http(s) URLs of RSS/Atom feeds or pages")
    index_arg(p)
    p.add_argument("--urls", action="append", metavar="FILE", help="a file of feed or page URLs, one per line")
    p.add_argument("--columns", metavar="MAP", help="CSV/Parquet/JSONL fields, e.g. text=body,title=headline "
                   "(default: $RAG_RECORD_COLUMNS; README, Sources)")
    fetch_args(p)
    p.add_argument("--sync", action="store_true", help="also remove documents whose source files are gone")
    p.add_argument("--json", action="store_true", help="print the ingest report as JSON")
    p.set_defaults(func=cmd_ingest)

    p = sub.add_parser("watch", help="re-read feeds on a schedule and ingest new or changed entries")
    p.add_argument("lists", nargs="+", metavar="URLS_OR_FILE", help="feed URLs, or files of them (one per line)")
    index_arg(p)
    p.add_argument("--every", default="15m", help="time between polls: 30s, 15m, 2h (default 15m)")
    p.add_argument("--polls", type=int, metavar="N", help="stop after N polls (default: until Ctrl-C or SIGTERM)")
    fetch_args(p)
    p.add_argument("--json", action="store_true", help="print each poll's report as one JSON line")
    p.set_defaults(func=cmd_watch)

    p = sub.add_parser("ask", help="answer a question from the corpus, with citations")
    p.add_argument("question")
    index_arg(p)
    p.add_argument("--top-k", type=int, metavar="N", help="passages to retrieve (default: $RAG_TOP_K or 5)")
    p.add_argument("--json", action="store_true", help="print the answer as one JSON object")
    p.add_argument("--source", action="append", metavar="NAME", help="only articles from this source (repeatable)")
    p.add_argument("--since", metavar="DATE", help="only articles published on or after DATE (YYYY[-MM[-DD]])")
    p.add_argument("--until", metavar="DATE", help="only articles published on or before DATE (YYYY[-MM[-DD]])")
    p.add_argument("--as-of", metavar="DATE", help="ask as of DATE (default: today): articles published after it "
                   "are not seen (undated ones are), and \"this week\", \"recently\" are read from it")
    p.add_argument("--backend", choices=ANSWER_BACKENDS,
                   help="who writes the answer (default: $RAG_ANSWER_BACKEND or extractive); see README, LLM backends")
    p.set_defaults(func=cmd_ask)

    p = sub.add_parser("serve", help="serve the chat web page")
    index_arg(p)
    p.add_argument("--port", type=int, help="port (default: $RAG_PORT or 7860)")
    p.add_argument("--host", help="bind address (default: 127.0.0.1)")
    p.add_argument("--share", action="store_true", help="expose through a Gradio share link")
    p.add_argument("--no-auth", action="store_true",
                   help="allow a non-loopback --host or --share without RAG_USERNAME/RAG_PASSWORD")
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("eval", help="run a gold Q&A set or an external dataset and report metrics")
    from evals.datasets import DATASETS  # light: the adapters load their data only when run

    p.add_argument("gold", metavar="GOLD_OR_DATASET", help=f"a gold .jsonl file, or {' | '.join(DATASETS)}")
    index_arg(p)
    p.add_argument("--corpus", action="append", metavar="PATH", help="corpus to ingest first (repeatable)")
    p.add_argument("--k", type=int, nargs="+", default=[1, 3, 5, 10], help="k values for retrieval metrics")
    p.add_argument("--top-k", type=int, metavar="N", help="passages given to the answerer")
    p.add_argument("--report", metavar="DIR", help="write report.json and report.md here")
    p.add_argument("--fail-under", nargs="+", default=[], metavar="METRIC=VALUE",
                   help="exit 3 when an aggregate metric is below the value, e.g. answer_accuracy=0.9")
    p.add_argument("--limit", type=int, help="use at most this many questions (fixed sample)")
    p.add_argument("--data", metavar="DIR", help="folder of the external datasets (default: ../shared/data beside the repo)")
    p.add_argument("--baseline", action="store_true",
                   help="also build LlamaIndex's default pipeline over the same corpus and compare retrieval and cost")
    p.set_defaults(func=cmd_eval)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # never reach for a model hub at run time
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except RagError as exc:
        print(f"rag: error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("rag: interrupted; the index keeps what was committed, run the command again to finish",
              file=sys.stderr)
        return 130
    except BrokenPipeError:  # `rag ask … | head`: the reader went away; say nothing more
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # so the interpreter's final flush does not fail again
        return 141  # 128 + SIGPIPE, as the shell reports a command killed by it


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
