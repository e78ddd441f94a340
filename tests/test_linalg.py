"""Tensor contraction (issue 5, item 4): tensordot, dot, matmul/@, vdot, outer and
einsum against NumPy over random shapes, chunkings and dtypes; the talk's
A.T.dot(B) (transposed operand read through gemm's trans flag, no transpose
tasks), batch matmul, 1-d promotion, the gemm kernel itself, the BLAS thread
policy, and bad input."""

import pickle

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

import cdask
import cdask as da
from cdask.array import contraction as linalg

from blockcheck import check, chunkings, sample

SETTINGS = settings(max_examples=40, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])

FLOATS = ["float32", "float64", "complex64", "complex128"]
DTYPES = FLOATS + ["int8", "int64", "uint16", "bool"]


def _tol(dtype):
    return (2e-4, 2e-4) if np.dtype(dtype) in (np.float32, np.complex64) else (1e-10, 1e-10)


def expect(x, ref):
    """check() with NumPy's own floating-point tolerance for contractions."""
    ref = np.asarray(ref)
    if ref.dtype.kind in "fc":
        rtol, atol = _tol(ref.dtype)
        return check(x, ref, exact=False, rtol=rtol, atol=atol)
    return check(x, ref)


def _arr(data, shape, dtype, seed, transposed=None):
    A = sample(shape, dtype, seed)
    if transposed is None:
        transposed = len(shape) >= 2 and data.draw(st.booleans())
    if transposed:
        # the operand is a lazy transpose of an array stored the other way round
        perm = data.draw(st.permutations(range(len(shape))))
        inv = np.argsort(perm)
        S = np.ascontiguousarray(np.transpose(A, perm))
        s = da.from_array(S, chunks=chunkings(data.draw, st, S.shape))
        return A, s.transpose(tuple(inv))
    return A, da.from_array(A, chunks=chunkings(data.draw, st, A.shape))


# ---------------------------------------------------------------- hypothesis


@SETTINGS
@given(data=st.data())
def test_tensordot(data):
    dta = data.draw(st.sampled_from(DTYPES))
    dtb = data.draw(st.sampled_from(DTYPES))
    nc = data.draw(st.integers(0, 2))
    con = [data.draw(st.integers(1, 5)) for _ in range(nc)]
    fa = [data.draw(st.integers(1, 4)) for _ in range(data.draw(st.integers(0, 2)))]
    fb = [data.draw(st.integers(1, 4)) for _ in range(data.draw(st.integers(0, 2)))]
    # place the contracted axes anywhere in each operand
    pa = data.draw(st.permutations(range(nc + len(fa))))
    pb = data.draw(st.permutations(range(nc + len(fb))))
    sa = [0] * (nc + len(fa))
    sb = [0] * (nc + len(fb))
    for i, p in enumerate(pa):
        sa[p] = con[i] if i < nc else fa[i - nc]
    for i, p in enumerate(pb):
        sb[p] = con[i] if i < nc else fb[i - nc]
    A, a = _arr(data, tuple(sa), dta, 1)
    B, b = _arr(data, tuple(sb), dtb, 2)
    axes = (list(pa[:nc]), list(pb[:nc]))
    expect(da.tensordot(a, b, axes=axes), np.tensordot(A, B, axes=axes))
    if nc == 0 or data.draw(st.booleans()):
        n = data.draw(st.integers(0, min(A.ndim, B.ndim)))
        if A.shape[A.ndim - n:] == B.shape[:n]:
            expect(da.tensordot(a, b, axes=n), np.tensordot(A, B, axes=n))


@SETTINGS
@given(data=st.data())
def test_matmul_batch_and_1d(data):
    dt = data.draw(st.sampled_from(DTYPES))
    m, k, n = (data.draw(st.integers(1, 5)) for _ in range(3))
    nba, nbb = data.draw(st.integers(0, 2)), data.draw(st.integers(0, 2))
    batch = [data.draw(st.integers(1, 3)) for _ in range(max(nba, nbb))]
    ba = [b if data.draw(st.booleans()) else 1 for b in batch[len(batch) - nba:]]
    bb = [b if data.draw(st.booleans()) else 1 for b in batch[len(batch) - nbb:]]
    sa = (k,) if data.draw(st.integers(0, 3)) == 0 else tuple(ba) + (m, k)
    sb = (k,) if data.draw(st.integers(0, 3)) == 0 else tuple(bb) + (k, n)
    A, a = _arr(data, sa, dt, 3)
    B, b = _arr(data, sb, dt, 4)
    ref = np.matmul(A, B)
    expect(a @ b, ref)
    expect(np.matmul(a, b), ref)
    expect(a.__matmul__(b), ref)
    expect(b.__rmatmul__(A), ref)


