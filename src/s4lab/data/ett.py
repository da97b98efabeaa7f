"""ETT (Electricity Transformer Temperature) forecasting under the Informer protocol.

Files: `<data_dir>/etth/ETTh{1,2}.csv` (hourly) and `<data_dir>/ettm/ETTm1.csv` (15-minute),
where data_dir is the `informer/` folder of the official data tree, or any such file given as
`path`;
header `date,HUFL,HULL,MUFL,MULL,LUFL,LULL,OT`, dates `YYYY-MM-DD HH:MM:SS`, target column OT.

Borders, with a "month" of m = 30·24 rows (hourly) or 30·24·4 rows (15-minute):
    train = rows [0, 12m),  val = [12m − seq_len, 16m),  test = [16m − seq_len, 20m)
so every val/test window's context may reach back into the previous split, and the rows after 20m
(14,400 for ETTh) are never used. Windows per split: n_rows − seq_len − horizon + 1.
Scaler, fitted on the train rows only (numpy std, ddof 0) and applied to every row:
    x̃ = (x − μ_train) / σ_train
Features: S = the target column alone in and out; M = all 7 columns in and out;
MS = all 7 columns in, the target column out.
Time features (one row per date; weekday counts Monday = 0):
    timeenc 0: the integer calendar fields [month, day, weekday, hour] (+ minute // 15 for 15-min)
    timeenc 1: [hour/23, weekday/6, (day−1)/30, (day_of_year−1)/365] − 0.5, each in [−0.5, 0.5]
               (15-min data prepend minute/59 − 0.5)
    timeenc None: no time features (ours): the input is the series alone, d_time = 0

Batch layout (the official S4 forecasting setup, `src/dataloaders/et.py`, with one change):
    x (B, seq_len + horizon, d_data + d_time): the scaled context, then `horizon` rows of zeros in
      the d_data columns; the time features fill the last d_time columns of every row, the future
      rows included (S4 zeroes the future dates unless `eval_stamp`; our contract keeps them, and
      passes them as input channels instead of a separate `mark` tensor). With timeenc 0 the
      integer fields are stored as float32 values, not embedded.
    y (B, horizon, d_output): the scaled targets of the `horizon` rows after the context.
Informer's `label_len` is not an option: it only shapes Informer's decoder input, and S4's targets
never depend on it. Every window is evaluated (Informer's test loader drops the last partial batch).

`InformerDataModule` holds what the protocol shares (column modes, train-only scaler, time
features, windows); Weather and ECL (`s4lab.data.informer_custom`) differ only in their file,
header and 70/10/20 borders.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset

from s4lab.data.base import SequenceDataModule, require

COLUMNS = ("date", "HUFL", "HULL", "MUFL", "MULL", "LUFL", "LULL", "OT")
VARIANTS = ("ETTh1", "ETTh2", "ETTm1")
FEATURES = ("S", "M", "MS")
PREPARE = "python scripts/prepare_data.py ett"


def rows_per_month(variant: str) -> int:
    """Rows in the protocol's 30-day month: 720 for hourly ETTh, 2880 for 15-minute ETTm."""
    return 30 * 24 * (1 if variant.startswith("ETTh") else 4)


def ett_borders(variant: str, seq_len: int) -> dict[str, tuple[int, int]]:
    """Row ranges [start, end) of the train/val/test splits (12/4/4 months, context overlap)."""
    m = rows_per_month(variant)
    return {
        "train": (0, 12 * m),
        "val": (12 * m - seq_len, 16 * m),
        "test": (16 * m - seq_len, 20 * m),
    }


def read_csv_rows(path: Path, expected_header: str) -> list[list[str]]:
    """The rows of a csv text file, header first; errors name the file and the header expected."""
    try:
        with open(path, newline="", encoding="utf-8") as f:
            rows = list(csv.reader(f))
    except (UnicodeDecodeError, csv.Error) as e:
        raise ValueError(f"{path} is not a readable csv text file ({e}); corrupt download?") from e
    if not rows:
        raise ValueError(f"{path} is empty; expected {expected_header} and data rows")
    return rows


def parse_dated_rows(
    path: Path, rows: list[list[str]], hint: str = ""
) -> tuple[np.ndarray, np.ndarray]:
    """Dates (T,) datetime64[s] and values (T, C) float64 of the data rows under a `date,...`
    header of C + 1 columns; `hint` follows the column-count error."""
    width = len(rows[0])
    for i, row in enumerate(rows[1:], start=2):
        if len(row) != width:
            raise ValueError(f"{path}, line {i}: {len(row)} columns, expected {width}{hint}")
    try:
        dates = np.array([row[0] for row in rows[1:]], dtype="datetime64[s]")
        values = np.array([row[1:] for row in rows[1:]], dtype=np.float64)
    except ValueError as e:
        raise ValueError(
            f"{path}: cannot parse the data rows ({e}); expected `YYYY-MM-DD HH:MM:SS` dates "
            f"and {width - 1} numbers per row"
        ) from e
    return dates, values


