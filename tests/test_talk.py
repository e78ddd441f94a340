"""The talk's three traced expressions (../shared/seed), run and compared
with NumPy: elementwise bit for bit, reductions and the contraction within
floating-point tolerance; and what runs for them (fused tasks, gemm kernels,
no transposed blocks)."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import cdask as da


@settings(max_examples=20, deadline=None)
@given(st.integers(2, 40), st.integers(2, 40), st.integers(1, 20), st.integers(0, 2**32 - 1))
def test_traced_expressions_match_numpy(n, m, c, seed):
    rng = np.random.default_rng(seed)
    An, Bn = rng.standard_normal((n, m)), rng.standard_normal((n, m))
    Sn = rng.standard_normal((n, n))
    A, B, S = (da.from_array(v, chunks=c) for v in (An, Bn, Sn))
    # ((A + 1) * 2) ** 3: elementwise, bit for bit
    assert (((A + 1) * 2) ** 3).compute().tobytes() == (((An + 1) * 2) ** 3).tobytes()
    # (B - B.mean(axis=0)) + (B.T / B.std()): needs a square B
    got = ((S - S.mean(axis=0)) + (S.T / S.std())).compute()
    np.testing.assert_allclose(got, (Sn - Sn.mean(axis=0)) + (Sn.T / Sn.std()), rtol=1e-12,
                               atol=1e-12)
    # the "fail case": A.T.dot(B) - B.mean(axis=0)
    got = (A.T.dot(B) - B.mean(axis=0)).compute()
    np.testing.assert_allclose(got, An.T.dot(Bn) - Bn.mean(axis=0), rtol=1e-10, atol=1e-10)


def test_what_runs_for_the_fail_case():
    An = np.random.default_rng(0).standard_normal((600, 400))
    Bn = np.random.default_rng(1).standard_normal((600, 400))
    A, B = da.from_array(An, chunks=200), da.from_array(Bn, chunks=200)
    e = A.T.dot(B) - B.mean(axis=0)
    st_ = da.Stats()
    got = e.compute(stats=st_, record=True)
    np.testing.assert_allclose(got, An.T.dot(Bn) - Bn.mean(axis=0), rtol=1e-10, atol=1e-10)
    names = [r[1] for r in st_.records]
    assert "gemm" in names                       # block products on OpenBLAS
    assert not any("transpose" in n for n in names)   # no transposed blocks made
