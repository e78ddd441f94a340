"""cdask.linalg decompositions and solvers (python/cdask/array/decompositions.py):
reconstruction against the definitions and against NumPy/SciPy, over random
shapes and chunkings, float32/float64 (and a few complex/int cases), plus
error cases."""

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

import cdask
import cdask as da

scipy_linalg = pytest.importorskip("scipy.linalg")

SETTINGS = dict(max_examples=25, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

TOL = {np.dtype(np.float64): 1e-10, np.dtype(np.float32): 2e-4,
       np.dtype(np.complex128): 1e-10}


def tol(dt):
    return TOL[np.dtype(dt)]


def blocks(x):
    """Compute x block by block; assert every block has the shape its chunks
    promise and x's dtype; return the assembled array."""
    assert isinstance(x, cdask.Array)
    keys = x._keys_flat()
    got = cdask.get(x.__dask_graph__(), keys)
    for k, b in zip(keys, got):
        want = tuple(x.chunks[d][i] for d, i in enumerate(k[1:]))
        assert np.shape(b) == want, (k, np.shape(b), want)
        assert np.asarray(b).dtype == x.dtype, (k, np.asarray(b).dtype, x.dtype)
    out = x.compute()
    assert out.shape == x.shape and out.dtype == x.dtype
    return out


def rand(shape, dtype, seed):
    rng = np.random.default_rng(seed)
    a = rng.standard_normal(shape)
    if np.dtype(dtype).kind == "c":
        a = a + 1j * rng.standard_normal(shape)
    return a.astype(dtype)


def split(n, draw, lo=1):
    """A random chunking of length n (parts >= lo where possible)."""
    parts, left = [], n
    while left:
        p = draw(st.integers(min(lo, left), left))
        parts.append(p)
        left -= p
    return tuple(parts)


def close(a, b, dt, scale=1.0):
    t = tol(dt) * scale
    np.testing.assert_allclose(a, b, rtol=t, atol=t)


def check_orthonormal_cols(q, dt):
    k = q.shape[1]
    close(q.conj().T @ q, np.eye(k), dt, 10)


# ---------------------------------------------------------------------------
# namespace

def test_namespace():
    import cdask.array.linalg as la

    for name in ("tsqr", "sfqr", "qr", "svd", "svd_compressed", "compression_level",
                 "compression_matrix", "lu", "cholesky", "solve_triangular", "solve", "inv",
                 "lstsq", "norm"):
        assert getattr(da.linalg, name) is getattr(la, name)
    assert da.linalg is la
    # not dumped into the top-level namespace (dask.array has no da.qr)
    assert not hasattr(da, "qr") and not hasattr(da, "solve")
    # the contraction functions are still there
    assert da.linalg.tensordot is da.tensordot


# ---------------------------------------------------------------------------
# QR

@settings(**SETTINGS)
@given(st.data())
def test_tsqr_reconstructs(data):
    dt = data.draw(st.sampled_from([np.float64, np.float32]))
    n = data.draw(st.integers(1, 12))
    m = data.draw(st.integers(n, 120))
    rows = split(m, data.draw)
    a = rand((m, n), dt, data.draw(st.integers(0, 10 ** 6)))
    x = da.from_array(a, chunks=(rows, n))
    q, r = da.linalg.tsqr(x)
    assert q.shape == (m, n) and r.shape == (n, n)
    assert q.chunks == (rows, (n,))
    Q, R = blocks(q), blocks(r)
    assert Q.dtype == R.dtype == np.dtype(dt)
    close(Q @ R, a, dt, 10)
    check_orthonormal_cols(Q, dt)
    assert np.all(np.tril(R, -1) == 0)
    # same R as NumPy up to the signs of its rows
    Rn = np.linalg.qr(a.astype(np.float64))[1]
    close(np.abs(R), np.abs(Rn), dt, 100)


@settings(**SETTINGS)
@given(st.data())
def test_qr_short_and_fat(data):
    dt = data.draw(st.sampled_from([np.float64, np.float32]))
    m = data.draw(st.integers(1, 10))
    n = data.draw(st.integers(m, 60))
    first = data.draw(st.integers(m, n))
    cols = (first,) + split(n - first, data.draw)
    a = rand((m, n), dt, data.draw(st.integers(0, 10 ** 6)))
    q, r = da.linalg.qr(da.from_array(a, chunks=((m,), cols)))
    assert q.shape == (m, m) and r.shape == (m, n) and r.chunks == ((m,), cols)
    Q, R = blocks(q), blocks(r)
    close(Q @ R, a, dt, 10)
    check_orthonormal_cols(Q, dt)
    assert np.all(np.tril(R, -1) == 0)


def test_tsqr_tree_bounds_stacked_height():
    # 40 blocks of 10 rows, 4 columns: merges stack at most max(10, 8) rows,
    # so the tree has several levels and no task sees all 40 R factors
    a = rand((400, 4), np.float64, 1)
    q, r = da.linalg.tsqr(da.from_array(a, chunks=(10, 4)))
    merges = [n for n in q._layers if n.startswith("tsqr-merge")]
    assert len(merges) >= 3
    for name in merges:
        for task in q._layers[name].values():
            assert len(task[1]) <= 2
    Q, R = blocks(q), blocks(r)
    close(Q @ R, a, np.float64, 10)
    check_orthonormal_cols(Q, np.float64)
    # _max_vchunk_size raises the fan-in: one level for 40 * 4 rows
    q2, _ = da.linalg.tsqr(da.from_array(a, chunks=(10, 4)), _max_vchunk_size=160)
    assert len([n for n in q2._layers if n.startswith("tsqr-merge")]) == 1
    Q2 = q2.compute()
    signs = np.sign((Q2 * Q).sum(axis=0))      # columns agree up to sign
    close(Q2 * signs, Q, np.float64, 100)


def test_tsqr_blocks_shorter_than_wide_and_wide_overall():
    a = rand((30, 8), np.float64, 2)
    q, r = da.linalg.tsqr(da.from_array(a, chunks=(3, 8)))
    Q, R = blocks(q), blocks(r)
    close(Q @ R, a, np.float64, 10)
    check_orthonormal_cols(Q, np.float64)
    # m < n with one column of blocks: q (m, m), r (m, n) as NumPy's reduced QR
    b = rand((6, 9), np.float64, 3)
    q, r = da.linalg.tsqr(da.from_array(b, chunks=(2, 9)))
    assert q.shape == (6, 6) and r.shape == (6, 9)
    Q, R = blocks(q), blocks(r)
    close(Q @ R, b, np.float64, 10)
    assert np.all(np.tril(R, -1) == 0)


def test_tsqr_unknown_chunks():
    a = rand((60, 5), np.float64, 4)
    x = da.from_array(a, chunks=(12, 5))
    y = x[x[:, 0] > -100]          # same rows, unknown chunk sizes
    assert any(np.isnan(c) for c in y.chunks[0])
    q, r = da.linalg.tsqr(y)
    Q, R = da.compute(q, r)
    close(Q @ R, a, np.float64, 10)
    check_orthonormal_cols(Q, np.float64)


def test_qr_int_and_complex():
    a = np.arange(60).reshape(20, 3) % 7
    q, r = da.linalg.qr(da.from_array(a, chunks=(6, 3)))
    assert q.dtype == np.float64
    close(blocks(q) @ blocks(r), a, np.float64, 10)
    z = rand((40, 4), np.complex128, 5)
    q, r = da.linalg.qr(da.from_array(z, chunks=(7, 4)))
    Q, R = blocks(q), blocks(r)
    close(Q @ R, z, np.complex128, 10)
    check_orthonormal_cols(Q, np.complex128)


def test_qr_errors():
    a = da.from_array(np.ones((20, 10)), chunks=(5, 5))
    with pytest.raises(ValueError, match=r"single column of blocks.*chunks"):
        da.linalg.tsqr(a)
    with pytest.raises(NotImplementedError, match="rechunk"):
        da.linalg.qr(a)
    with pytest.raises(ValueError, match="single row of blocks"):
        da.linalg.sfqr(da.from_array(np.ones((6, 10)), chunks=(6, 3)))
    with pytest.raises(ValueError):
        da.linalg.tsqr(da.ones((4, 4, 4), chunks=2))


def test_lazy():
    # building never computes: a singular matrix fails only at compute
    s = da.from_array(np.ones((6, 6)), chunks=3)
    x = da.linalg.solve(s, np.ones(6))
    inv = da.linalg.inv(s)
    with pytest.raises(np.linalg.LinAlgError):
        x.compute()
    with pytest.raises(np.linalg.LinAlgError):
        inv.compute()


# ---------------------------------------------------------------------------
# SVD

@settings(**SETTINGS)
@given(st.data())
def test_svd_reconstructs(data):
    dt = data.draw(st.sampled_from([np.float64, np.float32]))
    tall = data.draw(st.booleans())
    n = data.draw(st.integers(1, 10))
    m = data.draw(st.integers(n, 80))
    chunked = split(m, data.draw)
    a = rand((m, n), dt, data.draw(st.integers(0, 10 ** 6)))
    if tall:
        x = da.from_array(a, chunks=(chunked, n))
    else:
        a = a.T.copy()
        x = da.from_array(a, chunks=(n, chunked))
    u, s, v = da.linalg.svd(x)
    k = min(a.shape)
    assert u.shape == (a.shape[0], k) and s.shape == (k,) and v.shape == (k, a.shape[1])
    U, S, V = blocks(u), blocks(s), blocks(v)
    assert S.dtype == np.dtype(dt)
    close((U * S) @ V, a, dt, 20)
    check_orthonormal_cols(U, dt)
    check_orthonormal_cols(V.T, dt)
    close(S, np.linalg.svd(a.astype(np.float64), compute_uv=False), dt, 20)
    assert np.all(np.diff(S) <= 0)
    # coerce_signs: every right singular vector sums to >= 0 (dask's svd_flip)
    assert np.all(V.sum(axis=1) >= -tol(dt) * 10)


def test_svd_single_block_and_flip_matches_dask_convention():
    a = rand((7, 5), np.float64, 6)
    u, s, v = da.linalg.svd(da.from_array(a, chunks=-1))
    U, S, V = blocks(u), blocks(s), blocks(v)
    close((U * S) @ V, a, np.float64, 10)
    Un, Sn, Vn = np.linalg.svd(a, full_matrices=False)
    signs = np.where(Vn.sum(axis=1) >= 0, 1.0, -1.0)
    close(U, Un * signs, np.float64, 100)
    close(V, Vn * signs[:, None], np.float64, 100)


def test_svd_errors():
    with pytest.raises(NotImplementedError, match="svd_compressed"):
        da.linalg.svd(da.ones((10, 10), chunks=5))
    with pytest.raises(ValueError, match="2-d"):
        da.linalg.svd(da.ones((4, 4, 4), chunks=2))
    with pytest.raises(NotImplementedError):
        da.linalg.svd(da.ones((10, 4), chunks=(5, 4)), full_matrices=True)


@pytest.mark.parametrize("iterator", ["power", "QR"])
@pytest.mark.parametrize("dt", [np.float64, np.float32])
def test_svd_compressed(iterator, dt):
    rng = np.random.default_rng(7)
    # rank 8 plus small noise
    a = (rng.standard_normal((150, 8)) @ rng.standard_normal((8, 90))
         + 1e-6 * rng.standard_normal((150, 90))).astype(dt)
    x = da.from_array(a, chunks=(40, 30))
    u, s, v = da.linalg.svd_compressed(x, 8, iterator=iterator, n_power_iter=1, seed=1)
    assert u.shape == (150, 8) and s.shape == (8,) and v.shape == (8, 90)
    U, S, V = da.compute(u, s, v)
    assert U.dtype == np.dtype(dt)
    close(S, np.linalg.svd(a.astype(np.float64), compute_uv=False)[:8], dt, 1e4)
    np.testing.assert_allclose((U * S) @ V, a, atol=1e-4 if dt == np.float64 else 1e-2)
    check_orthonormal_cols(U, dt)
    assert np.all(V.sum(axis=1) >= -1e-6)
    # same seed, same answer; compute=True (persisting passes) agrees
    u2, s2, v2 = da.linalg.svd_compressed(x, 8, iterator=iterator, n_power_iter=1, seed=1,
                                          compute=True)
    close(s2.compute(), S, dt)


def test_compression_errors_and_level():
    assert da.linalg.compression_level(100, 10) == 20
    assert da.linalg.compression_level(15, 10) == 15
    with pytest.raises(ValueError, match="iterator"):
        da.linalg.compression_matrix(da.ones((10, 10), chunks=5), 2, iterator="bogus")


# ---------------------------------------------------------------------------
# LU, Cholesky, solves

def square_chunks(data, n):
    c = split(n, data.draw)
    return c


@settings(**SETTINGS)
@given(st.data())
def test_lu_reconstructs_and_matches_scipy(data):
    dt = data.draw(st.sampled_from([np.float64, np.float32]))
    n = data.draw(st.integers(1, 40))
    c = square_chunks(data, n)
    a = rand((n, n), dt, data.draw(st.integers(0, 10 ** 6)))
    if data.draw(st.booleans()) and c[0] < n:
        a[:c[0], :c[0]] = 0   # singular leading block: needs pivoting across blocks
    p, l, u = da.linalg.lu(da.from_array(a, chunks=(c, c)))
    P, L, U = blocks(p), blocks(l), blocks(u)
    assert P.dtype == L.dtype == U.dtype == np.dtype(dt)
    close(P @ L @ U, a, dt, 50)
    assert np.all(np.triu(L, 1) == 0) and np.all(np.diag(L) == 1)
    assert np.all(np.tril(U, -1) == 0)
    assert np.all(np.abs(L) <= 1 + tol(dt))      # partial pivoting
    assert sorted(P.sum(axis=0)) == [1] * n and sorted(P.sum(axis=1)) == [1] * n
    if dt == np.float64:
        Ps, Ls, Us = scipy_linalg.lu(a)
        np.testing.assert_array_equal(P, Ps)
        close(L, Ls, dt, 1e3)
        close(U, Us, dt, 1e3)


@settings(**SETTINGS)
@given(st.data())
def test_solve_and_inv(data):
    dt = data.draw(st.sampled_from([np.float64, np.float32]))
    n = data.draw(st.integers(1, 40))
    c = square_chunks(data, n)
    seed = data.draw(st.integers(0, 10 ** 6))
    a = rand((n, n), dt, seed) + n * np.eye(n, dtype=dt) * data.draw(st.sampled_from([0, 1]))
    vector = data.draw(st.booleans())
    b = rand((n,) if vector else (n, data.draw(st.integers(1, 7))), dt, seed + 1)
    bchunks = (split(n, data.draw),) + (() if vector else (split(b.shape[1], data.draw),))
    x = da.linalg.solve(da.from_array(a, chunks=(c, c)), da.from_array(b, chunks=bchunks))
    assert x.shape == b.shape
    X = blocks(x)
    cond = np.linalg.cond(a.astype(np.float64))
    close(X, np.linalg.solve(a.astype(np.float64), b.astype(np.float64)), dt, 10 * cond)
    ai = blocks(da.linalg.inv(da.from_array(a, chunks=(c, c))))
    close(ai @ a, np.eye(n), dt, 10 * cond)


@settings(**SETTINGS)
@given(st.data())
def test_cholesky_and_solve_pos(data):
    dt = data.draw(st.sampled_from([np.float64, np.float32]))
    n = data.draw(st.integers(1, 40))
    c = square_chunks(data, n)
    g = rand((n, n), np.float64, data.draw(st.integers(0, 10 ** 6)))
    spd = (g @ g.T + n * np.eye(n)).astype(dt)
    x = da.from_array(spd, chunks=(c, c))
    L = blocks(da.linalg.cholesky(x, lower=True))
    U = blocks(da.linalg.cholesky(x))
    assert np.all(np.triu(L, 1) == 0) and np.all(np.tril(U, -1) == 0)
    close(L @ L.T, spd, dt, 100)
    close(U.T @ U, spd, dt, 100)
    close(L, np.linalg.cholesky(spd.astype(np.float64)), dt, 100)
    close(U, L.T, dt)
    b = rand((n, 3), dt, 9)
    xs = blocks(da.linalg.solve(x, b, assume_a="pos"))
    close(spd @ xs, b, dt, 100 * n)


@settings(**SETTINGS)
@given(st.data())
def test_solve_triangular(data):
    dt = data.draw(st.sampled_from([np.float64, np.float32]))
    n = data.draw(st.integers(1, 40))
    c = square_chunks(data, n)
    lower = data.draw(st.booleans())
    a = rand((n, n), dt, data.draw(st.integers(0, 10 ** 6))) + 4 * n * np.eye(n, dtype=dt)
    vector = data.draw(st.booleans())
    b = rand((n,) if vector else (n, 4), dt, 3)
    x = blocks(da.linalg.solve_triangular(da.from_array(a, chunks=(c, c)), b, lower=lower))
    ref = scipy_linalg.solve_triangular(a.astype(np.float64), b.astype(np.float64),
                                        lower=lower)
    close(x, ref, dt, 10)
    t = np.tril(a) if lower else np.triu(a)     # only the triangle is read
    close(t @ x, b, dt, 100 * n)


def test_solve_triangular_rechunks_mismatched():
    a = np.triu(rand((12, 12), np.float64, 1)) + 10 * np.eye(12)
    b = rand((12, 2), np.float64, 2)
    x = da.linalg.solve_triangular(da.from_array(a, chunks=(5, 4)), da.from_array(b, chunks=3))
    close(blocks(x), scipy_linalg.solve_triangular(a, b), np.float64)


def test_singular_and_not_pd_raise_at_compute():
    s = np.ones((8, 8))
    with pytest.raises(np.linalg.LinAlgError, match="[Ss]ingular"):
        da.linalg.solve(da.from_array(s, chunks=4), np.ones(8)).compute()
    with pytest.raises(np.linalg.LinAlgError, match="[Ss]ingular"):
        da.linalg.inv(da.from_array(np.zeros((4, 4)), chunks=2)).compute()
    with pytest.raises(np.linalg.LinAlgError, match="positive definite"):
        da.linalg.cholesky(da.from_array(-np.eye(6), chunks=3)).compute()
    t = np.triu(np.ones((6, 6)))
    t[4, 4] = 0
    with pytest.raises(np.linalg.LinAlgError, match="diagonal 4"):
        da.linalg.solve_triangular(da.from_array(t, chunks=3), np.ones(6)).compute()
    # lu of a singular matrix works (as scipy.linalg.lu)
    p, l, u = da.compute(*da.linalg.lu(da.from_array(s, chunks=4)))
    close(p @ l @ u, s, np.float64)


def test_square_errors():
    for f in (da.linalg.lu, da.linalg.cholesky, da.linalg.inv):
        with pytest.raises(ValueError, match="square"):
            f(da.ones((6, 4), chunks=2))
        with pytest.raises(ValueError, match="chunks"):
            f(da.ones((6, 6), chunks=(2, 3)))
        with pytest.raises(ValueError, match="2-d"):
            f(da.ones(6, chunks=2))
    with pytest.raises(ValueError, match="shapes"):
        da.linalg.solve(da.ones((6, 6), chunks=2), da.ones(5, chunks=2))
    with pytest.raises(ValueError, match="1-d or 2-d"):
        da.linalg.solve(da.ones((6, 6), chunks=2), da.ones((6, 2, 2), chunks=2))
    with pytest.raises(ValueError, match="assume_a"):
        da.linalg.solve(da.ones((6, 6), chunks=2), da.ones(6, chunks=2), assume_a="sym")
    with pytest.raises(ValueError, match="square"):
        da.linalg.solve_triangular(da.ones((6, 4), chunks=2), da.ones(6, chunks=2))


# ---------------------------------------------------------------------------
# lstsq

@settings(**SETTINGS)
@given(st.data())
def test_lstsq_matches_numpy(data):
    n = data.draw(st.integers(1, 8))
    m = data.draw(st.integers(n, 60))
    rows = split(m, data.draw)
    seed = data.draw(st.integers(0, 10 ** 6))
    a = rand((m, n), np.float64, seed)
    if data.draw(st.booleans()) and n > 1:
        a[:, -1] = a[:, 0]            # rank deficient: minimum-norm solution
    vector = data.draw(st.booleans())
    b = rand((m,) if vector else (m, 3), np.float64, seed + 1)
    x, res, rank, s = da.linalg.lstsq(da.from_array(a, chunks=(rows, n)), b)
    X, R, K, S = da.compute(x, res, rank, s)
    nx, nres, nrank, ns = np.linalg.lstsq(a, b, rcond=None)
    assert K == nrank and np.ndim(K) == 0
    cond = np.linalg.cond(a) if nrank == n else 1.0
    close(X, nx, np.float64, 10 * cond)
    close(S, ns, np.float64, 10)
    assert R.shape == ((1,) if vector else (3,))
    close(R, ((b - a @ X) ** 2).sum(axis=0, keepdims=vector), np.float64, 10 * cond)
    if nres.size:
        close(R, nres, np.float64, 10 * cond)


def test_lstsq_short_and_fat_and_errors():
    a = rand((5, 30), np.float64, 11)
    b = rand(5, np.float64, 12)
    x, res, rank, s = da.linalg.lstsq(da.from_array(a, chunks=(5, 7)), b)
    close(x.compute(), np.linalg.lstsq(a, b, rcond=None)[0], np.float64, 10)
    assert int(rank.compute()) == 5
    with pytest.raises(ValueError, match="incompatible"):
        da.linalg.lstsq(da.ones((6, 2), chunks=2), da.ones(5, chunks=2))


# ---------------------------------------------------------------------------
# norm

MATRIX_ORDS = [None, "fro", "nuc", 1, -1, 2, -2, np.inf, -np.inf]
VECTOR_ORDS = [None, 0, 1, -1, 2, 3, 0.5, np.inf, -np.inf]


@pytest.mark.parametrize("ord", MATRIX_ORDS)
@pytest.mark.parametrize("keepdims", [False, True])
@pytest.mark.parametrize("dt", [np.float64, np.float32])
def test_norm_matrix(ord, keepdims, dt):
    a = rand((13, 9), dt, 21)
    for chunks in [(4, 9), (13, 2), (5, 4)]:
        got = da.linalg.norm(da.from_array(a, chunks=chunks), ord=ord, keepdims=keepdims)
        want = np.linalg.norm(a, ord=ord, keepdims=keepdims)
        g = got.compute()
        assert np.shape(g) == np.shape(want)
        close(g, want, dt, 10)


@pytest.mark.parametrize("ord", VECTOR_ORDS)
def test_norm_vector_and_axes(ord):
    v = rand(17, np.float64, 22)
    close(da.linalg.norm(da.from_array(v, chunks=5), ord=ord).compute(),
          np.linalg.norm(v, ord=ord), np.float64)
    a = rand((4, 6, 5), np.float64, 23)
    x = da.from_array(a, chunks=(2, 3, 5))
    for axis in (0, 1, -1):
        close(da.linalg.norm(x, ord=ord, axis=axis, keepdims=True).compute(),
              np.linalg.norm(a, ord=ord, axis=axis, keepdims=True), np.float64)


def test_norm_misc():
    a = rand((4, 6, 5), np.float64, 24)
    x = da.from_array(a, chunks=2)
    close(da.linalg.norm(x).compute(), np.linalg.norm(a), np.float64)
    close(da.linalg.norm(x, ord=1, axis=(2, 0)).compute(),
          np.linalg.norm(a, ord=1, axis=(2, 0)), np.float64)
    i = np.arange(12).reshape(3, 4)
    close(da.linalg.norm(da.from_array(i, chunks=2)).compute(), np.linalg.norm(i), np.float64)
    with pytest.raises(ValueError, match="Improper number of dimensions"):
        da.linalg.norm(x, ord=1)
    with pytest.raises(ValueError, match="Invalid norm order"):
        da.linalg.norm(da.ones(5, chunks=2), ord="fro")
    with pytest.raises(ValueError, match="Invalid norm order"):
        da.linalg.norm(da.ones((5, 5), chunks=2), ord=3)
    # the SVD norms of a stack of matrices (3-d): NumPy's, block by block
    close(da.linalg.norm(x, ord=2, axis=(0, 1)).compute(), np.linalg.norm(a, ord=2, axis=(0, 1)),
          np.float64)


def test_layers_registered_for_blas_thread_cap():
    # compute() caps BLAS threads for graphs holding these layers
    from cdask.array.linalg import GEMM_LAYERS

    q, r = da.linalg.qr(da.ones((40, 4), chunks=(10, 4)))
    assert any(n.startswith("tsqr-leaf") for n in GEMM_LAYERS & set(q._layers))
    p, l, u = da.linalg.lu(da.ones((4, 4), chunks=2))
    assert any(n.startswith("lu-panel") for n in GEMM_LAYERS & set(u._layers))