@SETTINGS
@given(data=st.data())
def test_dot(data):
    dta = data.draw(st.sampled_from(DTYPES))
    dtb = data.draw(st.sampled_from(DTYPES))
    k = data.draw(st.integers(1, 5))
    nda, ndb = data.draw(st.integers(0, 3)), data.draw(st.integers(0, 3))
    sa = tuple(data.draw(st.integers(1, 3)) for _ in range(nda - 1)) + ((k,) if nda else ())
    if ndb >= 2:
        sb = tuple(data.draw(st.integers(1, 3)) for _ in range(ndb - 2)) + \
            (k, data.draw(st.integers(1, 4)))
    else:
        sb = (k,) if ndb == 1 else ()
    A, a = _arr(data, sa, dta, 5)
    B, b = _arr(data, sb, dtb, 6)
    ref = np.dot(A, B)
    expect(da.dot(a, b), ref)
    expect(np.dot(a, b), ref)
    if nda:
        expect(a.dot(b), ref)


@SETTINGS
@given(data=st.data())
def test_vdot_outer(data):
    dta = data.draw(st.sampled_from(DTYPES))
    dtb = data.draw(st.sampled_from(DTYPES))
    shape = tuple(data.draw(st.integers(1, 4)) for _ in range(data.draw(st.integers(1, 3))))
    A, a = _arr(data, shape, dta, 7)
    B, b = _arr(data, shape[::-1], dtb, 8)
    expect(da.vdot(a, b), np.vdot(A, B))
    expect(np.vdot(a, b), np.vdot(A, B))
    expect(da.outer(a, b), np.outer(A, B))
    expect(np.outer(a, b), np.outer(A, B))


@st.composite
def einsum_cases(draw):
    letters = "ijkl"
    sizes = {c: draw(st.integers(1, 4)) for c in letters}
    n_arr = draw(st.integers(1, 3))
    inds = []
    for _ in range(n_arr):
        k = draw(st.integers(1, 3))
        t = "".join(draw(st.permutations(letters))[:k])
        if draw(st.integers(0, 5)) == 0:      # a repeated label: a diagonal
            t = t + t[0]
        inds.append(t)
    used = sorted(set("".join(inds)))
    out = "".join(draw(st.permutations(used))[:draw(st.integers(0, len(used)))])
    implicit = draw(st.integers(0, 4)) == 0
    return sizes, inds, out, implicit


@SETTINGS
@given(case=einsum_cases(), data=st.data())
def test_einsum(case, data):
    sizes, inds, out, implicit = case
    dt = data.draw(st.sampled_from(["float64", "float32", "complex128", "int64", "bool"]))
    arrays, ops = [], []
    for n, t in enumerate(inds):
        A, a = _arr(data, tuple(sizes[c] for c in t), dt, 10 + n)
        arrays.append(A)
        ops.append(a)
    subs = ",".join(inds) + ("" if implicit else "->" + out)
    expect(da.einsum(subs, *ops), np.einsum(subs, *arrays))
    expect(np.einsum(subs, *ops), np.einsum(subs, *arrays))


def test_einsum_ellipsis_and_dtype():
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((3, 1, 4, 5)), rng.standard_normal((2, 5, 6))
    a, b = da.from_array(x, chunks=2), da.from_array(y, chunks=(1, 3, 4))
    expect(da.einsum("...ij,...jk->...ik", a, b), np.einsum("...ij,...jk->...ik", x, y))
    expect(da.einsum("...ij,...jk", a, b), np.einsum("...ij,...jk", x, y))
    i = np.arange(12, dtype=np.int32).reshape(3, 4)
    expect(da.einsum("ij,ij->j", da.from_array(i, chunks=2), da.from_array(i, chunks=3),
                     dtype=np.float64), np.einsum("ij,ij->j", i, i, dtype=np.float64))
    with pytest.raises(TypeError):
        da.einsum("ij->i", da.from_array(x[0, 0]), dtype=np.int32)


# ---------------------------------------------------------------- the talk


