"""The layer primitives of the analytic cost model, checked against hand counts."""

from __future__ import annotations

from nasx.costs import Costs, conv2d, dense, out_size


def test_conv2d_counts() -> None:
    c = conv2d(16, 32, 3, 32, stride=2)  # 16x16 output
    assert c.macs == 16 * 32 * 9 * 16 * 16
    assert c.params == 16 * 32 * 9 + 2 * 32
    assert c.weight_bytes == 4 * c.params
    assert c.activation_bytes == 4 * (16 * 32 * 32 + 32 * 16 * 16)
    assert c.layers == 1


def test_depthwise_and_asymmetric_kernels() -> None:
    dw = conv2d(64, 64, 5, 14, groups=64, bn=False)
    assert dw.macs == 64 * 25 * 14 * 14 and dw.params == 64 * 25
    asym = conv2d(8, 8, (1, 7), 10, bn=False)
    assert asym.macs == 8 * 8 * 7 * 100 and asym.params == 8 * 8 * 7


def test_valid_padding() -> None:
    assert out_size(224, 3, 2, "valid") == 111
    assert out_size(224, 3, 2, "same") == 112
    assert conv2d(3, 32, 3, 224, stride=2, padding="valid").macs == 3 * 32 * 9 * 111 * 111


def test_quantized_weight_bytes() -> None:
    n = 16 * 32 * 9
    c4 = conv2d(16, 32, 3, 8, bits=4)
    assert c4.weight_bytes == n // 2 + 4 * 32 + 4 * 2 * 32  # packed nibbles + scales + BN
    c8 = conv2d(16, 32, 3, 8, bits=8, bn=False)
    assert c8.weight_bytes == n + 4 * 32
    fc = dense(10, 3, bits=4)
    assert fc.weight_bytes == 15 + 4 * 3 + 4 * 3  # ceil(30 * 4 / 8), scales, bias


def test_composition() -> None:
    a = Costs(macs=10, params=2, weight_bytes=8, activation_bytes=100, layers=1)
    b = Costs(macs=5, params=1, weight_bytes=4, activation_bytes=300, layers=2)
    assert a + b == Costs(macs=15, params=3, weight_bytes=12, activation_bytes=300, layers=3)
    assert 3 * a == Costs(macs=30, params=6, weight_bytes=24, activation_bytes=100, layers=3)
    assert 0 * a == Costs()
    assert a.holding(50).activation_bytes == 150
    assert (a + b.replace(latency_ms=2.0)).latency_ms == 2.0
