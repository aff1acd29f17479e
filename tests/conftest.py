"""Test set-up: 4 fake CPU devices, strict dtypes, a persistent compilation cache.

The environment is set before anything imports JAX, as the devices are fixed at first use.
"""

from __future__ import annotations

import os
from pathlib import Path

os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=4")
os.environ.setdefault("JAX_PLATFORMS", "cpu")

import jax
import pytest

jax.config.update("jax_numpy_dtype_promotion", "strict")
jax.config.update("jax_numpy_rank_promotion", "raise")
jax.config.update("jax_compilation_cache_dir", str(Path.home() / ".cache" / "nasx-tests-jax"))
jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.5)

REPO = Path(__file__).resolve().parents[1]
NB201_DIR = Path(os.environ.get("NASX_NB201", REPO.parent / "shared" / "data" / "nb201"))


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """``nasx ARGV`` in this process: (exit status, stdout, stderr); argparse's exits included."""
    from nasx.cli import main

    try:
        code = main(list(argv))
    except SystemExit as e:  # usage errors found by argparse itself
        code = e.code
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]):
    """``cli("search", ...)``: `nasx` run in this process -> (exit status, stdout, stderr)."""

    def run(*argv: str) -> tuple[int, str, str]:
        return run_cli(capsys, *argv)

    return run


@pytest.fixture(scope="session")
def nb201_csv() -> Path:
    """The third-party NB201 table (never copied into the repo); tests using it skip without it."""
    path = NB201_DIR / "nb201.csv"
    if not path.is_file():
        pytest.skip(f"NB201 table not found at {path} (set NASX_NB201 to its folder)")
    return path


_TINY_TRAIN = [
    "train-supernet",
    "--space",
    "mobilenet:cifar",
    "--width-mult",
    "0.25",
    "--bits",
    "32",
    "--image-size",
    "8",
]
_TINY_TRAIN += [
    "--steps",
    "200",
    "--batch-size",
    "32",
    "--archs-per-step",
    "3",
    "--checkpoint-every",
    "100",
    "--devices",
    "1",
]


@pytest.fixture(scope="session")
def tiny_train_argv() -> list[str]:
    """``nasx train-supernet`` arguments of the tiny mobilenet supernet (without --out)."""
    return list(_TINY_TRAIN)


@pytest.fixture(scope="session")
def toy():
    """A two-stage MBConv space at 8 px with 4/32 bits: compiles in seconds, for training, device and
    evaluator tests that do not depend on the network."""
    from search_spaces import mobilenet

    return mobilenet.MobileNetSpace(
        mobilenet.Skeleton(
            name="toy",
            stem_width=8,
            first_width=8,
            stages=(mobilenet.Stage(8, 1, "relu", (1, 2)), mobilenet.Stage(16, 2, "relu", (1, 2))),
            head_width=16,
            stem_stride=1,
            num_classes=10,
            resolutions=(8,),
            default_resolution=8,
            kernels=(3, 5),
            expands=(2, 3),
        ),
        bits=(4, 32),
    )


SYNTHETIC_OVERHEAD_MS = 0.25
"""The per-network overhead of `synthetic_table`'s tables."""


@pytest.fixture(scope="session")
def synthetic_table():
    """``synthetic_table(space, resolution)``: a latency table of 1 ms per 10 MMACs + 0.01 ms for every
    layer of `space` at `resolution` px, plus ``synthetic_table.overhead_ms`` per network (no device
    is timed)."""
    from nasx.hardware.latency import LatencyTable, ProfileSettings

    def make(space, resolution: int, *, device: str = "test-device", path: str = "t.json") -> LatencyTable:
        settings = ProfileSettings(
            f"{space.name}:{space.variant}", resolution, width_mult=space.width_mult, bits=space.bits
        )
        entries = {
            block: 1e-7 * sum(layer.costs().macs for layer in block) + 0.01
            for block in space.distinct_blocks(resolution)
        }
        return LatencyTable(settings, device, "0.test", entries, overhead_ms=make.overhead_ms, path=path)

    make.overhead_ms = SYNTHETIC_OVERHEAD_MS
    return make


@pytest.fixture(scope="session")
def tiny_supernet(tmp_path_factory) -> tuple[Path, dict]:
    """A mobilenet supernet trained 200 steps on 8-px digits by `nasx train-supernet` (its folder,
    its --json summary), shared by the training, CLI and export tests: a minute or two."""
    import contextlib
    import io
    import json

    from nasx.cli import main

    out = tmp_path_factory.mktemp("supernet") / "run"
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        assert main([*_TINY_TRAIN, "--out", str(out), "--json"]) == 0
    return out, json.loads(buffer.getvalue())
