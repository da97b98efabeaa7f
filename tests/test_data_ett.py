"""ETT under the Informer protocol: fixture csv files in the published format, plus the real ETTh1.

Fixture facts are checked against values computed here from the rows the fixture wrote, and the
calendar against Python's `datetime`, not against the loader's own helpers.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import TINY, train_checked

from s4lab.data.base import MissingDataError
from s4lab.data.ett import ETT, ett_borders, time_features

HEADER = "date,HUFL,HULL,MUFL,MULL,LUFL,LULL,OT"
START = dt.datetime(2016, 7, 1)
REAL_ETTH1 = Path(__file__).resolve().parents[1].parent / "shared/data/ETT-small/ETTh1.csv"


def write_ett_csv(path: Path, n_rows: int, minutes: int = 60, seed: int = 0) -> np.ndarray:
    """Write an ETT csv in the published format (header, `YYYY-MM-DD HH:MM:SS`, float32 reprs).

    Rows from month 12 on are shifted by +100, so statistics over all rows differ from the train
    rows'. Returns the written values (n_rows, 7) as float64.
    """
    rng = np.random.default_rng(seed)
    values = rng.normal(size=(n_rows, 7)) * np.arange(1, 8) + np.arange(7)
    values[12 * 30 * 24 * 60 // minutes :] += 100.0
    values = values.astype(np.float32).astype(np.float64)  # the published files' precision
    lines = [HEADER]
    for i, row in enumerate(values.tolist()):
        date = START + dt.timedelta(minutes=minutes * i)
        lines.append(f"{date:%Y-%m-%d %H:%M:%S}," + ",".join(map(repr, row)))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")
    return values


@pytest.fixture(scope="module")
def etth_root(tmp_path_factory) -> tuple[Path, np.ndarray]:
    """A data root holding informer/etth/ETTh1.csv with the published 17,420 hourly rows."""
    root = tmp_path_factory.mktemp("data")
    values = write_ett_csv(root / "informer/etth/ETTh1.csv", 17_420)
    return root, values


def make(root: Path, **kwargs) -> ETT:
    """The ETT datamodule of a data root (its data_dir is the root's informer/ folder), set up."""
    dm = ETT(data_dir=str(root / "informer"), **({"seq_len": 48, "horizon": 24} | kwargs))
    dm.prepare_data()
    dm.setup("fit")
    return dm


def test_borders_follow_the_12_4_4_month_protocol():
    assert ett_borders("ETTh1", 96) == {
        "train": (0, 8640),
        "val": (8640 - 96, 11520),
        "test": (11520 - 96, 14400),
    }
    assert ett_borders("ETTm1", 96) == {
        "train": (0, 34560),
        "val": (34560 - 96, 46080),
        "test": (46080 - 96, 57600),
    }


def test_window_counts_and_sizes(etth_root):
    root, _ = etth_root
    dm = make(root, seq_len=48, horizon=24)
    assert (len(dm.data_train), len(dm.data_val), len(dm.data_test)) == (8569, 2857, 2857)
    assert (dm.d_input, dm.d_output, dm.l_max, dm.vocab_size, dm.horizon) == (5, 1, 72, None, 24)


def test_scaler_is_fitted_on_train_rows_only(etth_root):
    root, values = etth_root
    dm = make(root, features="M")
    train = values[:8640]
    torch.testing.assert_close(dm.mean, torch.tensor(train.mean(0), dtype=torch.float32))
    torch.testing.assert_close(dm.std, torch.tensor(train.std(0), dtype=torch.float32))
    assert not np.allclose(values[:14400].mean(0), train.mean(0))  # the fixture can tell them apart
    x, y = dm.data_test[len(dm.data_test) - 1]
    expected = (values[14400 - 24 : 14400] - train.mean(0)) / train.std(0)  # last test targets
    torch.testing.assert_close(y, torch.tensor(expected, dtype=torch.float32))


@pytest.mark.parametrize(
    ("features", "d_data", "targets"), [("S", 1, [6]), ("M", 7, list(range(7))), ("MS", 7, [6])]
)
def test_feature_modes_and_batch_layout(etth_root, features, d_data, targets):
    root, values = etth_root
    seq_len, horizon = 48, 24
    dm = make(root, features=features, seq_len=seq_len, horizon=horizon, timeenc=1)
    assert (dm.d_input, dm.d_output) == (d_data + 4, len(targets))
    mean, std = values[:8640].mean(0), values[:8640].std(0)
    scaled = torch.tensor((values - mean) / std, dtype=torch.float32)
    cols = [6] if features == "S" else list(range(7))

    i = 100  # val window i starts at row 8640 - seq_len + i
    x, y = dm.data_val[i]
    s = 8640 - seq_len + i
    assert x.shape == (seq_len + horizon, d_data + 4) and x.dtype == torch.float32
    assert y.shape == (horizon, len(targets)) and y.dtype == torch.float32
    torch.testing.assert_close(x[:seq_len, :d_data], scaled[s : s + seq_len, cols])
    assert torch.all(x[seq_len:, :d_data] == 0)  # the future values are hidden
    torch.testing.assert_close(y, scaled[s + seq_len : s + seq_len + horizon, targets])
    first_future = START + dt.timedelta(hours=s + seq_len)
    hour_feature = x[seq_len, d_data]  # time features stay on the future rows
    assert hour_feature.item() == pytest.approx(first_future.hour / 23 - 0.5)

    xb, yb = next(iter(dm.train_dataloader()))
    assert xb.shape == (32, seq_len + horizon, d_data + 4)
    assert yb.shape == (32, horizon, len(targets))


def test_time_encodings_match_the_calendar():
    dates = [dt.datetime(2016, 12, 31, 23, 45), dt.datetime(2017, 1, 1, 0, 0)]
    dates += [START + dt.timedelta(minutes=15 * k) for k in range(0, 5000, 37)]
    d64 = np.array([d.isoformat() for d in dates], dtype="datetime64[s]")

    enc0 = time_features(d64, timeenc=0, minutes=True)
    expected0 = [[d.month, d.day, d.weekday(), d.hour, d.minute // 15] for d in dates]
    np.testing.assert_array_equal(enc0, np.array(expected0, dtype=np.float32))
    np.testing.assert_array_equal(time_features(d64, timeenc=0, minutes=False), enc0[:, :4])

    enc1 = time_features(d64, timeenc=1, minutes=True)
    expected1 = [
        [
            d.minute / 59 - 0.5,
            d.hour / 23 - 0.5,
            d.weekday() / 6 - 0.5,
            (d.day - 1) / 30 - 0.5,
            (d.timetuple().tm_yday - 1) / 365 - 0.5,
        ]
        for d in dates
    ]
    np.testing.assert_allclose(enc1, np.array(expected1), atol=1e-6)
    np.testing.assert_array_equal(time_features(d64, timeenc=1, minutes=False), enc1[:, 1:])
    assert enc1.min() >= -0.5 and enc1.max() <= 0.5
    assert enc1[0, 4] == pytest.approx(0.5)  # 31 Dec 2016 is day 366 of a leap year


def test_no_time_features_leaves_the_series_alone(etth_root):
    """timeenc None (the forecasting recipe): x holds the d_data series columns and nothing else."""
    root, values = etth_root
    dm = make(root, features="M", seq_len=48, horizon=24, timeenc=None)
    assert (dm.d_input, dm.d_output) == (7, 7)
    x, _ = dm.data_train[5]
    scaled = (values - values[:8640].mean(0)) / values[:8640].std(0)
    assert x.shape == (48 + 24, 7)
    torch.testing.assert_close(x[:48], torch.tensor(scaled[5:53], dtype=torch.float32))
    assert torch.all(x[48:] == 0)
    assert time_features(np.array(["2016-07-01"], dtype="datetime64[s]"), None, False).shape == (
        1,
        0,
    )


def test_ettm_uses_four_times_the_rows(tmp_path):
    values = write_ett_csv(tmp_path / "informer/ettm/ETTm1.csv", 57_600, minutes=15)
    dm = make(tmp_path, variant="ETTm1", seq_len=96, horizon=48, timeenc=0)
    assert (len(dm.data_train), len(dm.data_val), len(dm.data_test)) == (34417, 11473, 11473)
    assert dm.d_input == 1 + 5  # OT + month, day, weekday, hour, minute // 15
    torch.testing.assert_close(dm.mean, torch.tensor(values[:34560, 6:].mean(0)).float())
    x, _ = dm.data_train[1]  # starts at 00:15
    assert x[0, 1:].tolist() == [7, 1, 4, 0, 1]  # July, 1st, Friday, 0 h, quarter 1


def test_explicit_path_overrides_data_dir(etth_root, tmp_path):
    root, _ = etth_root
    dm = ETT(data_dir=str(tmp_path), path=str(root / "informer/etth/ETTh1.csv"), seq_len=24)
    dm.setup("fit")
    assert len(dm.data_test) == 2880 - 96 + 1


def test_missing_file_names_path_and_prepare_command(tmp_path):
    dm = ETT(data_dir=str(tmp_path / "informer"), variant="ETTh2")
    with pytest.raises(MissingDataError) as e:
        dm.prepare_data()
    assert str(tmp_path / "informer/etth/ETTh2.csv") in str(e.value)
    assert "python scripts/prepare_data.py ett" in str(e.value)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "is empty; expected the ETT header `" + HEADER),
        ("date,OT\n2016-07-01 00:00:00,1.0\n", "expected `" + HEADER),
        (HEADER + "\n2016-07-01 00:00:00,1,2,3\n", "line 2: 4 columns, expected 8"),
        (HEADER + "\n2016-07-01 00:00:00,1,2,3,4,5,6,x\n", "cannot parse the data rows"),
        (HEADER + "\n2016-07-01 00:00:00,1,2,3,4,5,6,7\n", "need at least 14400. Truncated?"),
    ],
)
def test_bad_files_say_what_was_expected(tmp_path, text, message):
    path = tmp_path / "ETTh1.csv"
    path.write_text(text)
    with pytest.raises(ValueError, match="ETTh1.csv") as e:
        ETT(data_dir=str(tmp_path), path=str(path)).setup("fit")
    assert message in str(e.value)


