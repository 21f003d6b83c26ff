"""The readability check itself (tests/report/readability.py) fails on figures made unreadable on
purpose: a legend over the data, two series alike, overlapping titles, text off the canvas, a
legend entry that passes off a series in another style."""

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from tests.report.readability import problems


def figure(cols=1, size=(4.0, 3.0), layout="constrained"):
    fig = Figure(figsize=size, dpi=80, layout=layout)
    FigureCanvasAgg(fig)
    return fig, fig.subplots(1, cols, squeeze=False)[0]


def test_a_readable_figure_passes():
    fig, (ax,) = figure()
    ax.plot([1, 2, 3], [1, 2, 3], color="#0072B2", marker="o", label="a")
    ax.plot([1, 2, 3], [3, 2, 1], color="#0072B2", marker="s", label="b")  # same colour, not marker
    ax.set_title("title")
    ax.set_xlabel("x")
    fig.legend(loc="outside lower center", ncols=2)
    assert problems(fig) == []


def test_a_legend_over_the_data_fails():
    fig, (ax,) = figure()
    ax.plot([1, 2, 3], [1, 2, 3], marker="o", label="a")
    ax.legend(loc="center")
    assert any("a legend lies over the data" in p for p in problems(fig))


def test_two_series_alike_fail():
    fig, (ax,) = figure()
    ax.plot([1, 2, 3], [1, 2, 3], color="#0072B2", marker="o", label="a")
    ax.plot([1, 2, 3], [3, 2, 1], color="#0072B2", marker="o", linestyle="--", label="b")
    fig.legend(loc="outside lower center", ncols=2)
    assert problems(fig) == ["series 'a' and 'b' share colour and marker ('#0072b2', 'o')"]


def test_overlapping_titles_fail():
    fig, axes = figure(cols=2, size=(3.0, 2.0), layout=None)
    for ax in axes:
        ax.set_title("a title far too long for its narrow panel")
    assert any("overlaps title" in p for p in problems(fig))


def test_text_off_the_canvas_fails():
    fig, (ax,) = figure()
    fig.text(0.95, 0.5, "a note that runs past the edge")
    assert any("runs off the canvas" in p for p in problems(fig))


def test_a_tick_label_over_the_next_panel_fails():
    fig, axes = figure(cols=2, size=(3.0, 2.0), layout=None)
    fig.subplots_adjust(wspace=0.0)
    axes[1].set_yticks([0.5], ["a long category label"])
    assert any("lies over the data of" in p for p in problems(fig))


def test_a_legend_proxy_in_another_style_fails():
    fig, (ax,) = figure()
    ax.plot([1, 2], [1, 2], color="#D55E00", marker="o", label="a")
    proxy = Line2D([], [], color="#0072B2", marker="o")
    fig.legend([proxy], ["a"], loc="outside lower center")
    assert any("drawn in 2 styles" in p for p in problems(fig))
