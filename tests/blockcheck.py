"""Test helper for the shape, joining, blockwise and overlap tests: compute an
Array and check, besides the values, that every block has the shape its
chunks promise and the array's dtype (``compute`` writes blocks into a
preallocated result, where a wrong-shaped block could broadcast unnoticed)."""

import numpy as np

import cdask


def check(x, expected, exact=True, rtol=1e-7, atol=0):
    """Assert ``x`` (a cdask Array) equals ``expected`` (NumPy): shape, dtype,
    values (bit for bit when ``exact``, NaNs equal), and block shapes/dtypes."""
    expected = np.asarray(expected)
    assert isinstance(x, cdask.Array), type(x)
    assert x.shape == expected.shape, (x.shape, expected.shape)
    assert x.dtype == expected.dtype, (x.dtype, expected.dtype)
    keys = x._keys_flat()
    blocks = cdask.get(x.__dask_graph__(), keys)
    for k, b in zip(keys, blocks):
        want = tuple(x.chunks[d][i] for d, i in enumerate(k[1:]))
        assert np.shape(b) == want, (k, np.shape(b), want)
        assert np.asarray(b).dtype == x.dtype, (k, np.asarray(b).dtype, x.dtype)
    got = x.compute()
    if exact:
        np.testing.assert_array_equal(got, expected, strict=True)
        if expected.dtype.kind in "fc":
            # -0.0 and 0.0 differ bit for bit
            assert np.array_equal(np.signbit(np.real(got)), np.signbit(np.real(expected)))
    else:
        np.testing.assert_allclose(got, expected, rtol=rtol, atol=atol)
    return got


def _ragged(draw, st, s):
    """Block sizes of random lengths adding up to s."""
    parts, left = [], s
    while left:
        p = draw(st.integers(1, left))
        parts.append(p)
        left -= p
    return tuple(parts)


def chunkings(draw, st, shape):
    """A hypothesis draw of a chunk spec (per-axis tuples) for ``shape``."""
    chunks = []
    for s in shape:
        if s == 0:
            chunks.append((0,))
            continue
        kind = draw(st.sampled_from(["int", "ragged", "one", "whole"]))
        if kind == "int":
            c = draw(st.integers(1, s))
            chunks.append((c,) * (s // c) + ((s % c,) if s % c else ()))
        elif kind == "one":
            chunks.append((1,) * s)
        elif kind == "whole":
            chunks.append((s,))
        else:
            chunks.append(_ragged(draw, st, s))
    return tuple(chunks)


def chunk_specs(draw, st, shape):
    """A hypothesis draw of a chunks= argument for ``shape`` as users write
    it: per axis an int, 1, or explicit (ragged) block sizes."""
    chunks = []
    for s in shape:
        if s == 0:
            chunks.append((0,))
            continue
        kind = draw(st.sampled_from(["int", "ragged", "one"]))
        if kind == "int":
            chunks.append(draw(st.integers(1, s)))
        elif kind == "one":
            chunks.append(1)
        else:
            chunks.append(_ragged(draw, st, s))
    return tuple(chunks)


DTYPES = [np.float64, np.float32, np.int64, np.int32, np.int8, np.uint16, np.bool_,
          np.complex128]


def sample(shape, dtype, seed=0):
    """A NumPy array of ``shape`` and ``dtype`` with varied values."""
    rng = np.random.default_rng(seed)
    dt = np.dtype(dtype)
    if dt.kind == "b":
        return rng.integers(0, 2, shape).astype(bool)
    if dt.kind in "iu":
        info = np.iinfo(dt)
        return rng.integers(max(info.min, -100), min(info.max, 100), shape, endpoint=True
                            ).astype(dt)
    if dt.kind == "c":
        return (rng.standard_normal(shape) + 1j * rng.standard_normal(shape)).astype(dt)
    return rng.standard_normal(shape).astype(dt)


def unknown_rows(a, chunks):
    """``a`` as a cdask Array with unknown chunk sizes along axis 0 (selected
    by an all-true mask)."""
    x = cdask.from_array(a, chunks=chunks)
    y = x[cdask.from_array(np.ones(a.shape[0], bool), chunks=(chunks[0],))]
    assert a.shape[0] == 0 or any(c != c for c in y.chunks[0])
    return y


def same_bits(x, expected):
    """Compute the cdask Array ``x`` (unknown sizes allowed) and compare it
    with ``expected`` bit for bit, dtype too; returns the computed array."""
    assert isinstance(x, cdask.Array)
    got = x.compute()
    np.testing.assert_array_equal(got, expected, strict=True)
    return got


def basic_entry(draw, st, kind, s, idx, reach=2, max_step=3):
    """Append to ``idx`` one basic index entry of ``kind`` for an axis of
    length ``s``: "int" (in range), "full" (``:``), "none" (``None, :``) or
    anything else a slice whose bounds reach ``reach`` past either end,
    with a step of at most ``max_step`` either way."""
    if kind == "int" and s > 0:
        idx.append(draw(st.integers(-s, s - 1)))
    elif kind == "full":
        idx.append(slice(None))
    elif kind == "none":
        idx.append(None)
        idx.append(slice(None))
    else:
        b = st.one_of(st.none(), st.integers(-s - reach, s + reach))
        step = draw(st.one_of(st.none(), st.integers(-max_step, max_step).filter(
            lambda v: v != 0)))
        idx.append(slice(draw(b), draw(b), step))
