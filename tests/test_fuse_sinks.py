"""Fused kernels that read blocks of larger arrays in place (views) and write
their result into a box of the array compute() fills (stores, spans), and
compute()'s use of them: results stay bit-identical to the unfused graph and
to NumPy."""
import pickle

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import cdask
from cdask._core import fused_kernel, fused_rebind

CHAIN = [(np.add, [("in", 0), ("const", 1)]), (np.multiply, [("step", 0), ("const", 2)]),
         (np.power, [("step", 1), ("const", 3)])]


def _chain(x):
    return ((x + 1) * 2) ** 3


@st.composite
def boxes(draw):
    ndim = draw(st.integers(1, 3))
    shape = tuple(draw(st.integers(1, 9)) for _ in range(ndim))
    start = tuple(draw(st.integers(0, s - 1)) for s in shape)
    box = tuple(draw(st.integers(0, s - a)) for s, a in zip(shape, start))
    dest_extra = tuple(draw(st.integers(0, 3)) for _ in range(ndim))
    dstart = tuple(draw(st.integers(0, e)) for e in dest_extra)
    return shape, start, box, dstart, dest_extra


@settings(max_examples=80, deadline=None)
@given(boxes(), st.integers(0, 2**32 - 1))
def test_view_and_store_match_numpy(b, seed):
    shape, start, box, dstart, extra = b
    a = np.random.default_rng(seed).standard_normal(shape)
    sl = tuple(slice(s, s + n) for s, n in zip(start, box))
    ref = _chain(a[sl])
    k = fused_kernel(["f8"], CHAIN, views=[(start, box)])
    assert k(a).tobytes() == ref.tobytes()
    dest = np.full(tuple(n + e for n, e in zip(box, extra)), -7.0)
    ks = fused_kernel(["f8"], CHAIN, views=[(start, box)], store=dstart)
    assert int(ks(a, dest)) == ref.size
    dsl = tuple(slice(s, s + n) for s, n in zip(dstart, box))
    assert dest[dsl].tobytes() == ref.tobytes()
    untouched = np.ones(dest.shape, bool)
    untouched[dsl] = False
    assert (dest[untouched] == -7.0).all()


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 4000), st.integers(1, 9), st.integers(0, 2**32 - 1))
def test_spans_cover_the_block_once(n, parts, seed):
    a = np.random.default_rng(seed).standard_normal(n)
    dest = np.zeros(n)
    cuts = sorted(set([0, n] + list(np.random.default_rng(seed).integers(0, n, parts))))
    base = fused_kernel(["f8"], CHAIN)
    total = 0
    for lo, hi in zip(cuts, cuts[1:]):
        total += int(fused_rebind(base, store=(0,), span=(lo, hi))(a, dest))
    assert total == n
    assert dest.tobytes() == _chain(a).tobytes()


def test_long_rows_read_and_written_in_place():
    # rows long enough to be walked row by row (pointing into the input's
    # rows, writing into the destination's), for several dtypes
    rng = np.random.default_rng(1)
    for dt, steps in [("f8", CHAIN),
                      ("f4", [(np.sqrt, [("in", 0)]), (np.add, [("step", 0), ("in", 0)])]),
                      ("i4", [(np.multiply, [("in", 0), ("const", 3)]),
                              (np.greater, [("step", 0), ("const", 0)])])]:
        a = (rng.standard_normal((7, 3000)) * 100).astype(dt)
        for cols in (512, 640, 1000, 2048):
            k = fused_kernel([dt], steps, views=[((2, 100), (4, cols))], store=(1, 50))
            ref = k.__reduce__()  # noqa: F841 - pickles
            plain = fused_kernel([dt], steps)
            with np.errstate(all="ignore"):
                want = plain(np.ascontiguousarray(a[2:6, 100:100 + cols]))
                dest = np.zeros((6, 3000), dtype=want.dtype)
                k(a, dest)
            assert dest[1:5, 50:50 + cols].tobytes() == want.tobytes(), (dt, cols)
            assert not dest[0].any() and not dest[5].any()


def test_pickle_and_repr_show_views_and_store():
    k = fused_kernel(["f8"], CHAIN, views=[((1, 2), (3, 4))], store=(5, 6), span=(2, 9))
    r = repr(k)
    assert "power(multiply(add(in0, 1), 2), 3)" in r
    assert "in0 = in0[1:4, 2:6]" in r and "into out[5:, 6:]" in r and "(2, 9)" in r
    k2 = pickle.loads(pickle.dumps(k))
    assert repr(k2) == r
    a = np.arange(100.0).reshape(10, 10)
    d1, d2 = np.zeros((10, 12)), np.zeros((10, 12))
    k(a, d1)
    k2(a, d2)
    assert d1.tobytes() == d2.tobytes() and d1.any()


