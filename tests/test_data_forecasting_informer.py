"""Weather and ECL under the Informer protocol (70/10/20 borders): fixture csv files in the
published layout, `<root>/informer/{weather/WTH.csv, ecl/ECL.csv}`.

Borders and window counts are worked out by hand here, and the scaler's statistics and the
scaled windows are computed from the rows each fixture wrote, not with the loader's helpers.
The WTH.csv header below is the 12-column one the Informer data_parser implies (M: 12); no stored
Informer or S4 file lists its names, so they are realistic, not verified.
"""

from __future__ import annotations

import datetime as dt
import importlib.util
import math
import re
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import TINY, train_checked

from s4lab.data.base import MissingDataError
from s4lab.data.informer_custom import ECL, Weather, custom_borders

WTH_HEADER = (
    "date,Visibility,DryBulbFarenheit,DryBulbCelsius,WetBulbFarenheit,DewPointFarenheit,"
    "DewPointCelsius,RelativeHumidity,WindSpeed,WindDirection,StationPressure,Altimeter,"
    "WetBulbCelsius"
)
ECL_HEADER = "date," + ",".join(f"MT_{i:03d}" for i in range(5)) + ",MT_320"
WTH_ROWS, ECL_ROWS = 401, 300  # 280/41/80 and 210/30/60 train/val/test rows
SEQ_LEN, HORIZON = 48, 24
WTH_START, ECL_START = dt.datetime(2010, 1, 1), dt.datetime(2012, 1, 1)


def write_csv(path: Path, header: str, n_rows: int, start: dt.datetime, seed: int = 0):
    """Write an hourly `date,...` csv in the published style (`YYYY-MM-DD HH:MM:SS`, short
    decimals). Rows from int(0.7 n) on are shifted by +100, so statistics over all rows differ
    from the train rows'. Returns the written values (n_rows, C) in file order, float64."""
    n_cols = header.count(",")
    rng = np.random.default_rng(seed)
    values = np.round(rng.normal(size=(n_rows, n_cols)) * np.arange(1, n_cols + 1), 2)
    values[int(n_rows * 0.7) :] += 100.0
    lines = [header]
    for i, row in enumerate(values.tolist()):
        date = start + dt.timedelta(hours=i)
        lines.append(f"{date:%Y-%m-%d %H:%M:%S}," + ",".join(map(repr, row)))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")
    return values


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> tuple[Path, np.ndarray, np.ndarray]:
    """A data root holding informer/weather/WTH.csv and informer/ecl/ECL.csv; their values."""
    root = tmp_path_factory.mktemp("data")
    wth = write_csv(
        root / "informer/weather/WTH.csv", WTH_HEADER, WTH_ROWS, dt.datetime(2010, 1, 1)
    )
    ecl = write_csv(root / "informer/ecl/ECL.csv", ECL_HEADER, ECL_ROWS, dt.datetime(2012, 1, 1), 1)
    return root, wth, ecl


def make(cls, root: Path, **kwargs):
    """The datamodule of a data root (data_dir = its informer/ folder), set up."""
    dm = cls(data_dir=str(root / "informer"), **({"seq_len": SEQ_LEN, "horizon": HORIZON} | kwargs))
    dm.prepare_data()
    dm.setup("fit")
    return dm


def test_borders_follow_the_70_10_20_protocol():
    assert custom_borders(401, 48) == {"train": (0, 280), "val": (232, 321), "test": (273, 401)}
    # the published sizes (Weather 4 years, ECL 3 years of hourly rows, as commonly reported)
    assert custom_borders(35064, 96) == {
        "train": (0, 24544),
        "val": (24544 - 96, 24544 + 3508),
        "test": (35064 - 7012 - 96, 35064),
    }
    assert custom_borders(26304, 96) == {
        "train": (0, 18412),
        "val": (18412 - 96, 18412 + 2632),
        "test": (26304 - 5260 - 96, 26304),
    }


def test_window_counts_per_split(root):
    root, _, _ = root
    dm = make(Weather, root)  # rows [0, 280), [232, 321), [273, 401); 72 rows per window
    assert (len(dm.data_train), len(dm.data_val), len(dm.data_test)) == (209, 18, 57)
    assert (dm.d_input, dm.d_output, dm.l_max, dm.vocab_size, dm.horizon) == (5, 1, 72, None, 24)
    dm = make(ECL, root)  # rows [0, 210), [162, 240), [192, 300)
    assert (len(dm.data_train), len(dm.data_val), len(dm.data_test)) == (139, 7, 37)


