"""Charts for answers and alerts: the data drawn, read from the stored history, and the PNG.

Reading and drawing are kept apart so tests can check what is drawn: `board_chart` and `model_chart`
read the history into a `Chart` (its lines and event markers, exactly what gets plotted) and
`render` draws a Chart as a PNG. matplotlib is imported here only, and only through its
object-oriented API (a `Figure` on an Agg canvas, never pyplot): no global figure state, so a chart
can be drawn in a worker thread (`draw`) while the bot keeps answering.
"""

from __future__ import annotations

import asyncio
import io
import logging
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from leaderwatch.alerts.formatting import clean_text, clip, day, num, short_name
from leaderwatch.alerts.kinds import KIND_TITLES
from leaderwatch.alerts.models import Event
from leaderwatch.sources.base import Snapshot
from leaderwatch.sources.identity import Group
from leaderwatch.storage.db import Database
from leaderwatch.storage.events import recent_events
from leaderwatch.storage.snapshots import snapshots_between

if TYPE_CHECKING:
    from matplotlib.figure import Figure

logger = logging.getLogger(__name__)

CHAT_SIZE = (1200, 600)
"""Pixels of a chart answering a command: readable in a chat window without opening it."""
ALERT_SIZE = (800, 400)
"""Pixels of the small chart under an alert."""
DPI = 100
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#000000")
"""Okabe-Ito, safe for the common colour-vision deficiencies (its yellow left out: too pale on white)."""
MARKERS = ("o", "s", "^", "D", "v", "P", "X")
"""A second cue beside colour: each line has its own marker shape."""
MAX_SERIES = len(PALETTE)
"""Lines one chart shows at most."""
MAX_LABELS = 12
"""Event dates labelled at most (the newest); older ones keep their line without a label."""
MAX_LABEL = 48
MAX_TITLE = 160
"""Characters of a chart's title at most (a model's name in it may be any length)."""
MAX_EVENTS = 500
"""Events read for one chart at most."""
MARKER_COLOUR = "0.45"


@dataclass(frozen=True, slots=True)
class Series:
    """One line: at each date, the value drawn and the model it belongs to (None: no point that day)."""

    label: str
    dates: tuple[datetime, ...]
    values: tuple[float | None, ...]
    models: tuple[str | None, ...]

    def points(self) -> list[tuple[datetime, float, str]]:
        """The dates that have a value, with the value and the model."""
        return [(d, v, m or "") for d, v, m in zip(self.dates, self.values, self.models, strict=True)
                if v is not None]

    def last(self) -> tuple[datetime, float, str] | None:
        """The line's newest point."""
        found = self.points()
        return found[-1] if found else None


@dataclass(frozen=True, slots=True)
class Marker:
    """An event, drawn as a vertical line at its date with a label."""

    at: datetime
    label: str


@dataclass(frozen=True, slots=True)
class Chart:
    """What one picture shows: its title, the y axis, the lines and the event markers.

    `inverted` puts the smallest value on top (ranks: #1 is the best). `start` and `end` are the
    first and last dates drawn.
    """

    title: str
    y_label: str
    series: tuple[Series, ...]
    markers: tuple[Marker, ...]
    start: datetime
    end: datetime
    inverted: bool = False

    @property
    def is_empty(self) -> bool:
        """True when no line has a single point."""
        return not any(s.points() for s in self.series)


# -- the data ------------------------------------------------------------------------------------------

def group_bests(snapshots: Sequence[Snapshot], groups: Mapping[str, Group]) -> tuple[Series, ...]:
    """Per group, its best entry in each snapshot (the first of the group in rank order): score and name."""
    dates = tuple(s.as_of for s in snapshots)
    out = []
    for name, group in groups.items():
        bests = [next((e for e in snap.entries if group.contains(e)), None) for snap in snapshots]
        out.append(Series(name, dates, tuple(None if e is None else e.score for e in bests),
                          tuple(None if e is None else e.name for e in bests)))
    return tuple(out)


def model_ranks(model_key: str, histories: Mapping[str, Sequence[Snapshot]]) -> tuple[Series, ...]:
    """Per board, the model's rank in each snapshot (its best entry when listed twice)."""
    out = []
    for board_id, snapshots in histories.items():
        found = [next((e for e in snap.entries if e.model_key == model_key), None) for snap in snapshots]
        out.append(Series(board_id, tuple(s.as_of for s in snapshots),
                          tuple(None if e is None else float(e.rank) for e in found),
                          tuple(None if e is None else e.name for e in found)))
    return tuple(out)


def event_label(event: Event) -> str:
    """`Overtake: GLM-4.5`, `New #1: gemini-3-pro`, `Board changed`."""
    title = KIND_TITLES.get(event.kind, event.kind)
    return f"{title}: {event.model}" if event.model else title


def event_markers(events: Iterable[Event]) -> tuple[Marker, ...]:
    """The events as markers, oldest first."""
    return tuple(Marker(e.at, event_label(e)) for e in sorted(events, key=lambda e: (e.at, e.kind)))


def board_events(db: Database, board_id: str, start: datetime, end: datetime) -> list[Event]:
    """The board's stored events from `start` to `end`."""
    return [e for e in recent_events(db, start, [board_id], limit=MAX_EVENTS) if e.at <= end]


def and_list(names: Sequence[str]) -> str:
    """`china`, `china and west`, `china, us and europe`."""
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"


