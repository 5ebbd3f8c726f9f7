"""``mnist-predict`` / ``python -m predictor``: predict the digit in image files, here or remotely.

With ``--read`` it reads the whole number in each picture instead (``POST /read``).

The reference's "test my own image" step as a command: files, folders and globs in; one row
per file out (a table or JSON lines), a summary on stderr, and optionally the reference's
figure. Exit status: 0 all predicted, 1 some file failed, 2 usage error, 3 no model or
service to predict with.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Iterator

from tqdm import tqdm

from predictor import figure, report
from predictor.engines import Answer, Engine, EngineError, Prediction, RemoteEngine
from predictor.inputs import Entry, expand

DEFAULT_MODEL = os.path.join("models", "mnist_cnn.pth")
DEFAULT_LINE_READER = os.path.join("models", "mnist_lines.pth")  # used for --read when present
MAX_FILE_BYTES = 64 * 1024 * 1024
PROGRESS_MIN_FILES = 20
EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_NO_ENGINE = 0, 1, 2, 3


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mnist-predict",
        description="Predict the handwritten digit in each image, with a local checkpoint or "
        "a running service.",
        epilog="examples:\n  mnist-predict digit.png scans/ 'photos/*.jpg'\n"
        "  mnist-predict --url http://localhost:8000 --json scans/ > labels.jsonl\n"
        "  mnist-predict --top-k 3 --figure out.png digit.png\n"
        "  mnist-predict --read meter.jpg   (a whole number: 4096)\n\n"
        "exit status: 0 all predicted, 1 some file failed, 2 usage error, "
        "3 no model or service",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "inputs",
        nargs="+",
        metavar="INPUT",
        help="image files, folders (searched recursively) or quoted globs",
    )
    parser.add_argument("--model", help=f"checkpoint for local mode (default {DEFAULT_MODEL})")
    parser.add_argument("--device", help="local mode: auto (CUDA if present; default), cpu, cuda")
    parser.add_argument(
        "--line-reader",
        help="local mode, --read: the line reader that counts a number's digits (default "
        f"{DEFAULT_LINE_READER} when it exists)",
    )
    parser.add_argument(
        "--url",
        help="send the images to the service at this URL instead, e.g. http://localhost:8000",
    )
    parser.add_argument(
        "--top-k",
        type=int,
        default=1,
        metavar="N",
        help="also show the N-1 runners-up (1-10, default 1)",
    )
    parser.add_argument(
        "--read",
        action="store_true",
        help="read the whole number in each picture (several digits), as POST /read does",
    )
    parser.add_argument("--json", action="store_true", help="one JSON object per line")
    parser.add_argument(
        "--figure", metavar="OUT", help=f"write the prediction figure ({', '.join(figure.FORMATS)})"
    )
    parser.add_argument(
        "--figure-limit",
        type=int,
        default=64,
        metavar="N",
        help="at most N images in the figure (default 64)",
    )
    parser.add_argument("--show", action="store_true", help="open the figure (needs a display)")
    parser.add_argument(
        "--batch-size",
        type=int,
        default=64,
        metavar="N",
        help="images per forward pass / per request (default 64)",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=60.0,
        metavar="S",
        help="remote mode: seconds to wait for each request (default 60)",
    )
    parser.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help=f"progress bar on stderr (default: with {PROGRESS_MIN_FILES}+ files and a terminal)",
    )
    return parser


def check_args(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Usage errors exit 2 through ``parser.error``."""
    if not 1 <= args.top_k <= 10:
        parser.error("--top-k must be between 1 and 10")
    if args.batch_size < 1 or args.figure_limit < 1:
        parser.error("--batch-size and --figure-limit must be at least 1")
    if args.timeout <= 0:
        parser.error("--timeout must be positive")
    if args.read and (args.figure is not None or args.show or args.top_k != 1):
        parser.error("--figure, --show and --top-k are for single digits, not with --read")
    if args.url is not None:
        if not args.url.startswith(("http://", "https://")):
            parser.error(f"--url must start with http:// or https:// (got {args.url!r})")
        if args.model is not None or args.device is not None or args.line_reader is not None:
            parser.error(
                "--model, --device and --line-reader are for local mode; the service has its own"
            )
    if args.figure is not None:
        suffix = os.path.splitext(args.figure)[1].lower().lstrip(".")
        if suffix not in figure.FORMATS:
            parser.error(f"--figure must end in one of: .{', .'.join(figure.FORMATS)}")