@pytest.mark.parametrize(
    ("features", "d_data", "d_output"), [("S", 1, 1), ("M", 12, 12), ("MS", 12, 1)]
)
def test_feature_modes_shapes_and_values(root, features, d_data, d_output):
    root, values, _ = root
    dm = make(Weather, root, features=features, timeenc=1)
    assert (dm.d_input, dm.d_output) == (d_data + 4, d_output)
    assert dm.columns[-1] == "WetBulbCelsius"  # the target, last (here also last in the file)
    mean, std = values[:280].mean(0), values[:280].std(0)
    scaled = torch.tensor((values - mean) / std, dtype=torch.float32)
    cols = [11] if features == "S" else list(range(12))
    targets = list(range(12)) if features == "M" else [11]

    i = 5  # val window i starts at row 280 - seq_len + i
    x, y = dm.data_val[i]
    s = 280 - SEQ_LEN + i
    assert x.shape == (SEQ_LEN + HORIZON, d_data + 4) and x.dtype == torch.float32
    assert y.shape == (HORIZON, d_output) and y.dtype == torch.float32
    torch.testing.assert_close(x[:SEQ_LEN, :d_data], scaled[s : s + SEQ_LEN, cols])
    assert torch.all(x[SEQ_LEN:, :d_data] == 0)  # the future values are hidden
    torch.testing.assert_close(y, scaled[s + SEQ_LEN : s + SEQ_LEN + HORIZON, targets])
    first_future = WTH_START + dt.timedelta(hours=s + SEQ_LEN)
    assert x[SEQ_LEN, d_data].item() == pytest.approx(first_future.hour / 23 - 0.5)

    xb, yb = next(iter(dm.train_dataloader()))
    assert xb.shape == (32, SEQ_LEN + HORIZON, d_data + 4)
    assert yb.shape == (32, HORIZON, d_output)


def test_ecl_modes_and_target_column(root):
    root, _, values = root
    dm = make(ECL, root, features="M")
    assert dm.columns == ("MT_000", "MT_001", "MT_002", "MT_003", "MT_004", "MT_320")
    assert (dm.d_input, dm.d_output) == (6 + 4, 6)
    x, y = make(ECL, root).data_test[0]  # features S, timeenc 0
    scaled = (values[:, 5] - values[:210, 5].mean()) / values[:210, 5].std()
    s = 300 - 60 - SEQ_LEN  # the first test window
    torch.testing.assert_close(y[:, 0], torch.tensor(scaled[s + SEQ_LEN : s + 72]).float())
    assert x[0, 1:].tolist() == [1, 9, 0, 0]  # timeenc 0 at row 192: 9 Jan 2012 (Monday), 0 h


def test_target_is_moved_last_whatever_its_place_in_the_file(tmp_path):
    header = "date,MT_000,MT_320,MT_001"
    values = write_csv(tmp_path / "ECL.csv", header, ECL_ROWS, ECL_START)
    path = str(tmp_path / "ECL.csv")
    dm = ECL(data_dir="unused", path=path, features="MS", seq_len=24, horizon=6)
    dm.setup("fit")
    assert dm.columns == ("MT_000", "MT_001", "MT_320")
    x, y = dm.data_train[0]
    train = values[:210]
    expected_x = (values[:24, [0, 2, 1]] - train.mean(0)[[0, 2, 1]]) / train.std(0)[[0, 2, 1]]
    torch.testing.assert_close(x[:24, :3], torch.tensor(expected_x).float())
    expected_y = (values[24:30, 1] - train[:, 1].mean()) / train[:, 1].std()  # MT_320, file col 2
    torch.testing.assert_close(y[:, 0], torch.tensor(expected_y).float())
    torch.testing.assert_close(dm.mean, torch.tensor([train[:, 1].mean()]).float())


def test_scaler_uses_train_rows_only(root, tmp_path):
    root, values, _ = root
    dm = make(Weather, root, features="M")
    train = values[:280]
    torch.testing.assert_close(dm.mean, torch.tensor(train.mean(0)).float())
    torch.testing.assert_close(dm.std, torch.tensor(train.std(0)).float())
    assert not np.allclose(values.mean(0), train.mean(0))  # the fixture can tell them apart

    lines = (root / "informer/weather/WTH.csv").read_text().splitlines()
    date, *cells = lines[-1].split(",")  # the last test row: every value + 1000
    lines[-1] = ",".join([date, *(repr(float(c) + 1000.0) for c in cells)])
    changed = tmp_path / "WTH.csv"
    changed.write_text("\n".join(lines) + "\n")
    dm2 = Weather(data_dir="unused", path=str(changed), features="M", seq_len=SEQ_LEN, horizon=24)
    dm2.setup("fit")
    torch.testing.assert_close(dm2.mean, dm.mean)  # the scaler did not move
    torch.testing.assert_close(dm2.std, dm.std)
    y, y2 = dm.data_test[len(dm.data_test) - 1][1], dm2.data_test[len(dm2.data_test) - 1][1]
    torch.testing.assert_close(y2[-1] - y[-1], 1000.0 / dm.std)  # but the test row did
    torch.testing.assert_close(y2[:-1], y[:-1])