def test_talk_AT_dot_B_reads_A_untransposed():
    rng = np.random.default_rng(0)
    A = rng.standard_normal((60, 50))
    B = rng.standard_normal((60, 40))
    a = da.from_array(A, chunks=(25, 20))
    b = da.from_array(B, chunks=(15, 20))
    r = a.T.dot(b)
    expect(r, A.T.dot(B))
    # every gemm task reads blocks of a itself (transposed by gemm), not transpose tasks
    (g,) = [k for k in r._layers if k.startswith("dot-")]
    for task in r._layers[g].values():
        assert isinstance(task[0], cdask.Kernel) and task[0].name == "gemm"
        assert all(not k[0].startswith("transpose-") for k in task[1] + task[2])
    expect(a.T.dot(b) - b.mean(axis=0), A.T.dot(B) - B.mean(axis=0))
    expect(a.T @ b, A.T @ B)
    expect(b.T @ a, B.T @ A)


def test_in_memory_operands_read_as_row_panels():
    # A @ B: A's rows (whole contracted axis) and all of B, as contiguous views
    A, B = sample((30, 20), "float64", 1), sample((20, 25), "float64", 2)
    a, b = da.from_array(A, chunks=(8, 7)), da.from_array(B, chunks=(6, 9))
    for r, ref in ((a @ b, A @ B), (b.T @ a.T, B.T @ A.T), (a.T.T.dot(b), A @ B)):
        (g,) = [k for k in r._layers if k.startswith(("dot-", "matmul-"))]
        for task in r._layers[g].values():
            blocks = [r._layers[k[0]][k] for k in task[1] + task[2]]
            assert all(isinstance(v, np.ndarray) and v.flags.c_contiguous for v in blocks)
        expect(r, ref)
    assert (a @ b).chunks == a.chunks[:1] + b.chunks[1:]


def test_contracted_chunks_unified():
    A, B = sample((7, 9), "float64", 1), sample((9, 5), "float64", 2)
    a = da.from_array(A, chunks=(3, (2, 7)))
    b = da.from_array(B, chunks=((4, 1, 4), 2)) * 1      # computed blocks: no panels
    r = da.dot(a, b)
    assert r.chunks == ((3, 3, 1), (2, 2, 1))
    (g,) = [k for k in r._layers if k.startswith("dot-")]
    # contracted chunks (2, 7) and (4, 1, 4) unified to (2, 2, 1, 4): four pairs a task
    assert all(len(t[1]) == len(t[2]) == 4 for t in r._layers[g].values())
    expect(r, A @ B)


def test_split_for_balance(monkeypatch):
    monkeypatch.setattr(linalg, "_MIN_SPLIT_FLOPS", 0)
    A, B = sample((600, 400), "float64", 1), sample((400, 600), "float64", 2)
    a = da.from_array(A, chunks=(200, 200))
    b = da.from_array(B, chunks=(200, 200))
    with cdask.config.set(num_workers=2):
        r = a.dot(b)
    assert len(r.chunks[0]) * len(r.chunks[1]) == 18
    expect(r, A @ B)
    expect(a.T.dot(b.T), A.T @ B.T)


def test_gemm_kernel_direct_and_pickle():
    import struct

    p = struct.pack("=I7i4q", 0x6D6D6731, 0, 0, 0, 1, 1, 1, 0, 1, 3, 0, -1)
    k = cdask.Kernel("gemm", p)
    assert pickle.loads(pickle.dumps(k)) == k
    rng = np.random.default_rng(0)
    As = [rng.standard_normal((kk, 4)) for kk in (3, 0, 2)]     # stored K x M: transposed
    Bs = [rng.standard_normal((kk, 5)) for kk in (3, 0, 2)]
    got = k(As, Bs)
    ref = sum(a.T @ b for a, b in zip(As, Bs))[1:3]
    np.testing.assert_allclose(got, ref, rtol=1e-12)
    with pytest.raises(ValueError, match="contracted lengths"):
        k([np.ones((2, 3))], [np.ones((3, 3))])
    with pytest.raises(TypeError, match="float32, float64"):
        k([np.ones((2, 3), int)], [np.ones((2, 3), int)])
    with pytest.raises(ValueError, match="bad parameters"):
        cdask.kernels.gemm(np.ones((2, 2)), np.ones((2, 2)))


