"""The `nasx` command line: the only module that knows every command.

Each command lives in a module of this package that parses its arguments, calls the library
(`nasx.jobs`, the registry `search_spaces`) and prints; this module builds the parser from their
``add_parsers`` and runs `main`. Every command takes ``--json`` for machine-readable output on
stdout. Bad input (an unknown space, preset or choice, malformed JSON or budget, an infeasible
budget) prints one line ``nasx: error: ...`` on stderr and exits with status 2, without a traceback.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

import search_spaces
from nasx.cli import benchmark, export, inspect, profile, search, sweep, train
from nasx.errors import NasxError

__all__ = ["build_parser", "main"]


class _Parser(argparse.ArgumentParser):
    """Usage errors as one line on stderr, exit status 2 (argparse would print the whole usage)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"nasx: error: {message} (see `{self.prog} --help`)\n")


def build_parser() -> argparse.ArgumentParser:
    """The `nasx` parser: every command's ``add_parsers``, in the order ``nasx --help`` lists them."""
    from nasx.version import __version__

    parser = _Parser(
        prog="nasx",
        description="Neural architecture search and compression on JAX. "
        "Budgets: 600M-flops (multiply-accumulates), 5.3M-params, 4MB-size, 20ms-latency, 60-layers.",
    )
    parser.add_argument("--version", action="version", version=f"nasx {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    spaces_help = (
        f"search space: {', '.join(search_spaces.FAMILIES)} (optionally NAME:VARIANT, e.g. nasnet:cifar)"
    )
    inspect.add_parsers(sub, spaces_help)
    train.add_parsers(sub, spaces_help)
    search.add_parsers(sub, spaces_help)
    sweep.add_parsers(sub, spaces_help)
    export.add_parsers(sub)
    profile.add_parsers(sub, spaces_help)
    benchmark.add_parsers(sub)
    return parser


class _Warnings(logging.Handler):
    """The library's warnings (logger ``nasx``) as ``nasx: warning: ...`` lines on the current
    stderr, each message once per command (a damaged checkpoint read twice warns once)."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self._said: set[str] = set()

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if message not in self._said:
            self._said.add(message)
            print(f"nasx: warning: {message}", file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the `nasx` command `argv` (default: ``sys.argv[1:]``); returns the exit status."""
    logger, handler = logging.getLogger("nasx"), _Warnings()
    propagate = logger.propagate
    logger.addHandler(handler)
    logger.propagate = False  # not also through a root handler another library installed
    try:
        return _run(argv)
    finally:
        logger.removeHandler(handler)
        logger.propagate = propagate


def _run(argv: Sequence[str] | None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        return args.run(args)
    except NasxError as e:
        print(f"nasx: error: {e}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # `nasx sample -n 1000 | head`
        return 0
    except MemoryError:
        print("nasx: error: out of host memory; lower --batch-size (or --image-size)", file=sys.stderr)
        return 2
    except Exception as e:  # XLA reports an allocation failure as a runtime error
        if "RESOURCE_EXHAUSTED" not in str(e):
            raise
        first = str(e).strip().splitlines()[0]
        print(
            f"nasx: error: out of memory ({first}); lower --batch-size (or --archs-per-step)", file=sys.stderr
        )
        return 2