@pytest.mark.parametrize(
    ("cls", "file", "name"), [(Weather, "weather/WTH.csv", "weather"), (ECL, "ecl/ECL.csv", "ecl")]
)
def test_missing_file_names_path_and_prepare_command(tmp_path, cls, file, name):
    dm = cls(data_dir=str(tmp_path / "informer"))
    with pytest.raises(MissingDataError) as e:
        dm.prepare_data()
    assert str(tmp_path / "informer" / file) in str(e.value)
    assert f"python scripts/prepare_data.py {name}" in str(e.value)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "is empty"),
        ("MT_320,date\n1,2012-01-01 00:00:00\n", "expected `date` first and the target column"),
        ("date,MT_000\n2012-01-01 00:00:00,1\n", "the target column 'MT_320'"),
        ("date,MT_320\n2012-01-01 00:00:00,1,2\n", "line 2: 3 columns, expected 2"),
        ("date,MT_320\n2012-01-01 00:00:00,x\n", "cannot parse the data rows"),
        ("date,MT_320\n2012-01-01 00:00:00,1\n2012-01-01 00:15:00,1\n", "expected 60 minutes"),
    ],
)
def test_bad_files_say_what_was_expected(tmp_path, text, message):
    path = tmp_path / "ECL.csv"
    path.write_text(text)
    with pytest.raises(ValueError, match="ECL.csv") as e:
        ECL(data_dir=str(tmp_path), path=str(path)).setup("fit")
    assert message in str(e.value)


def test_windows_longer_than_the_train_rows_are_refused(root):
    root, _, _ = root
    with pytest.raises(ValueError, match=r"= 212 leaves no train window in rows \[0, 210\)"):
        make(ECL, root, seq_len=211, horizon=1)


@pytest.mark.parametrize(
    "experiment",
    [
        "forecasting/weather",
        "forecasting/weather_multivariate",
        "forecasting/ecl",
        "forecasting/ecl_multivariate",
    ],
)
def test_one_training_step_through_train(compose_train, root, capsys, experiment):
    root, _, _ = root
    cfg = compose_train(
        *TINY,
        f"experiment={experiment}",
        "debug=fdr",
        f"paths.data_dir={root}",
        f"data.seq_len={SEQ_LEN}",
        f"data.horizon={HORIZON}",
    )
    train_checked(cfg)
    mse = re.search(r"test/mse = (\S+),", capsys.readouterr().out)  # train() reports test metrics
    assert mse is not None and math.isfinite(float(mse.group(1)))


SCRIPT = Path(__file__).parents[1] / "scripts" / "prepare_data.py"


@pytest.fixture(scope="module")
def prepare_data():
    spec = importlib.util.spec_from_file_location("prepare_data", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("prepare_data", module)  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_prepare_without_a_source_says_where_to_put_the_file(prepare_data, tmp_path, capsys):
    assert prepare_data.main(["weather", "--data-dir", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert str(tmp_path / "informer/weather/WTH.csv") in err
    assert "drive.google.com" in err and "--from DIR" in err


def test_prepare_from_a_csv_or_from_informer_zip(prepare_data, tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    (src / "WTH.csv").write_text(WTH_HEADER + "\n")
    root = tmp_path / "data"
    assert prepare_data.main(["weather", "--data-dir", str(root), "--from", str(src)]) == 0
    assert (root / "informer/weather/WTH.csv").read_text() == WTH_HEADER + "\n"

    with zipfile.ZipFile(src / "informer.zip", "w") as z:
        z.writestr("informer/ecl/ECL.csv", ECL_HEADER + "\n")
        z.writestr("informer/weather/WTH.csv", WTH_HEADER + "\n")
    assert prepare_data.main(["ecl", "--data-dir", str(root), "--from", str(src)]) == 0
    assert (root / "informer/ecl/ECL.csv").read_text() == ECL_HEADER + "\n"