def test_graph_runs_on_dask_scheduler():
    dask = pytest.importorskip("dask")
    A, B = sample((6, 5), "float64", 1), sample((5, 4), "complex64", 2)
    r = da.from_array(A, chunks=2) @ da.from_array(B, chunks=3)
    (got,) = dask.compute(r, scheduler="threads")
    np.testing.assert_allclose(got, A @ B, rtol=1e-5, atol=1e-5)


# ---------------------------------------------------------------- BLAS threads


def _blas_threads(others_only=False):
    import os
    from threadpoolctl import threadpool_info

    own = os.path.realpath(cdask._openblas.library_path())
    return sorted((d["filepath"], d["num_threads"]) for d in threadpool_info()
                  if d["user_api"] == "blas" and
                  not (others_only and os.path.realpath(d["filepath"]) == own))


def test_blas_threads_capped_during_and_restored_after():
    before = _blas_threads()
    own = cdask._openblas.load()
    own_before = own.scipy_openblas_get_num_threads()
    seen = []

    def probe(block):
        seen.append([n for _, n in _blas_threads(others_only=True)])
        return block

    A, B = sample((40, 30), "float64", 1), sample((30, 20), "float64", 2)
    r = (da.from_array(A, chunks=10) @ da.from_array(B, chunks=10)).map_blocks(probe)
    seen.clear()           # map_blocks tried probe once, outside compute, to infer the dtype
    np.testing.assert_allclose(r.compute(), A @ B, rtol=1e-12)
    # NumPy's BLAS is capped while the contraction's graph runs (cdask's own
    # OpenBLAS is held at one thread by the gemm kernel itself while it runs)
    assert seen and all(s and all(n == 1 for n in s) for s in seen), seen
    assert _blas_threads() == before
    assert own.scipy_openblas_get_num_threads() == own_before
    # the C kernel alone (cdask.get, no compute()) restores its own setting too
    cdask.get(r.__dask_graph__(), r._keys_flat())
    assert own.scipy_openblas_get_num_threads() == own_before
    assert _blas_threads() == before


# ---------------------------------------------------------------- bad input


def test_shape_errors_name_the_shapes():
    a = da.ones((2, 3), chunks=2)
    b = da.ones((4, 5), chunks=2)
    with pytest.raises(ValueError, match=r"\(2, 3\).*\(4, 5\)"):
        da.dot(a, b)
    with pytest.raises(ValueError, match=r"\(2, 3\).*\(4, 5\)"):
        a @ b
    with pytest.raises(ValueError, match=r"shape-mismatch.*\(2, 3\).*\(4, 5\)"):
        da.tensordot(a, b, axes=([1], [0]))
    with pytest.raises(ValueError, match="shape-mismatch"):
        da.tensordot(a, b, axes=([0, 1], [0]))
    with pytest.raises(ValueError, match="enough dimensions"):
        da.matmul(a, da.from_array(np.float64(2)))
    with pytest.raises(ValueError, match="enough dimensions"):
        a @ 2
    with pytest.raises(ValueError, match="enough dimensions"):
        2 @ a
    with pytest.raises(ValueError, match="broadcast"):
        da.ones((2, 2, 3)) @ da.ones((3, 3, 4))
    with pytest.raises(ValueError, match="lengths 3 and 4"):
        da.einsum("ij,jk->ik", a, b)
    with pytest.raises(ValueError, match=r"vector lengths"):
        da.vdot(a, b)
    for f in (np.dot, np.matmul):
        with pytest.raises(ValueError):
            f(np.ones((2, 3)), np.ones((4, 5)))   # NumPy refuses the same


def test_unknown_chunks_point_to_compute_chunk_sizes():
    x = da.from_array(np.arange(10.0), chunks=3)
    y = x[x > 4]
    with pytest.raises(ValueError, match="compute_chunk_sizes"):
        da.dot(y, y)
    with pytest.raises(ValueError, match="compute_chunk_sizes"):
        da.einsum("i,i->", y, y)
    y = y.compute_chunk_sizes()
    expect(da.dot(y, y), np.dot(np.arange(5.0, 10), np.arange(5.0, 10)))


