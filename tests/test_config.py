"""cdask.config: set (call and context manager), get, environment defaults,
refresh, key spellings, num_workers checks and the link to the C pool."""

import os
import subprocess
import sys
import threading

import pytest

import cdask
import cdask.config as cfg
from cdask import _core


@pytest.fixture(autouse=True)
def clean_config():
    # autouse fixtures are set up first and torn down last: by the time this
    # refresh runs, monkeypatch has already put the environment back.
    yield
    cfg.refresh()


def _pool_default():
    return _core.pool_info()["default_workers"]


def test_default_num_workers_is_cpu_count(monkeypatch):
    monkeypatch.delenv("CDASK_NUM_WORKERS", raising=False)
    cfg.refresh()
    assert cfg.get("num_workers") == os.cpu_count()
    assert cdask.config is cfg


def test_set_as_call_persists():
    cfg.set(num_workers=3)
    assert cfg.get("num_workers") == 3
    cfg.set(num_workers=1)
    assert cfg.get("num_workers") == 1


def test_set_as_context_manager_restores():
    before = cfg.get("num_workers")
    with cfg.set(num_workers=2, colour="red") as s:
        assert isinstance(s, cfg.set)
        assert cfg.get("num_workers") == 2
        assert cfg.get("colour") == "red"
    assert cfg.get("num_workers") == before
    with pytest.raises(KeyError):
        cfg.get("colour")


def test_nesting():
    before = cfg.get("num_workers")
    with cfg.set(num_workers=2, a=1):
        with cfg.set(num_workers=4, b=2):
            assert (cfg.get("num_workers"), cfg.get("a"), cfg.get("b")) == (4, 1, 2)
            with cfg.set(a=10):
                assert cfg.get("a") == 10
            assert cfg.get("a") == 1
        assert cfg.get("num_workers") == 2
        assert cfg.get("b", None) is None
    assert cfg.get("num_workers") == before
    assert cfg.get("a", "absent") == "absent"


def test_restore_on_exception():
    before = cfg.get("num_workers")
    with pytest.raises(RuntimeError):
        with cfg.set(num_workers=2):
            raise RuntimeError("boom")
    assert cfg.get("num_workers") == before


def test_key_spellings():
    cfg.set({"num-workers": 2})
    assert cfg.get("num_workers") == 2
    assert cfg.get("num-workers") == 2
    assert cfg.get("NUM_WORKERS") == 2
    with cfg.set({"my-key": "x"}):
        assert cfg.get("my_key") == "x"
    with cfg.set(my_key="y"):
        assert cfg.get("my-key") == "y"


def test_get_missing_key():
    with pytest.raises(KeyError):
        cfg.get("no_such_key_at_all")
    assert cfg.get("no_such_key_at_all", 7) == 7
    assert cfg.get("no_such_key_at_all", None) is None


def test_unknown_keys_allowed():
    cfg.set(anything_goes=[1, 2], another={"x": 1})
    assert cfg.get("anything_goes") == [1, 2]
    assert cfg.get("another") == {"x": 1}


@pytest.mark.parametrize("bad", [0, -1, 1.5, "3", True, None, 2.0])
def test_num_workers_must_be_positive_int(bad):
    before = cfg.get("num_workers")
    with pytest.raises(ValueError) as info:
        cfg.set(num_workers=bad)
    msg = str(info.value)
    assert "num_workers" in msg
    assert repr(bad) in msg
    assert cfg.get("num_workers") == before


def test_failed_set_changes_nothing():
    before = cfg.get("num_workers")
    with pytest.raises(ValueError):
        cfg.set(some_other_key=1, num_workers=0)
    assert cfg.get("some_other_key", "absent") == "absent"
    assert cfg.get("num_workers") == before


def test_numpy_integer_accepted():
    np = pytest.importorskip("numpy")
    cfg.set(num_workers=np.int64(2))
    assert cfg.get("num_workers") == 2
    assert type(cfg.get("num_workers")) is int


def test_set_rejects_non_mapping():
    with pytest.raises(TypeError):
        cfg.set([("num_workers", 2)])


def test_env_num_workers(monkeypatch):
    monkeypatch.setenv("CDASK_NUM_WORKERS", "3")
    cfg.refresh()
    assert cfg.get("num_workers") == 3
    assert cfg.get("num-workers") == 3


def test_env_value_parsing(monkeypatch):
    monkeypatch.setenv("CDASK_SOME_INT", "42")
    monkeypatch.setenv("CDASK_SOME_FLOAT", "0.25")
    monkeypatch.setenv("CDASK_SOME_TRUE", "true")
    monkeypatch.setenv("CDASK_SOME_FALSE", "False")
    monkeypatch.setenv("CDASK_SOME_NONE", "none")
    monkeypatch.setenv("CDASK_SOME_TEXT", "hello world")
    cfg.refresh()
    assert cfg.get("some_int") == 42 and type(cfg.get("some_int")) is int
    assert cfg.get("some_float") == 0.25
    assert cfg.get("some_true") is True
    assert cfg.get("some_false") is False
    assert cfg.get("some_none") is None
    assert cfg.get("some_text") == "hello world"