def read_ett_csv(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Dates (T,) datetime64[s] and values (T, 7) float64 of an ETT csv; errors name the file."""
    expected = ",".join(COLUMNS)
    rows = read_csv_rows(path, f"the ETT header `{expected}`")
    if tuple(rows[0]) != COLUMNS:
        raise ValueError(
            f"{path}: header `{','.join(rows[0])}` is not the ETT format; expected `{expected}`"
        )
    return parse_dated_rows(path, rows, f" ({expected})")


def calendar_fields(dates: np.ndarray) -> dict[str, np.ndarray]:
    """Integer calendar fields of datetime64 dates (T,): month 1-12, day 1-31, weekday 0-6
    (Monday = 0), day_of_year 1-366, hour 0-23, minute 0-59."""
    day = dates.astype("datetime64[D]")
    month = dates.astype("datetime64[M]")
    year = dates.astype("datetime64[Y]")
    seconds = (dates - day).astype(np.int64)  # seconds since midnight
    return {
        "month": (month - year.astype("datetime64[M]")).astype(np.int64) + 1,
        "day": (day - month.astype("datetime64[D]")).astype(np.int64) + 1,
        "weekday": (day.astype(np.int64) + 3) % 7,  # 1970-01-01 was a Thursday
        "day_of_year": (day - year.astype("datetime64[D]")).astype(np.int64) + 1,
        "hour": seconds // 3600,
        "minute": seconds % 3600 // 60,
    }


def time_features(dates: np.ndarray, timeenc: int | None, minutes: bool) -> np.ndarray:
    """Informer time features (T, d_time) float32 of dates (T,); `minutes` for 15-min data;
    timeenc None: (T, 0)."""
    if timeenc is None:
        return np.zeros((len(dates), 0), dtype=np.float32)
    f = calendar_fields(dates)
    if timeenc == 0:
        cols = [f["month"], f["day"], f["weekday"], f["hour"]]
        cols += [f["minute"] // 15] if minutes else []
    else:
        cols = [
            f["hour"] / 23.0 - 0.5,
            f["weekday"] / 6.0 - 0.5,
            (f["day"] - 1) / 30.0 - 0.5,
            (f["day_of_year"] - 1) / 365.0 - 0.5,
        ]
        cols = ([f["minute"] / 59.0 - 0.5] if minutes else []) + cols
    return np.stack(cols, axis=-1).astype(np.float32)


class ForecastWindows(Dataset):
    """Sliding windows over rows [start, end): x = context + zeroed future, y = future targets."""

    def __init__(
        self,
        data: Tensor,
        stamps: Tensor,
        targets: list[int],
        start: int,
        end: int,
        seq_len: int,
        horizon: int,
    ) -> None:
        self.data, self.stamps, self.targets = data, stamps, targets  # (T, d_data), (T, d_time)
        self.start, self.end, self.seq_len, self.horizon = start, end, seq_len, horizon

    def __len__(self) -> int:
        return max(0, self.end - self.start - self.seq_len - self.horizon + 1)

    def __getitem__(self, i: int) -> tuple[Tensor, Tensor]:
        if not 0 <= i < len(self):
            raise IndexError(i)
        s, t = self.start + i, self.start + i + self.seq_len  # context rows [s, t)
        future = torch.zeros(self.horizon, self.data.shape[1])
        values = torch.cat([self.data[s:t], future])  # (seq_len + horizon, d_data)
        x = torch.cat([values, self.stamps[s : t + self.horizon]], dim=-1)  # (L, d_input)
        y = self.data[t : t + self.horizon, self.targets]  # (horizon, d_output)
        return x, y


class InformerDataModule(SequenceDataModule):
    """Forecasting windows under the Informer protocol: what ETT, Weather and ECL share.

    A subclass sets `path` (the csv), `name` (for messages), `minutes` (15-minute rows) and
    `prepare_command`, and implements `read(path)` -> (dates (T,), values (T, C), the C column
    names) and `borders(n_rows)` -> {"train", "val", "test": (start, end)}. This class then
    selects the columns (S: the target; M, MS: all C), fits the scaler on the train rows only
    (ddof 0), adds the time features and cuts the windows of the module docstring.

    After `setup()`: `d_input` = d_data + d_time, `d_output` (C for M, else 1),
    `l_max` = seq_len + horizon, `horizon`, `columns` (the d_data input column names), and
    `mean`, `std` (d_output,): the train-only scaler of the target columns, to report metrics on
    the original scale.
    """

    path: Path
    name: str
    minutes: bool = False
    prepare_command: str

    def __init__(
        self,
        data_dir: str,
        features: str,
        target: str,
        timeenc: int | None,
        seq_len: int,
        horizon: int,
        batch_size: int,
        batch_size_eval: int | None,
        num_workers: int | None,
        seed: int,
        track_test: bool,
    ) -> None:
        super().__init__(data_dir, batch_size, batch_size_eval, num_workers, seed, track_test)
        if features not in FEATURES:
            raise ValueError(f"features={features!r}; expected one of {FEATURES} (Informer modes)")
        if timeenc not in (0, 1, None):
            raise ValueError(
                f"timeenc={timeenc!r}; expected 0 (calendar integers), 1 (scaled) or null (none)"
            )
        if seq_len < 1 or horizon < 1:
            raise ValueError(f"seq_len={seq_len}, horizon={horizon}; both must be >= 1")
        self.features, self.target, self.timeenc = features, target, timeenc
        self.seq_len, self.horizon = seq_len, horizon
        self.l_max = seq_len + horizon
        self.vocab_size = None

    def read(self, path: Path) -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
        """Dates (T,) datetime64, values (T, C) float64 and the C column names of the file."""
        raise NotImplementedError(f"{type(self).__name__} must define read(path)")

    def borders(self, n_rows: int) -> dict[str, tuple[int, int]]:
        """Row ranges [start, end) of the train/val/test splits of a file of n_rows rows."""
        raise NotImplementedError(f"{type(self).__name__} must define borders(n_rows)")

    def prepare_data(self) -> None:
        require(self.path, prepare=self.prepare_command)

    def setup(self, stage: str | None = None) -> None:
        if self.data_train is not None:
            return
        dates, values, columns = self.read(require(self.path, prepare=self.prepare_command))
        step = np.timedelta64(15 if self.minutes else 60, "m")
        if len(dates) > 1 and dates[1] - dates[0] != step:
            raise ValueError(
                f"{self.path}: rows {dates[1] - dates[0]} apart, expected {step} for {self.name}"
            )
        borders = self.borders(len(values))
        n_needed = borders["test"][1]
        if len(values) < n_needed:
            raise ValueError(
                f"{self.path} has {len(values)} data rows; the {self.name} borders need "
                f"at least {n_needed}. Truncated? Re-create it with: {self.prepare_command}"
            )
        if self.target not in columns:
            raise ValueError(f"{self.path}: no target column {self.target!r} in {columns}")

        i_target = columns.index(self.target)
        cols = [i_target] if self.features == "S" else list(range(values.shape[1]))
        targets = [cols.index(i_target)] if self.features != "M" else list(range(len(cols)))
        data = values[:, cols]  # (T, d_data)
        train_start, train_end = borders["train"]
        mean = data[train_start:train_end].mean(0)
        std = data[train_start:train_end].std(0)  # ddof 0, as Informer's StandardScaler
        scaled = torch.from_numpy((data - mean) / std).float()
        stamps = torch.from_numpy(time_features(dates, self.timeenc, self.minutes))

        self.columns = tuple(columns[i] for i in cols)
        self.mean = torch.from_numpy(mean[targets]).float()  # (d_output,)
        self.std = torch.from_numpy(std[targets]).float()
        self.d_input = data.shape[1] + stamps.shape[1]
        self.d_output = len(targets)
        self.d_data, self.target_columns = data.shape[1], targets  # series columns of x
        splits = {}
        for name, (start, end) in borders.items():
            splits[name] = ForecastWindows(
                scaled, stamps, targets, start, end, self.seq_len, self.horizon
            )
            if start < 0 or len(splits[name]) < 1:
                raise ValueError(
                    f"seq_len + horizon = {self.l_max} leaves no {name} window in rows "
                    f"[{start}, {end}); use a shorter context or horizon"
                )
        self.data_train, self.data_val, self.data_test = (
            splits["train"],
            splits["val"],
            splits["test"],
        )


class ETT(InformerDataModule):
    """ETTh1/ETTh2/ETTm1 forecasting windows; see the module docstring for the protocol and
    `InformerDataModule` for the attributes set by `setup()`."""

    prepare_command = PREPARE

    def __init__(
        self,
        data_dir: str,
        variant: str = "ETTh1",
        path: str | None = None,
        features: str = "S",
        target: str = "OT",
        timeenc: int | None = 0,
        seq_len: int = 384,
        horizon: int = 96,
        batch_size: int = 32,
        batch_size_eval: int | None = None,
        num_workers: int | None = None,
        seed: int = 42,
        track_test: bool = False,
    ) -> None:
        if variant not in VARIANTS:
            raise ValueError(f"variant={variant!r}; expected one of {VARIANTS}")
        if target not in COLUMNS[1:]:
            raise ValueError(f"target={target!r}; expected one of the columns {COLUMNS[1:]}")
        super().__init__(
            data_dir,
            features,
            target,
            timeenc,
            seq_len,
            horizon,
            batch_size,
            batch_size_eval,
            num_workers,
            seed,
            track_test,
        )
        folder = "etth" if variant.startswith("ETTh") else "ettm"
        self.path = Path(path) if path else self.data_dir / folder / f"{variant}.csv"
        self.variant = self.name = variant
        self.minutes = variant.startswith("ETTm")

    def read(self, path: Path) -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
        dates, values = read_ett_csv(path)
        return dates, values, COLUMNS[1:]

    def borders(self, n_rows: int) -> dict[str, tuple[int, int]]:
        return ett_borders(self.variant, self.seq_len)
