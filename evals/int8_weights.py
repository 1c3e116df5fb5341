"""Store int8 ONNX models' MatMul weights as uint8, so that they compute the same on every CPU (rag/int8.py).

    python -m evals.int8_weights FILE [FILE ...]

Lossless: each weight q becomes q + 128 with zero point 128, the same integers once the zero point is taken off.
Our exports write this form themselves; this rewrites a model exported before they did (again on a file already in
it, which changes nothing).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from rag.int8 import store_uint8_file


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m evals.int8_weights", description=__doc__.split("\n\n")[0])
    parser.add_argument("files", nargs="+", type=Path)
    args = parser.parse_args(argv)
    for path in args.files:
        print(f"{path}: {store_uint8_file(path)} int8 weight tensors stored as uint8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