def read_file(path: str) -> bytes | str:
    """The file's bytes, or why they cannot be had."""
    try:
        size = os.stat(path).st_size
        if not os.path.isfile(path):
            return "not a regular file"
        if size > MAX_FILE_BYTES:
            return f"the file is {size:,} bytes; the limit is {MAX_FILE_BYTES:,}"
        with open(path, "rb") as handle:
            return handle.read()
    except OSError as exc:
        return f"cannot read the file: {exc.strerror or exc}"


def chunks(entries: list[Entry], size: int) -> Iterator[list[Entry]]:
    for start in range(0, len(entries), size):
        yield entries[start : start + size]


Row = tuple[Entry, Answer, bytes]  # the entry, its answer, the file's bytes (empty if unread)


def run_chunk(engine: Engine, chunk: list[Entry], with_images: bool, numbers: bool) -> list[Row]:
    """Read the chunk's files, predict the readable ones in one go (or read the number in
    each, with ``numbers``); rows in input order."""
    read = [(entry, entry.error or read_file(entry.path)) for entry in chunk]
    good = [(os.path.basename(entry.path), data) for entry, data in read if isinstance(data, bytes)]
    answers = iter(engine.read(good) if numbers else engine.predict(good, with_images))
    return [
        (entry, next(answers), data) if isinstance(data, bytes) else (entry, data, b"")
        for entry, data in read
    ]


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        check_args(parser, args)
    except SystemExit as exc:
        return int(exc.code or 0)
    entries = expand(args.inputs)
    engine: Engine
    try:
        if args.url is not None:
            engine = RemoteEngine(args.url, args.timeout)
        else:
            from predictor.local import LocalEngine  # torch: only for local mode

            line_reader = args.line_reader or (
                DEFAULT_LINE_READER if os.path.isfile(DEFAULT_LINE_READER) else None
            )
            engine = LocalEngine(args.model or DEFAULT_MODEL, args.device or "auto", line_reader)
    except EngineError as exc:
        print(f"mnist-predict: {exc}", file=sys.stderr)
        return EXIT_NO_ENGINE
    try:
        return predict_all(engine, entries, args)
    except KeyboardInterrupt:
        print("mnist-predict: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # the reader went away (`mnist-predict scans/ | head`)
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_FAILED
    finally:
        engine.close()


def predict_all(engine: Engine, entries: list[Entry], args: argparse.Namespace) -> int:
    started = time.perf_counter()
    want_figure = args.figure is not None or args.show
    width = max(len(entry.path) for entry in entries)
    summary = report.Summary()
    cells: list[figure.Cell] = []
    progress = args.progress
    if progress is None:
        progress = len(entries) >= PROGRESS_MIN_FILES and sys.stderr.isatty()
    with tqdm(total=len(entries), unit="file", file=sys.stderr, disable=not progress) as bar:
        for chunk in chunks(entries, args.batch_size):
            for entry, answer, data in run_chunk(engine, chunk, want_figure, args.read):
                summary.add(entry.path, answer)
                if args.json:
                    line = report.json_row(entry.path, answer, args.top_k)
                else:
                    line = report.table_row(entry.path, answer, args.top_k, width)
                bar.write(line, file=sys.stdout)
                drawn = want_figure and isinstance(answer, Prediction)
                if drawn and len(cells) < args.figure_limit:
                    cells.append(figure.cell(entry.path, data, answer))
            bar.update(len(chunk))
    for line in summary.lines(engine.description, time.perf_counter() - started):
        print(line, file=sys.stderr)
    figure_ok = finish_figure(cells, summary.predicted, args) if want_figure else True
    return EXIT_FAILED if summary.failures or not figure_ok else EXIT_OK


def finish_figure(cells: list[figure.Cell], predicted: int, args: argparse.Namespace) -> bool:
    """Write and/or show the figure; False when it could not be written."""
    if not cells:
        print("mnist-predict: no figure: no file was predicted", file=sys.stderr)
        return True
    if predicted > len(cells):
        print(
            f"figure shows the first {len(cells)} of {predicted} predictions (--figure-limit)",
            file=sys.stderr,
        )
    png = None
    if args.figure is not None:
        try:
            data = figure.write(args.figure, cells)
        except OSError as exc:
            print(f"mnist-predict: cannot write {args.figure}: {exc}", file=sys.stderr)
            return False
        print(f"figure written to {args.figure}", file=sys.stderr)
        png = data if args.figure.lower().endswith(".png") else None
    if args.show:
        problem = figure.show(png or figure.render(cells))
        if problem:
            print(f"mnist-predict: cannot show the figure: {problem}", file=sys.stderr)
    return True


if __name__ == "__main__":
    sys.exit(main())
