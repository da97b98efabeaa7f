"""Weather and ECL forecasting under the Informer protocol (Informer's `Dataset_Custom`).

Files, from the official `informer.zip` (linked in S4's `src/dataloaders/README.md`):
`<data_dir>/weather/WTH.csv` and `<data_dir>/ecl/ECL.csv`, where data_dir is the `informer/`
folder of the official tree, or any such file given as `path`. Both are hourly, with dates
`YYYY-MM-DD HH:MM:SS` in the first column, `date`.
    Weather: target `WetBulbCelsius`; 12 data columns (Informer `main_informer.py` data_parser
             'WTH': M [12, 12, 12]).
    ECL:     target `MT_320`; 321 client columns MT_000..MT_320 (data_parser 'ECL': M [321, ...]).
No stored Informer or S4 file lists the WTH.csv header, so any header is accepted whose first
column is `date` and which holds the target; the column count is not enforced either.

Protocol, as the official S4 `InformerDataset` (`src/dataloaders/et.py@ab287c6`, the base of its
`_Dataset_Weather` / `_Dataset_ECL`, identical in `@43f5b0c`) and Informer's `Dataset_Custom`
(`data/data_loader.py@9d74efd` of zhouhaoyi/Informer2020):
    columns reordered to (date, the other columns in file order, target), so the target is last;
    with n rows, num_train = int(n·0.7), num_test = int(n·0.2), num_val = n − num_train − num_test;
    train = [0, num_train),  val = [num_train − seq_len, num_train + num_val),
    test = [n − num_test − seq_len, n);
    scaler fitted on the train rows only (numpy std, ddof 0), applied to every row.
One difference between the two: Informer `@9d74efd` fits its StandardScaler on all n rows
(`scaler.fit_transform(df_data.values)`); S4 fits it on rows [0, num_train), and so do we.
Time features (freq `h`), feature modes S/M/MS and the batch layout are ETT's (`s4lab.data.ett`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from s4lab.data.ett import InformerDataModule, parse_dated_rows, read_csv_rows


def custom_borders(n_rows: int, seq_len: int) -> dict[str, tuple[int, int]]:
    """Row ranges [start, end) of Informer's 70/10/20 split, val/test contexts reaching back."""
    num_train = int(n_rows * 0.7)
    num_test = int(n_rows * 0.2)
    num_val = n_rows - num_train - num_test
    return {
        "train": (0, num_train),
        "val": (num_train - seq_len, num_train + num_val),
        "test": (n_rows - num_test - seq_len, n_rows),
    }


def read_custom_csv(path: Path, target: str) -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
    """Dates (T,) datetime64[s], values (T, C) float64 and the C column names of a `date,...`
    csv, columns reordered so `target` is last; errors name the file."""
    rows = read_csv_rows(path, f"a header `date,...,{target}`")
    header = rows[0]
    if header[0] != "date" or target not in header[1:]:
        raise ValueError(
            f"{path}: header `{','.join(header[:4])}{',...' if len(header) > 4 else ''}` is not "
            f"the Informer format; expected `date` first and the target column {target!r}"
        )
    dates, values = parse_dated_rows(path, rows)
    names = header[1:]
    order = [j for j, name in enumerate(names) if name != target] + [names.index(target)]
    return dates, values[:, order], tuple(names[j] for j in order)


class InformerCustom(InformerDataModule):
    """A `date,...` csv under Informer's 70/10/20 protocol; see the module docstring.

    Subclasses name their file (`FILE`, under data_dir), default `TARGET` and `PREPARE` command;
    `target=None` takes `TARGET`. Attributes after `setup()`: see `InformerDataModule`.
    """

    FILE: str
    TARGET: str
    PREPARE: str

    def __init__(
        self,
        data_dir: str,
        path: str | None = None,
        features: str = "S",
        target: str | None = None,
        timeenc: int | None = 0,
        seq_len: int = 384,
        horizon: int = 96,
        batch_size: int = 32,
        batch_size_eval: int | None = None,
        num_workers: int | None = None,
        seed: int = 42,
        track_test: bool = False,
    ) -> None:
        super().__init__(
            data_dir,
            features,
            target or self.TARGET,
            timeenc,
            seq_len,
            horizon,
            batch_size,
            batch_size_eval,
            num_workers,
            seed,
            track_test,
        )
        self.path = Path(path) if path else self.data_dir / self.FILE
        self.name = type(self).__name__
        self.prepare_command = self.PREPARE

    def read(self, path: Path) -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
        return read_custom_csv(path, self.target)

    def borders(self, n_rows: int) -> dict[str, tuple[int, int]]:
        return custom_borders(n_rows, self.seq_len)


class Weather(InformerCustom):
    """Informer's Weather (`WTH.csv`, hourly, target WetBulbCelsius), official S4 `weather`."""

    FILE = "weather/WTH.csv"
    TARGET = "WetBulbCelsius"
    PREPARE = "python scripts/prepare_data.py weather"


class ECL(InformerCustom):
    """Informer's ECL (`ECL.csv`, hourly, 321 clients, target MT_320), official S4 `ecl`."""

    FILE = "ecl/ECL.csv"
    TARGET = "MT_320"
    PREPARE = "python scripts/prepare_data.py ecl"