def test_bad_views_stores_and_spans():
    a = np.ones((4, 5))
    with pytest.raises(ValueError, match="does not fit"):
        fused_kernel(["f8"], CHAIN, views=[((2, 0), (3, 5))])(a)
    with pytest.raises(ValueError, match="axes"):
        fused_kernel(["f8"], CHAIN, views=[((0,), (3,))])(a)
    with pytest.raises(ValueError, match="one entry per input"):
        fused_kernel(["f8"], CHAIN, views=[None, None])
    with pytest.raises(ValueError, match="span needs store"):
        fused_kernel(["f8"], CHAIN, span=(0, 3))
    with pytest.raises(ValueError, match=">= 0"):
        fused_kernel(["f8"], CHAIN, views=[((-1, 0), (3, 5))])
    with pytest.raises(TypeError, match="destination"):
        fused_kernel(["f8"], CHAIN, store=(0, 0))(a, np.zeros((4, 5), dtype="f4"))
    with pytest.raises(ValueError, match="does not fit its destination"):
        fused_kernel(["f8"], CHAIN, store=(1, 0))(a, np.zeros((4, 5)))
    with pytest.raises(TypeError, match="writeable, C-contiguous"):
        fused_kernel(["f8"], CHAIN, store=(0, 0))(a, np.zeros((4, 10))[:, ::2])
    ro = np.zeros((4, 5))
    ro.flags.writeable = False
    with pytest.raises(TypeError, match="writeable, C-contiguous"):
        fused_kernel(["f8"], CHAIN, store=(0, 0))(a, ro)
    with pytest.raises(TypeError, match="fused Kernel"):
        fused_rebind(cdask.kernels.add)


# ------------------------------------------------------------ through compute

DTYPES = ["bool", "int8", "int32", "uint16", "float32", "float64", "complex128"]


@st.composite
def wide(draw):
    rows = draw(st.integers(1, 5))
    cols = draw(st.integers(1, 2200))
    dtype = draw(st.sampled_from(DTYPES))
    rc = draw(st.integers(1, rows))
    cc = draw(st.sampled_from([cols, max(1, cols // 2), 512, 640, 1000, 1024, 3]))
    offset = draw(st.integers(0, 3))
    return rows, cols, dtype, (rc, min(cc, cols)), offset, draw(st.integers(0, 2**32 - 1))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(wide(), st.sampled_from(["mem", "slice", "npy"]))
def test_compute_fused_equals_unfused_and_numpy(tmp_path_factory, w, source):
    rows, cols, dtype, chunks, offset, seed = w
    rng = np.random.default_rng(seed)
    big = (rng.standard_normal((rows + offset, cols + offset)) * 50).astype(dtype)
    xn = big[offset:, offset:]
    if source == "mem":
        xn = np.ascontiguousarray(xn)
        x = cdask.from_array(xn, chunks=chunks)
    elif source == "slice":
        x = cdask.from_array(xn, chunks=chunks)        # blocks of a non-contiguous array
    else:
        xn = np.ascontiguousarray(xn)
        path = tmp_path_factory.mktemp("npy") / "x.npy"
        np.save(path, xn)
        x = cdask.from_npy(path, chunks=chunks)
    with np.errstate(all="ignore"):
        expr = (x * 3 - 1) * x + 2 if dtype != "bool" else (x ^ True) | x
        ref = (xn * 3 - 1) * xn + 2 if dtype != "bool" else (xn ^ True) | xn
        fused = expr.compute()
        unfused = expr.compute(fuse=False)
    assert fused.dtype == unfused.dtype == ref.dtype
    assert fused.tobytes() == unfused.tobytes() == ref.tobytes()


def test_few_big_blocks_are_split_into_spans():
    xn = np.random.default_rng(0).standard_normal((1500, 2000))
    x = cdask.from_array(xn, chunks=(1500, 1000))          # 2 blocks, 2 workers
    y = _chain(x)
    st_ = cdask.Stats()
    got = y.compute(num_workers=2, stats=st_, record=True)
    assert got.tobytes() == _chain(xn).tobytes()
    names = [r[1] for r in st_.records]
    assert names.count("fused") > 2                        # spans of the two blocks
    assert set(names) == {"fused"}                         # no store_block copies
    # one worker: one task per block
    st1 = cdask.Stats()
    assert y.compute(num_workers=1, stats=st1, record=True).tobytes() == got.tobytes()
    assert [r[1] for r in st1.records].count("fused") == 2


def test_store_holds_no_block_sized_chunk():
    xn = np.random.default_rng(0).standard_normal((2000, 2000))
    x = cdask.from_array(xn, chunks=(500, 2000))
    y = _chain(x)
    st_ = cdask.Stats()
    assert y.compute(stats=st_).tobytes() == _chain(xn).tobytes()
    block = 500 * 2000 * 8
    assert st_.peak_bytes < block, st_.peak_bytes
    st2 = cdask.Stats()
    y.compute(stats=st2, fuse=False)
    assert st2.peak_bytes >= block


def test_inputs_read_in_place_also_feed_reductions():
    xn = np.random.default_rng(0).standard_normal((300, 700))
    x = cdask.from_array(xn[:, 50:650], chunks=(100, 200))
    s = ((x + 1) * 2).sum()
    np.testing.assert_allclose(s.compute(), ((xn[:, 50:650] + 1) * 2).sum(), rtol=1e-12)
