"""plot_history draws a History into an image file."""

from __future__ import annotations

import re

import pytest

from xpnet.training import History


def test_plot_history_writes_png(tmp_path):
    pytest.importorskip("matplotlib", reason="matplotlib is in the test extra")
    from xpnet.plotting import plot_history

    h = History(loss=[1.0, 0.5, 0.25], val_loss=[1.1, 0.6, 0.4], metrics={"val_accuracy": [0.5, 0.7, 0.9]})
    path = tmp_path / "curve.png"
    plot_history(h, path, title="t")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 5000


def test_without_matplotlib_the_error_names_the_extra(monkeypatch, tmp_path):
    import sys

    from xpnet.plotting import plot_history

    monkeypatch.setitem(sys.modules, "matplotlib", None)
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    with pytest.raises(ImportError, match=r"xpnet\[plot\]"):
        plot_history(History(loss=[1.0]), tmp_path / "x.png")


def test_a_folder_is_not_an_image_path(tmp_path):
    from xpnet.plotting import plot_history

    history = History(loss=[1.0, 0.5])
    for path in (tmp_path, f"{tmp_path}/", ""):
        with pytest.raises(ValueError, match="needs the path of an image file"):
            plot_history(history, path)
    assert list(tmp_path.iterdir()) == []  # no hidden ".png" written into the folder


def test_a_missing_folder_is_named_before_drawing(tmp_path, monkeypatch):
    """matplotlib failed only at savefig, naming the file, not which folder is missing."""
    import sys

    from xpnet.plotting import plot_history

    monkeypatch.setitem(sys.modules, "matplotlib", None)  # refused before matplotlib is needed
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    missing = tmp_path / "missing"
    with pytest.raises(FileNotFoundError, match=f"the folder '{re.escape(str(missing))}' of .* does not exist"):
        plot_history(History(loss=[1.0, 0.5]), missing / "c.png")
    assert not missing.exists()


def test_first_numbers_the_x_axis(tmp_path, monkeypatch):
    """Epochs from 1 by default; first=0 for steps printed from 0 (seed 001's)."""
    pytest.importorskip("matplotlib", reason="matplotlib is in the test extra")
    from matplotlib.figure import Figure

    from xpnet.plotting import plot_history

    drawn = []
    monkeypatch.setattr(Figure, "savefig", lambda fig, *a, **k: drawn.append(list(fig.axes[0].lines[0].get_xdata())))
    history = History(loss=[3.0, 2.0, 1.0])
    plot_history(history, tmp_path / "a.png")
    plot_history(history, tmp_path / "b.png", first=0)
    assert drawn == [[1, 2, 3], [0, 1, 2]]
    with pytest.raises(TypeError, match="first must be an int"):
        plot_history(history, tmp_path / "c.png", first=0.5)


def test_epochs_are_ticked_as_whole_numbers(tmp_path, monkeypatch):
    """A short run's axis read 1.0, 1.5, 2.0, 2.5 ..."""
    pytest.importorskip("matplotlib", reason="matplotlib is in the test extra")
    from matplotlib.figure import Figure

    from xpnet.plotting import plot_history

    drawn = []
    monkeypatch.setattr(Figure, "savefig", lambda fig, *a, **k: drawn.append(fig))
    plot_history(History(loss=[1.0, 0.5, 0.25]), tmp_path / "c.png")
    ticks = drawn[0].axes[0].get_xticks()
    assert len(ticks) and all(float(t).is_integer() for t in ticks), ticks


def test_a_path_without_an_image_extension_is_refused_before_drawing(tmp_path):
    """"curve" was written to curve.png, not to the path given (the examples then printed "wrote curve"),
    and "curve.txt" failed in matplotlib's savefig only after the figure was drawn."""
    pytest.importorskip("matplotlib", reason="matplotlib is in the test extra")
    from xpnet.plotting import plot_history

    for name, got in (("curve", "no extension"), ("curve.txt", "'.txt'"), ("curve.png.", "no extension")):
        with pytest.raises(ValueError, match=rf"expected an image file name ending in \.png.* got {re.escape(got)}"):
            plot_history(History(loss=[1.0, 0.5]), tmp_path / name)
    assert list(tmp_path.iterdir()) == []
    plot_history(History(loss=[1.0, 0.5]), tmp_path / "curve.PDF")  # matplotlib's formats, in any case
    assert (tmp_path / "curve.PDF").read_bytes()[:4] == b"%PDF"
