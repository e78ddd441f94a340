"""The examples notebook runs: its code cells execute in order (small N)."""
import json
import pathlib

NB = pathlib.Path(__file__).resolve().parent.parent / "examples" / "mean_of_positive.ipynb"


def test_notebook_runs(capsys):
    nb = json.loads(NB.read_text())
    ns = {}
    for cell in nb["cells"]:
        if cell["cell_type"] != "code":
            continue
        src = "".join(cell["source"])
        src = src.replace("N = 20_000_000", "N = 2_000_000")   # keep the test quick
        exec(compile(src, str(NB), "exec"), ns)
    out = capsys.readouterr().out
    assert "cdask:" in out and "numpy:" in out
    assert ns["result"] > 0.79 and abs(ns["result"] - ns["expected"]) < 1e-9
    # the notebook cleans up after itself: no file, no empty folder left
    assert not pathlib.Path(ns["tmp"].name).exists()


def test_notebook_names_the_talk():
    text = NB.read_text()
    assert "Towards out-of-core ND-arrays" in text and "Matthew Rocklin" in text
