"""Synthetic applicants resembling the training data, optionally shifted.

Seeded, so benchmarks and the drift monitor's tests are repeatable. Rows are
drawn from the German Credit applicants (decoded to schema codes) with the
integer fields jittered within their observed range; a shift moves one
field's distribution: integers are scaled, categoricals tilted towards one
category.

``python -m pipelines.synthetic --rows 1000000 --output applicants.parquet``

:func:`home_equity_file` writes a different lender's raw extract, for the
second example configuration (``examples/home_equity``): upper-case column
names, decimal amounts, blank and ``NA`` cells, and values missing more often
for applicants who went on to default (missing not at random), as in real
home-equity files. ``python -m pipelines.synthetic --home-equity --rows 3000
--output examples/home_equity/home_equity.csv``
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from credit_risk.config import Settings, load_project_config
from credit_risk.data import load_applicants
from credit_risk.schema import FeatureSchema
from pipelines.cli import add_config_dir


def generate_applicants(
    source: pd.DataFrame,
    schema: FeatureSchema,
    *,
    rows: int,
    seed: int = 0,
    shift: Mapping[str, float | str] | None = None,
    include_protected: bool = True,
) -> pd.DataFrame:
    """``rows`` applicants resampled from ``source`` (schema codes), jittered and optionally shifted.

    ``shift`` maps a field to a factor (numeric fields: values are multiplied,
    then clipped to the field's range) or to a category code (categorical
    fields: half of the rows are moved to that category).
    """
    rng = np.random.default_rng(seed)
    picked = source.iloc[rng.integers(0, len(source), size=rows)].reset_index(drop=True)
    out = pd.DataFrame(index=picked.index)
    for spec in schema.fields:
        if spec.protected and not include_protected:
            continue
        column = picked[spec.name]
        missing = column.isna().to_numpy()  # a missing value stays missing
        if spec.is_numeric:
            values = pd.to_numeric(column).to_numpy(dtype=np.float64)
            lo, hi = float(source[spec.name].min()), float(source[spec.name].max())
            if hi - lo > 10:  # continuous-like fields get a little noise; coded 1-4 fields stay as they are
                values = values * rng.normal(1.0, 0.05, size=rows)
            factor = (shift or {}).get(spec.name)
            if factor is not None:
                values = values * float(factor)
            values = np.clip(values, spec.min, spec.max)
            if spec.type == "number":
                out[spec.name] = np.round(values, 4)
            elif missing.any():
                out[spec.name] = pd.array(np.where(missing, 0, np.rint(values)).astype(np.int64), dtype="Int64")
                out.loc[missing, spec.name] = pd.NA
            else:
                out[spec.name] = np.rint(values).astype(np.int64)
        else:
            values = np.where(missing, None, column.to_numpy(dtype=object))
            target = (shift or {}).get(spec.name)
            if target is not None:
                if target not in spec.codes:
                    raise ValueError(f"shift for {spec.name!r}: {target!r} is not one of {list(spec.codes)}")
                values = np.where(rng.random(rows) < 0.5, target, values)
            out[spec.name] = pd.Series(values, dtype=object)
    return out


def home_equity_file(*, rows: int, seed: int = 0) -> pd.DataFrame:
    """A seeded home-equity lender's file (raw: its own column names and codes, ``BAD`` 1 = default)."""
    rng = np.random.default_rng(seed)
    value = np.round(np.exp(rng.normal(11.4, 0.45, rows)), 2)  # property value, about 90k
    mortdue = np.round(value * rng.beta(6, 3, rows), 2)
    loan = np.clip(np.rint(np.exp(rng.normal(9.7, 0.5, rows)) / 100) * 100, 1100, 89900).astype(np.int64)
    yoj = np.round(rng.exponential(8.5, rows).clip(0, 41), 1)
    derog = rng.poisson(0.25, rows)
    delinq = rng.poisson(0.45, rows)
    clage = np.round(rng.normal(180, 80, rows).clip(0, 1170), 4)
    ninq = rng.poisson(1.2, rows)
    clno = rng.poisson(21, rows)
    debtinc = np.round(rng.normal(33.5, 8.5, rows).clip(0.5, 203), 6)
    jobs = ["Other", "ProfExe", "Office", "Mgr", "Self", "Sales"]
    job = rng.choice(jobs, rows, p=[0.42, 0.22, 0.17, 0.13, 0.03, 0.03])
    reason = rng.choice(["DebtCon", "HomeImp", "DEBTCON"], rows, p=[0.62, 0.32, 0.06])
    age = rng.integers(19, 80, rows)
    logit = (
        -2.2
        + 0.9 * derog
        + 0.8 * delinq
        - 0.006 * (clage - 180)
        + 0.25 * ninq
        + 0.06 * (debtinc - 33.5)
        - 0.03 * (yoj - 8.5)
        + 0.4 * (mortdue / value - 0.67)
        - 0.2 * np.log(loan / 16000)
        + np.select([job == "Sales", job == "Self", job == "Office"], [0.9, 0.6, -0.4], 0.0)
    )
    bad = rng.random(rows) < 1 / (1 + np.exp(-logit))
    frame = pd.DataFrame(
        {
            "BAD": bad.astype(np.int64),
            "LOAN": loan,
            "MORTDUE": mortdue,
            "VALUE": value,
            "REASON": reason,
            "JOB": job,
            "YOJ": yoj,
            "DEROG": derog,
            "DELINQ": delinq,
            "CLAGE": clage,
            "NINQ": ninq,
            "CLNO": clno,
            "DEBTINC": debtinc,
            "Applicant Age": age,
        }
    ).astype(object)
    # missing at different rates by outcome: debt-to-income goes unstated far more often before a default
    for column, good_rate, bad_rate in (
        ("DEBTINC", 0.10, 0.62),
        ("MORTDUE", 0.08, 0.10),
        ("VALUE", 0.01, 0.06),
        ("REASON", 0.04, 0.05),
        ("JOB", 0.04, 0.08),
        ("YOJ", 0.08, 0.09),
        ("DEROG", 0.10, 0.15),
        ("DELINQ", 0.09, 0.12),
        ("CLAGE", 0.04, 0.06),
        ("NINQ", 0.08, 0.12),
        ("CLNO", 0.03, 0.06),
        ("Applicant Age", 0.20, 0.20),
    ):
        gone = rng.random(rows) < np.where(bad, bad_rate, good_rate)
        frame.loc[gone, column] = np.where(rng.random(int(gone.sum())) < 0.5, "", "NA")
    return frame


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, required=True)
    parser.add_argument("--output", type=Path, required=True, help=".parquet or .csv")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--shift", action="append", default=[], metavar="FIELD=FACTOR_OR_CODE")
    add_config_dir(parser)
    parser.add_argument("--home-equity", action="store_true", help="a raw home-equity lender's file (CSV)")
    args = parser.parse_args(argv)
    if args.home_equity:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        home_equity_file(rows=args.rows, seed=args.seed).to_csv(args.output, index=False)
        print(f"wrote {args.rows} home-equity applicants to {args.output}")
        return 0
    config = load_project_config(args.config_dir or Settings().config_dir)
    shift: dict[str, float | str] = {}
    for item in args.shift:
        name, _, value = item.partition("=")
        spec = config.features.by_name.get(name)
        if spec is None:
            parser.error(f"--shift: unknown field {name!r}")
        shift[name] = float(value) if spec.is_numeric else value
    source, _ = load_applicants(config.resolve(config.training.data.path), config.features)
    frame = generate_applicants(source, config.features, rows=args.rows, seed=args.seed, shift=shift)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    if args.output.suffix == ".csv":
        frame.to_csv(args.output, index=False)
    else:
        frame.to_parquet(args.output, index=False)
    print(f"wrote {len(frame)} applicants to {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
