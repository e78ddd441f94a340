"""cdask.blockwise / cdask.top against NumPy: the talk's examples verbatim,
index notation with contraction (lists of blocks, or concatenated blocks),
broadcasting of one-block axes, literal arguments, new_axes, adjust_chunks,
and bad input (issue 5)."""

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

import cdask
import cdask as da
from cdask import top

from blockcheck import check, chunkings, sample

SETTINGS = settings(max_examples=25, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])


def dotmany(A, B):
    return sum(map(np.dot, A, B))


def _pair(data, dtype=np.int64):
    n, m, p = (data.draw(st.integers(1, 6)) for _ in range(3))
    A = sample((n, m), dtype, 1)
    B = sample((m, p), dtype, 2)
    # independent chunkings, also along the shared axis j
    x = da.from_array(A, chunks=chunkings(data.draw, st, A.shape))
    y = da.from_array(B, chunks=chunkings(data.draw, st, B.shape))
    return A, B, x, y


@SETTINGS
@given(data=st.data())
def test_talk_examples(data):
    A, B, x, y = _pair(data)
    check(top(lambda x: x + 1, 'ij', x, 'ij'), A + 1)
    check(top(np.transpose, 'ji', x, 'ij'), A.T)
    check(top(dotmany, 'ik', x, 'ij', y, 'jk'), A.dot(B))      # ints: exact
    Af, Bf = A.astype(np.float64) / 7, B.astype(np.float64) / 3
    xf = da.from_array(Af, chunks=x.chunks)
    yf = da.from_array(Bf, chunks=y.chunks)
    check(top(dotmany, 'ik', xf, 'ij', yf, 'jk'), Af.dot(Bf), exact=False, rtol=1e-12,
          atol=1e-12)
    assert cdask.top is top and cdask.array.top is top


@st.composite
def einsum_cases(draw, repeats=False):
    letters = "ijkl"
    sizes = {c: draw(st.integers(1, 5)) for c in letters}
    n_arr = draw(st.integers(1, 3))
    inds = []
    for _ in range(n_arr):
        k = draw(st.integers(1, 3))
        if repeats:
            # letters may repeat within one index ('ii', 'iji'): diagonals
            inds.append("".join(draw(st.lists(st.sampled_from(letters[:3]), min_size=k,
                                              max_size=k))))
        else:
            inds.append("".join(draw(st.permutations(letters))[:k]))
    used = sorted(set("".join(inds)))
    out = "".join(draw(st.permutations(used))[:draw(st.integers(0, len(used)))])
    return sizes, inds, out


@SETTINGS
@given(case=st.one_of(einsum_cases(), einsum_cases(repeats=True)), data=st.data())
def test_index_notation_matches_einsum(case, data):
    sizes, inds, out = case
    nps, args = [], []
    for n, ind in enumerate(inds):
        shape = tuple(sizes[c] for c in ind)
        a = sample(shape, np.int64, n)
        nps.append(a)
        args += [da.from_array(a, chunks=chunkings(data.draw, st, shape)), ind]
    spec = ",".join(inds) + "->" + out
    expected = np.einsum(spec, *nps)

    def f(*blocks):
        return np.einsum(spec, *blocks)

    # concatenate=True: every contracted axis arrives whole
    check(da.blockwise(f, out, *args, concatenate=True, dtype=np.int64), expected)

    # lists of blocks: sum the einsum of every combination of contracted blocks
    contracted = sorted(set("".join(inds)) - set(out))

    def g(*lists):
        total = 0
        counts = {}
        for ind, lst in zip(inds, lists):
            v = lst
            for c in ind:
                if c in contracted:
                    counts[c] = len(v)
                    v = v[0]
        for pos in np.ndindex(*[counts[c] for c in contracted]):
            where = dict(zip(contracted, pos))
            blocks = []
            for ind, lst in zip(inds, lists):
                v = lst
                for c in ind:
                    if c in contracted:
                        v = v[where[c]]
                blocks.append(v)
            total = total + np.einsum(spec, *blocks)
        return total

    # (the arrays are aligned first, so every list along a letter has one length)
    check(da.blockwise(g, out, *args, dtype=np.int64), expected)


def test_repeated_label_within_one_index():
    """As dask: a repeated output letter takes the diagonal blocks; a repeated
    contracted letter is listed along each axis separately (all blocks); the
    two axes are brought to common chunks first."""
    A = np.arange(36).reshape(6, 6)
    x = da.from_array(A, chunks=(2, 3))
    d = da.blockwise(np.diagonal, "i", x, "ii", dtype=A.dtype)
    assert d.chunks == ((2, 1, 1, 2),)
    check(d, np.diagonal(A))
    # one sum per diagonal block
    r = da.blockwise(lambda b: b.sum(keepdims=True)[0], "i", x, "ii", dtype=A.dtype,
                     adjust_chunks={"i": 1})
    check(r, np.array([A[:2, :2].sum(), A[2, 2], A[3, 3], A[4:, 4:].sum()]))
    seen = []

    def f(L):
        seen.append([[b[0, 0] for b in row] for row in L])
        return np.array(sum(b.sum() for row in L for b in row))

    y = da.from_array(A, chunks=3)
    check(da.blockwise(f, "", y, "ii", dtype=A.dtype), A.sum())
    assert seen and all(s_ == [[0, 3], [18, 21]] for s_ in seen)   # blocks (0,0)..(1,1)
    check(da.blockwise(lambda b: np.array(b.sum()), "", y, "ii", dtype=A.dtype,
                       concatenate=True), A.sum())
    # a 3-d index with a repeated letter, and another array on that letter
    B = np.arange(4 * 5 * 4).reshape(4, 5, 4)
    v = np.arange(4)
    z = da.blockwise(lambda b, w: np.einsum("iji,i->ij", b, w), "ij",
                     da.from_array(B, chunks=(3, 2, 2)), "iji", da.from_array(v, chunks=1),
                     "i", dtype=B.dtype)
    check(z, np.einsum("iji,i->ij", B, v))
    with pytest.raises(ValueError, match="different lengths"):
        da.blockwise(np.diagonal, "i", da.ones((3, 4), chunks=2), "ii")


