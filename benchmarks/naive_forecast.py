"""The naive last-value forecast on an Informer-protocol test split: ŷ_{t+k} = x_t for every k.

    python benchmarks/naive_forecast.py --path ../shared/data/ETT-small/ETTh1.csv \
        > benchmarks/results/naive_etth1.json

Every test window of the recipe's context (336 rows) and each horizon of Tables 13 and 14, on the
scaled values (train-only scaler), univariate (S, target OT) and multivariate (M); the reference
the forecasting experiments must beat.
"""

from __future__ import annotations

import argparse
import json

import torch

from s4lab.data.ett import ETT


def naive_errors(dm: ETT) -> tuple[float, float]:
    """Test MSE and MAE of repeating each window's last context value of every target."""
    x, y = zip(*(dm.data_test[i] for i in range(len(dm.data_test))), strict=True)
    x, y = torch.stack(x), torch.stack(y)  # (W, L, d_input), (W, horizon, d_output)
    last = x[:, dm.seq_len - 1, : dm.d_data][:, dm.target_columns]  # (W, d_output)
    error = y - last[:, None]
    return float(error.square().mean()), float(error.abs().mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.partition("\n")[0])
    parser.add_argument("--path", required=True, help="ETTh1.csv (or ETTh2.csv)")
    parser.add_argument("--variant", default="ETTh1")
    parser.add_argument("--seq-len", type=int, default=336)
    parser.add_argument("--horizons", type=int, nargs="+", default=[24, 48, 168, 336, 720])
    args = parser.parse_args()
    rows = []
    for features in ("S", "M"):
        for horizon in args.horizons:
            dm = ETT(".", args.variant, args.path, features, "OT", 1, args.seq_len, horizon)
            dm.setup()
            mse, mae = naive_errors(dm)
            row = {"features": features, "horizon": horizon, "windows": len(dm.data_test)}
            rows.append(row | {"test/mse": round(mse, 4), "test/mae": round(mae, 4)})
    run = "python benchmarks/naive_forecast.py --path <ETTh1.csv>"
    result = {"run": run, "variant": args.variant, "seq_len": args.seq_len, "rows": rows}
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
