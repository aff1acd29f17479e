"""Every numeric flag of every command has a domain, checked where arguments are parsed: a value
outside it is one line ``nasx: error: argument FLAG: ...`` naming the value, exit status 2.

The flags are found by walking the real parser, so a new numeric flag without a domain fails
`test_every_numeric_flag_has_a_domain`.
"""

from __future__ import annotations

import argparse

import pytest

from nasx.cli import build_parser
from nasx.cli._args import (
    SEED_MAX,
    anchor_count,
    fraction,
    nonnegative_float,
    nonnegative_int,
    open_fraction,
    population_size,
    positive_float,
    positive_int,
    resolution_px,
    sample_count,
    seed_int,
)

BAD = {
    positive_int: ("0", "-5", "abc", "2.5"),
    nonnegative_int: ("-1", "x"),
    seed_int: ("-1", "one", str(SEED_MAX + 1)),
    anchor_count: ("1", "5", "x"),
    population_size: ("1", "0"),
    resolution_px: ("0", "1", "7", "4097", "x"),
    sample_count: ("0", "1000001", "1e11", "x"),
    positive_float: ("0", "-1", "nan", "inf", "x"),
    nonnegative_float: ("-0.1", "nan", "inf", "x"),
    fraction: ("1", "-0.1", "nan", "x"),
    open_fraction: ("0", "1", "nan", "x"),
}
GOOD = {
    positive_int: "1",
    nonnegative_int: "0",
    seed_int: "0",
    anchor_count: "2",
    population_size: "2",
    resolution_px: "8",
    sample_count: "1000000",
    positive_float: "0.5",
    nonnegative_float: "0",
    fraction: "0",
    open_fraction: "0.5",
}


def _commands(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()):
    """(command words, its parser) for every leaf command, e.g. (("benchmark", "nb201"), parser)."""
    subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if not subs:
        yield path, parser
    for sub in subs:
        for name, child in sub.choices.items():
            yield from _commands(child, (*path, name))


def _numeric_flags():
    for words, parser in _commands(build_parser()):
        for action in parser._actions:
            if action.option_strings and action.type in BAD:
                yield words, action.option_strings[0], action.type


FLAGS = list(_numeric_flags())


def test_every_numeric_flag_has_a_domain() -> None:
    untyped = [
        (" ".join(words), a.option_strings[0])
        for words, parser in _commands(build_parser())
        for a in parser._actions
        if a.option_strings and a.type in (int, float)
    ]
    assert untyped == []
    assert len(FLAGS) >= 40  # search, solve, sweep, train-supernet, export, profile, sample, cost, benchmark
    assert {" ".join(w) for w, _, _ in FLAGS} >= {"search", "solve", "train-supernet", "export", "profile"}


@pytest.mark.parametrize(("words", "flag", "domain"), FLAGS, ids=[f"{' '.join(w)} {f}" for w, f, _ in FLAGS])
def test_a_value_outside_the_domain_is_one_line_exit_2(cli, words, flag: str, domain) -> None:
    for value in BAD[domain]:
        code, out, err = cli(*words, f"{flag}={value}")
        assert code == 2 and out == "", (flag, value, err)
        assert err.count("\n") == 1 and err.startswith(f"nasx: error: argument {flag}"), err
        assert value in err and "Traceback" not in err


@pytest.mark.parametrize("domain", list(BAD), ids=lambda d: d.__name__)
def test_the_smallest_allowed_value_is_accepted(domain) -> None:
    assert domain(GOOD[domain]) == type(domain(GOOD[domain]))(GOOD[domain])
    with pytest.raises(argparse.ArgumentTypeError, match="expected"):
        domain(BAD[domain][0])