def board_chart(db: Database, board_id: str, groups: Mapping[str, Group], start: datetime,
                end: datetime) -> Chart | None:
    """Each group's best score on a board from `start` to `end`, with the board's events there.

    None when the board has no snapshot in that period.
    """
    snapshots = list(snapshots_between(db, board_id, start, end))
    if not snapshots:
        return None
    first, last = snapshots[0].as_of, snapshots[-1].as_of
    metric = snapshots[-1].board.metric
    title = f"{board_id}: best {metric} of {and_list(list(groups))}, {day(first)} to {day(last)}"
    return Chart(title, metric, group_bests(snapshots, groups),
                 event_markers(board_events(db, board_id, start, end)), first, last)


def model_chart(db: Database, model_key: str, name: str, board_ids: Sequence[str], start: datetime,
                end: datetime) -> Chart | None:
    """A model's rank on each of the boards from `start` to `end` (boards where it has no point left out).

    None when none of the boards lists the model in that period.
    """
    histories = {b: list(snapshots_between(db, b, start, end)) for b in board_ids}
    series = tuple(s for s in model_ranks(model_key, histories) if s.points())
    if not series:
        return None
    dates = [d for s in series for d, _, _ in s.points()]
    first, last = min(dates), max(dates)
    boards = "1 board" if len(series) == 1 else f"{len(series)} boards"
    title = f"{short_name(name)}: rank on {boards}, {day(first)} to {day(last)}"
    return Chart(title, "rank (1 = best)", series, (), first, last, inverted=True)


def count_chart(title: str, y_label: str, dates: Sequence[datetime],
                counts: Mapping[str, Sequence[float]]) -> Chart:
    """One line per name of counts at the same dates (e.g. the boards each group leads, week by week)."""
    series = tuple(Series(name, tuple(dates), tuple(values), (None,) * len(dates))
                   for name, values in counts.items())
    return Chart(title, y_label, series, (), dates[0], dates[-1])


# -- the picture ---------------------------------------------------------------------------------------

def _plain(text: str) -> str:
    """Text as matplotlib shows it literally (a `$` would start mathtext), cleaned as every renderer
    cleans text from the origins (`clean_text`: no NUL, controls or bidi overrides)."""
    return clean_text(text).replace("$", r"\$")


def legend_label(series: Series, inverted: bool) -> str:
    """`china: GLM-4.5 (1434)` for a score line, `lmarena/text: #3` for a rank line."""
    last = series.last()
    if last is None:
        return f"{series.label}: none"
    _, value, model = last
    if inverted:
        return f"{series.label}: #{value:.0f}"
    if not model:  # a count, not a model's score
        return f"{series.label}: {num(value)}"
    return f"{series.label}: {clip(model, 40)} ({num(value)})"


def figure(chart: Chart, size: tuple[int, int] = CHAT_SIZE) -> Figure:
    """The chart as a matplotlib Figure of `size` pixels (not drawn yet: `render` makes the PNG)."""
    # Imported on first use: matplotlib takes most of a second to import, which every other
    # command and CLI run would pay for nothing.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.dates import AutoDateLocator, ConciseDateFormatter, date2num
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    width, height = size
    font = 9 if width < 1000 else 11
    fig = Figure(figsize=(width / DPI, height / DPI), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    for i, series in enumerate(chart.series[:MAX_SERIES]):
        xs = date2num(list(series.dates))  # type: ignore[no-untyped-call]  # matplotlib.dates has no hints
        ys = [math.nan if v is None else v for v in series.values]  # NaN: the line breaks there
        ax.plot(xs, ys, color=PALETTE[i], marker=MARKERS[i], markersize=4 if font < 11 else 5, linewidth=2,
                label=_plain(legend_label(series, chart.inverted)))
    by_date: dict[datetime, list[str]] = {}
    for marker in chart.markers:
        by_date.setdefault(marker.at, []).append(marker.label)
    labelled = sorted(by_date)[-MAX_LABELS:]
    for at, labels in by_date.items():
        x = float(date2num(at))  # type: ignore[no-untyped-call]
        ax.axvline(x, color=MARKER_COLOUR, linestyle=(0, (3, 3)), linewidth=1, zorder=0)
        if at in labelled:
            text = labels[0] if len(labels) == 1 else f"{labels[0]} (+{len(labels) - 1})"
            ax.text(x, 0.98, _plain(clip(text, MAX_LABEL)), transform=ax.get_xaxis_transform(), rotation=90,
                    ha="right", va="top", fontsize=font - 2, color="0.2", clip_on=True,
                    bbox={"facecolor": "white", "alpha": 0.75, "edgecolor": "none", "pad": 1})
    locator = AutoDateLocator(minticks=3, maxticks=8)  # type: ignore[no-untyped-call]
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(ConciseDateFormatter(locator))  # type: ignore[no-untyped-call]
    if chart.inverted:
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
        ax.invert_yaxis()
    ax.set_title(_plain(clip(chart.title, MAX_TITLE)), loc="left", fontsize=font + 2)
    ax.set_ylabel(_plain(chart.y_label), fontsize=font)
    ax.tick_params(labelsize=font - 1)
    ax.grid(True, color="0.9", linewidth=0.8)
    ax.spines[["top", "right"]].set_visible(False)
    if chart.series:
        fig.legend(loc="outside lower center", ncols=min(len(chart.series), 4), fontsize=font - 1,
                   frameon=False)
    return fig


def render(chart: Chart, size: tuple[int, int] = CHAT_SIZE) -> bytes:
    """The chart as PNG bytes of exactly `size` pixels."""
    buffer = io.BytesIO()
    figure(chart, size).savefig(buffer, format="png", dpi=DPI,
                                metadata={"Title": clean_text(clip(chart.title, MAX_TITLE))})
    return buffer.getvalue()


async def draw(chart: Chart, size: tuple[int, int] = CHAT_SIZE) -> bytes:
    """`render` in a worker thread: a few hundred milliseconds the event loop keeps for answering."""
    return await asyncio.to_thread(render, chart, size)