def test_refresh_forgets_set_values(monkeypatch):
    monkeypatch.setenv("CDASK_NUM_WORKERS", "2")
    cfg.set(num_workers=5, transient=1)
    cfg.refresh()
    assert cfg.get("num_workers") == 2
    assert cfg.get("transient", None) is None


def test_refresh_rereads_environment(monkeypatch):
    monkeypatch.setenv("CDASK_NUM_WORKERS", "2")
    cfg.refresh()
    assert cfg.get("num_workers") == 2
    monkeypatch.setenv("CDASK_NUM_WORKERS", "1")
    assert cfg.get("num_workers") == 2      # not before refresh
    cfg.refresh()
    assert cfg.get("num_workers") == 1
    monkeypatch.delenv("CDASK_NUM_WORKERS")
    cfg.refresh()
    assert cfg.get("num_workers") == os.cpu_count()


@pytest.mark.parametrize("bad", ["0", "-2", "many", "1.5"])
def test_refresh_bad_env_raises(monkeypatch, bad):
    cfg.set(num_workers=1)
    monkeypatch.setenv("CDASK_NUM_WORKERS", bad)
    with pytest.raises(ValueError) as info:
        cfg.refresh()
    assert "CDASK_NUM_WORKERS" in str(info.value)
    assert cfg.get("num_workers") == 1      # unchanged


def test_import_with_bad_env_warns(tmp_path):
    env = dict(os.environ, CDASK_NUM_WORKERS="0")
    code = "import cdask; print(cdask.config.get('num_workers'))"
    r = subprocess.run([sys.executable, "-W", "always", "-c", code], cwd=tmp_path, env=env,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert int(r.stdout.strip()) == os.cpu_count()
    assert "CDASK_NUM_WORKERS" in r.stderr


def test_import_with_env(tmp_path):
    env = dict(os.environ, CDASK_NUM_WORKERS="3")
    code = ("import cdask; print(cdask.config.get('num_workers'), "
            "cdask._core.pool_info()['default_workers'])")
    r = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["3", "3"]


def test_pool_follows_config(monkeypatch):
    cfg.set(num_workers=3)
    assert _pool_default() == 3
    with cfg.set(num_workers=1):
        assert _pool_default() == 1
    assert _pool_default() == 3
    monkeypatch.setenv("CDASK_NUM_WORKERS", "2")
    cfg.refresh()
    assert _pool_default() == 2


def test_threads_with_distinct_keys():
    errors = []
    barrier = threading.Barrier(4)

    def work(t):
        try:
            barrier.wait()
            key = "thread_key_%d" % t
            for k in range(300):
                with cfg.set({key: k}):
                    if cfg.get(key) != k:
                        errors.append((t, k, cfg.get(key)))
                    with cfg.set({key: -k}):
                        if cfg.get(key) != -k:
                            errors.append((t, -k))
                if cfg.get(key, "absent") != "absent":
                    errors.append((t, "not restored"))
        except Exception as e:  # pragma: no cover
            errors.append(e)

    threads = [threading.Thread(target=work, args=(t,)) for t in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert errors == []


def test_threads_setting_num_workers():
    before = cfg.get("num_workers")
    errors = []

    def work(t):
        try:
            for k in range(200):
                with cfg.set(num_workers=1 + (t + k) % 4):
                    n = cfg.get("num_workers")
                    if not (isinstance(n, int) and 1 <= n <= 4):
                        errors.append(n)
        except Exception as e:  # pragma: no cover
            errors.append(e)

    threads = [threading.Thread(target=work, args=(t,)) for t in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert errors == []
    # each block restores what it saw; with interleaving across threads the
    # final value is some value set by someone -- but always a valid one.
    assert isinstance(cfg.get("num_workers"), int) and cfg.get("num_workers") >= 1
    cfg.set(num_workers=before)


def test_malloc_mmap_threshold():
    import platform
    set_ = cdask._core.set_malloc_mmap_threshold
    if platform.libc_ver()[0] == "glibc":
        assert set_(1 << 20) is True
    for bad in (0, -5, (32 << 20) + 1):
        with pytest.raises(ValueError, match="threshold"):
            set_(bad)
    # the environment variable: off, a size, or a warning for nonsense
    for val, warns in (("off", False), ("2097152", False), ("lots", True)):
        r = subprocess.run([sys.executable, "-W", "always", "-c", "import cdask"],
                           env=dict(os.environ, CDASK_MALLOC_MMAP_THRESHOLD=val),
                           capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, r.stderr
        assert ("CDASK_MALLOC_MMAP_THRESHOLD" in r.stderr) == warns, r.stderr