def test_contraction_receives_lists():
    A = np.arange(12).reshape(3, 4)
    x = da.from_array(A, chunks=(2, 2))
    seen = []

    def f(blocks):
        seen.append([b.shape for b in blocks])
        return sum(b.sum(axis=1) for b in blocks)

    r = da.blockwise(f, "i", x, "ij", dtype=A.dtype)
    np.testing.assert_array_equal(r.compute(), A.sum(axis=1))
    assert sorted(seen) == [[(1, 2), (1, 2)], [(2, 2), (2, 2)]]
    check(r, A.sum(axis=1))
    # the whole array contracted: a 0-d result
    r = da.blockwise(lambda L: sum(b.sum() for row in L for b in row), "", x, "ij",
                     dtype=A.dtype)
    check(r, A.sum())


def test_broadcast_literals_new_axes_adjust_chunks():
    A = np.arange(12.0).reshape(3, 4)
    col = np.arange(3.0).reshape(3, 1)
    x = da.from_array(A, chunks=2)
    c = da.from_array(col, chunks=2)
    check(da.blockwise(np.add, "ij", x, "ij", c, "ij"), A + col)
    # a 1-d array indexed by one letter of a 2-d one
    v = np.arange(4.0)
    check(da.blockwise(np.multiply, "ij", x, "ij", da.from_array(v, chunks=3), "j"), A * v)
    # non-array arguments with index None; keyword arguments to func
    check(da.blockwise(lambda b, k, t=0: b * k + t, "ij", x, "ij", 3.0, None, t=1.0),
          A * 3.0 + 1.0)
    # new axes
    r = da.blockwise(lambda b: np.stack([b, -b], axis=-1), "ijk", x, "ij", new_axes={"k": 2})
    check(r, np.stack([A, -A], axis=-1))
    # adjust_chunks: each block keeps its first row
    r = da.blockwise(lambda b: b[:1], "ij", x, "ij", adjust_chunks={"i": 1})
    check(r, A[[0, 2]])
    r = da.blockwise(lambda b: b[:1], "ij", x, "ij", adjust_chunks={"i": lambda n: 1})
    check(r, A[[0, 2]])
    # align_arrays=False: one-block axes still broadcast
    y = da.from_array(np.ones((3, 1)), chunks=(3, 1))
    check(da.blockwise(np.add, "ij", x.rechunk((3, 2)), "ij", y, "ij", align_arrays=False),
          A + 1)


def test_lambdas_with_different_constants_are_different_layers():
    x = da.ones(4, chunks=2)
    a = da.blockwise(lambda b: b + 1, "i", x, "i")
    b = da.blockwise(lambda b: b + 2, "i", x, "i")
    check(a + b, np.full(4, 5.0))

    def times(k):
        return lambda b: b * k

    check(x.map_blocks(times(2)) + x.map_blocks(times(3)), np.full(4, 5.0))


def test_blockwise_bad_input():
    x = da.ones((4, 6), chunks=2)
    y = da.ones((5, 6), chunks=2)
    with pytest.raises(ValueError, match="argument 0 has 3 label.*2 dimension"):
        da.blockwise(np.negative, "ijk", x, "ijk")
    with pytest.raises(ValueError, match="argument 1 has 1 label"):
        top(np.add, "ij", x, "ij", x, "i")
    with pytest.raises(ValueError, match="pairs"):
        da.blockwise(np.negative, "ij", x)
    with pytest.raises(ValueError, match="not in any input"):
        da.blockwise(np.negative, "ik", x, "ij")
    with pytest.raises(ValueError, match="different lengths"):
        da.blockwise(np.add, "ij", x, "ij", y, "ij")
    with pytest.raises(ValueError, match="repeated"):
        da.blockwise(np.negative, "ii", x, "ij")
    with pytest.raises(TypeError):
        da.blockwise(x, "ij", np.negative, "ij")
    with pytest.raises(ValueError, match="block counts"):
        da.blockwise(np.add, "ij", x, "ij", x.rechunk(3), "ij", align_arrays=False)
    m = x[x > 0]                      # unknown chunk sizes
    n = da.ones(24, chunks=5)
    n = n[n > 0]
    with pytest.raises(ValueError, match="compute_chunk_sizes"):
        da.blockwise(np.add, "i", m, "i", n, "i", dtype=float)
    # identical unknown chunks pair fine
    check(da.blockwise(np.add, "i", m.compute_chunk_sizes(), "i", m, "i"), np.full(24, 2.0))


def test_dtype_inference():
    x = da.from_array(np.arange(6, dtype=np.int32), chunks=4)
    assert da.blockwise(lambda b: b / 2, "i", x, "i").dtype == np.float64
    assert da.blockwise(lambda L: sum(b.sum() for b in L), "", x, "i").dtype == \
        np.sum(np.ones(1, np.int32)).dtype

    def picky(b):
        if b.size == 1:
            raise RuntimeError("no samples")
        return b / 2

    with pytest.warns(UserWarning, match="could not infer"):
        assert da.blockwise(picky, "i", x, "i").dtype == np.int32
