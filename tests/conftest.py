"""Shared fixtures for the cdask test-suite.

Oracle mode
-----------
``CDASK_TEST_ORACLE=1 pytest tests/...`` runs the scheduler tests against
``dask.threaded.get`` instead of ``cdask.get``, to check the tests' own logic
while (or in case) the C scheduler is not usable.  In that mode:

* the ``get`` fixture is a shim around ``dask.threaded.get`` that drops the
  cdask-only keyword arguments (``stats``, ``callback``, ``record``,
  ``interval``);
* tests marked ``@pytest.mark.cdask_only`` (Graph, Stats, Kernel-on-a-worker
  specifics...) are skipped with reason "oracle mode";
* subprocess tests see ``CDASK_TEST_ORACLE=1`` in their environment and use
  the same substitution (see ``SUBPROCESS_PRELUDE``).

The cdask kernels are still used in oracle mode: they are plain Python
callables, so dask runs them like any other function.

Hangs
-----
A scheduler bug is likely to show up as a hang.  Every test runs under a
watchdog: after ``CDASK_TEST_TIMEOUT`` seconds (default 60) a SIGALRM handler
raises ``TestTimeout`` on the main thread (which a correct ``cdask.get``
notices like a Ctrl-C), and 30 s after that faulthandler dumps every thread's
stack and exits the process, so a wedged run fails instead of hanging CI.

Skips that hide a missing install step
--------------------------------------
With ``CI=true`` (or ``CDASK_STRICT_SKIPS=1``) in the environment, a test
skipped because a module could not be imported (``pytest.importorskip``)
fails the run: the test extra (``pip install -e ".[test]"``) installs
everything the tests use, so such a skip means an install step is missing.
"""

import faulthandler
import os
import signal
import sys
import threading

import pytest

ORACLE = os.environ.get("CDASK_TEST_ORACLE", "") not in ("", "0")
TIMEOUT = float(os.environ.get("CDASK_TEST_TIMEOUT", "60"))

import cdask  # noqa: E402  (kernels are usable as plain callables in both modes)

if ORACLE:
    import dask.threaded

    _CDASK_ONLY_KWARGS = ("stats", "callback", "record", "interval")

    _PID = os.getpid()

    def _oracle_get(dsk, keys, num_workers=None, **kwargs):
        for name in _CDASK_ONLY_KWARGS:
            kwargs.pop(name, None)
        kwargs.pop("cache", None)
        if os.getpid() != _PID:
            # dask caches its thread pools per thread, and a cached pool is
            # broken in a forked child: use a fresh pool there
            from concurrent.futures import ThreadPoolExecutor
            with ThreadPoolExecutor(num_workers or 2) as pool:
                return dask.threaded.get(dsk, keys, pool=pool)
        return dask.threaded.get(dsk, keys, num_workers=num_workers)

    GET = _oracle_get
else:
    GET = cdask.get


# Code run first by the subprocess tests: defines ``get`` the same way.
SUBPROCESS_PRELUDE = """
import os, sys
import cdask
if os.environ.get("CDASK_TEST_ORACLE", "") not in ("", "0"):
    import dask.threaded
    def get(dsk, keys, num_workers=None, **kw):
        return dask.threaded.get(dsk, keys, num_workers=num_workers)
else:
    get = cdask.get
"""


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "cdask_only: needs the real cdask scheduler/Graph (skipped in oracle mode)")
    config.addinivalue_line("markers", "slow: long-running tests (deselect with -m 'not slow')")


def pytest_collection_modifyitems(config, items):
    if not ORACLE:
        return
    skip = pytest.mark.skip(reason="oracle mode")
    for item in items:
        if item.get_closest_marker("cdask_only") is not None:
            item.add_marker(skip)


def pytest_report_header(config):
    return "cdask scheduler under test: %s" % (
        "dask.threaded.get (CDASK_TEST_ORACLE=1)" if ORACLE else "cdask.get")


@pytest.fixture(scope="session")
def oracle():
    return ORACLE


@pytest.fixture(scope="session")
def get():
    """The scheduler under test: cdask.get, or the dask.threaded.get shim."""
    return GET


@pytest.fixture(scope="session")
def subprocess_prelude():
    return SUBPROCESS_PRELUDE


class TestTimeout(Exception):
    """Raised on the main thread when a test runs past CDASK_TEST_TIMEOUT."""


def _alarm(signum, frame):
    raise TestTimeout("test ran longer than %.0f s (CDASK_TEST_TIMEOUT): hang?" % TIMEOUT)


@pytest.fixture(autouse=True)
def _watchdog():
    if TIMEOUT <= 0 or threading.current_thread() is not threading.main_thread():
        yield
        return
    old = signal.signal(signal.SIGALRM, _alarm)
    signal.setitimer(signal.ITIMER_REAL, TIMEOUT)
    faulthandler.dump_traceback_later(TIMEOUT + 30, exit=True, file=sys.stderr)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        faulthandler.cancel_dump_traceback_later()
        signal.signal(signal.SIGALRM, old)


def run_with_timeout(fn, timeout, *args, **kwargs):
    """Run ``fn`` on a daemon thread; fail (instead of hanging) after ``timeout`` s.

    Returns fn's result or re-raises its exception.
    """
    box = {}

    def target():
        try:
            box["result"] = fn(*args, **kwargs)
        except BaseException as e:  # noqa: BLE001 - handed back to the caller
            box["error"] = e

    t = threading.Thread(target=target, daemon=True)
    t.start()
    t.join(timeout)
    if t.is_alive():
        pytest.fail("%s did not finish within %s s (deadlock?)" % (
            getattr(fn, "__name__", fn), timeout))
    if "error" in box:
        raise box["error"]
    return box["result"]


@pytest.fixture(scope="session")
def with_timeout():
    return run_with_timeout


# ---------------------------------------------------------------------------
# skips caused by a missing module fail the run in CI
# ---------------------------------------------------------------------------
STRICT_SKIPS = (os.environ.get("CI", "").lower() in ("1", "true", "yes")
                or os.environ.get("CDASK_STRICT_SKIPS", "") not in ("", "0"))
_MISSING_MODULE = ("could not import", "No module named")
_missing_module_skips = []


def _note_skip(report):
    if not report.skipped or not isinstance(report.longrepr, tuple):
        return
    reason = str(report.longrepr[2])
    if any(m in reason for m in _MISSING_MODULE):
        _missing_module_skips.append((report.nodeid, reason))


def pytest_collectreport(report):
    _note_skip(report)


def pytest_runtest_logreport(report):
    _note_skip(report)


def pytest_terminal_summary(terminalreporter):
    if STRICT_SKIPS and _missing_module_skips:
        terminalreporter.section("skipped because a module is missing (fails the run)")
        for nodeid, reason in _missing_module_skips:
            terminalreporter.write_line("%s: %s" % (nodeid, reason))


def pytest_sessionfinish(session, exitstatus):
    if STRICT_SKIPS and _missing_module_skips and session.exitstatus == 0:
        session.exitstatus = 1


@pytest.fixture
def no_skip_rechunk():
    """Rechunks computed as rechunks, even where only their values are
    gathered (compute.skip_rechunks would read the source instead): for the
    tests of the rechunk itself."""
    with cdask.config.set({"array.skip_rechunk": False}):
        yield