def test_binary_garbage_names_the_file(tmp_path):
    path = tmp_path / "ETTh1.csv"
    path.write_bytes(b"\x1f\x8b\x08\x00\xff\xfe" * 10)  # e.g. a gzip saved under the csv name
    with pytest.raises(ValueError, match="ETTh1.csv is not a readable csv text file"):
        ETT(data_dir=str(tmp_path), path=str(path)).setup("fit")


def test_hourly_file_read_as_15_minute_is_refused(etth_root):
    root, _ = etth_root
    path = root / "informer/etth/ETTh1.csv"
    with pytest.raises(ValueError, match="expected 15 minutes for ETTm1"):
        ETT(data_dir=str(root), variant="ETTm1", path=str(path)).setup("fit")


def test_bad_options_are_refused(tmp_path):
    with pytest.raises(ValueError, match="expected one of"):
        ETT(data_dir=str(tmp_path), features="MM")
    with pytest.raises(ValueError, match="expected one of the columns"):
        ETT(data_dir=str(tmp_path), target="oil")
    with pytest.raises(ValueError, match=r"timeenc=2; expected 0 .* or null \(none\)"):
        ETT(data_dir=str(tmp_path), timeenc=2)


@pytest.mark.skipif(not REAL_ETTH1.exists(), reason=f"real ETTh1 not found at {REAL_ETTH1}")
def test_real_etth1_windows_and_train_only_scaler():
    dm = ETT(data_dir="unused", path=str(REAL_ETTH1), seq_len=384, horizon=96, features="MS")
    dm.setup("fit")
    assert (len(dm.data_train), len(dm.data_val), len(dm.data_test)) == (8161, 2785, 2785)
    assert dm.mean.item() == pytest.approx(17.128, abs=1e-3)  # OT over the 8,640 train rows
    assert dm.std.item() == pytest.approx(9.176, abs=1e-3)
    assert dm.d_input == 7 + 4


CONFIGS = Path(__file__).resolve().parents[1] / "configs"


@pytest.mark.parametrize("experiment", ["forecasting/etth1", "forecasting/etth1_multivariate"])
def test_one_training_step_through_train(compose_train, etth_root, capsys, experiment):
    root, _ = etth_root
    cfg = compose_train(
        *TINY,
        f"experiment={experiment}",
        "debug=fdr",
        f"paths.data_dir={root}",
        "data.seq_len=48",
        "data.horizon=24",
    )
    train_checked(cfg)
    mse = re.search(r"test/mse = (\S+),", capsys.readouterr().out)  # train() reports test metrics
    assert mse is not None and math.isfinite(float(mse.group(1)))