def test_numpy_functions_stay_lazy():
    import warnings

    A = sample((3, 4), "float64", 1)
    B = sample((4, 5), "float64", 2)
    b = da.from_array(B, chunks=2)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for r, ref in ((A @ b, A @ B), (np.dot(A, b), A @ B), (np.tensordot(A, b, 1), A @ B),
                       (np.einsum("ij,jk", A, b), A @ B), (np.outer(A, b), np.outer(A, B)),
                       (np.vdot(A[:, :2], b[:3, :2]), np.vdot(A[:, :2], B[:3, :2]))):
            assert isinstance(r, da.Array)
            expect(r, ref)


def test_exports():
    for n in ("tensordot", "dot", "matmul", "vdot", "outer", "einsum"):
        assert getattr(cdask, n) is getattr(cdask.array, n) is getattr(linalg, n)


def test_gemm_kernel_holds_own_openblas_at_one_thread_while_running():
    import time

    own = cdask._openblas.load()
    before = own.scipy_openblas_get_num_threads()
    if before == 1:
        pytest.skip("cdask's OpenBLAS already runs one thread")
    rng = np.random.default_rng(0)
    A = rng.standard_normal((1200, 1200))
    k = linalg._gemm_kernel(0, 0, 0, 1, 1, 0, 0)

    def poll():
        seen, t_end = set(), time.monotonic() + 5
        while time.monotonic() < t_end and 1 not in seen:
            seen.add(own.scipy_openblas_get_num_threads())
        return sorted(seen)

    # g1 runs three times longer than g0: when both workers start on the
    # products, the poll (waiting for a free slot) still overlaps g1
    dsk = {"g0": (k, [A] * 4, [A] * 4), "g1": (k, [A] * 12, [A] * 12)}
    dsk["p"] = (poll,)
    seen, g0, _ = cdask.get(dsk, ["p", "g0", "g1"], num_workers=2)
    assert 1 in seen, seen
    np.testing.assert_allclose(g0, 4 * (A @ A), rtol=1e-9, atol=1e-9)
    assert own.scipy_openblas_get_num_threads() == before


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_norm_every_ord_and_axis_of_stacks(data):
    # every ord and axis numpy.linalg.norm takes, on 3-d and 4-d arrays:
    # the SVD norms (2, -2, 'nuc') of stacks of matrices included
    nd = data.draw(st.integers(3, 4))
    shape = tuple(data.draw(st.integers(1, 5)) for _ in range(nd))
    chunks = chunkings(data.draw, st, shape)
    dtype = data.draw(st.sampled_from(["f8", "f4", "i4", "c16"]))
    a = np.random.default_rng(data.draw(st.integers(0, 99))).standard_normal(shape) * 3
    a = (a + 1j * a[..., ::-1]) if dtype == "c16" else a.astype(dtype)
    x = da.from_array(a, chunks=chunks)
    axes = data.draw(st.sampled_from(
        [None, 0, -1, 1] + [tuple(p) for p in
                            __import__("itertools").permutations(range(-nd, 0), 2)][:8]))
    mat = isinstance(axes, tuple)
    ords = ([None, "fro", "nuc", 1, -1, 2, -2, np.inf, -np.inf] if mat
            else [None, 0, 1, -1, 2, -2, 3, 0.5, np.inf, -np.inf])
    ord_ = data.draw(st.sampled_from(ords))
    keepdims = data.draw(st.booleans())
    try:
        want = np.linalg.norm(a, ord=ord_, axis=axes, keepdims=keepdims)
    except ValueError:
        # numpy refuses (an ord with axis=None on N-d): so does cdask
        with pytest.raises(ValueError):
            da.linalg.norm(x, ord=ord_, axis=axes, keepdims=keepdims).compute()
        return
    got = da.linalg.norm(x, ord=ord_, axis=axes, keepdims=keepdims).compute()
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=1e-4 if dtype == "f4" else 1e-10)


def test_norm_bad_arguments():
    x = da.ones((3, 4, 5), chunks=2)
    with pytest.raises(ValueError, match="Invalid norm order"):
        da.linalg.norm(x, ord="fro", axis=0)
    with pytest.raises(ValueError, match="Invalid norm order"):
        da.linalg.norm(x, ord=3, axis=(0, 1))
    with pytest.raises(ValueError, match="Duplicate axes"):
        da.linalg.norm(x, axis=(1, 1))
    with pytest.raises(np.exceptions.AxisError):
        da.linalg.norm(x, axis=(0, 3))
    u = x[x[:, 0, 0] > 0]
    with pytest.raises(ValueError, match="unknown chunk sizes"):
        da.linalg.norm(u, ord=2, axis=(0, 1))
