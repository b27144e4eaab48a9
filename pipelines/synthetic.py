"""Synthetic applicants resembling the training data, optionally shifted.

Seeded, so benchmarks and the drift monitor's tests are repeatable. Rows are
drawn from the German Credit applicants (decoded to schema codes) with the
integer fields jittered within their observed range; a shift moves one
field's distribution: integers are scaled, categoricals tilted towards one
category.

``python -m pipelines.synthetic --rows 1000000 --output applicants.parquet``
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from credit_risk.config import Settings, load_project_config
from credit_risk.schema import FeatureSchema
from pipelines.cli import add_config_dir
from pipelines.data import load_applicants


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

    ``shift`` maps a field to a factor (integer fields: values are multiplied,
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
        if spec.type == "integer":
            values = column.to_numpy(dtype=np.float64)
            lo, hi = float(source[spec.name].min()), float(source[spec.name].max())
            if hi - lo > 10:  # continuous-like fields get a little noise; coded 1-4 fields stay as they are
                values = values * rng.normal(1.0, 0.05, size=rows)
            factor = (shift or {}).get(spec.name)
            if factor is not None:
                values = values * float(factor)
            out[spec.name] = np.clip(np.rint(values), spec.min, spec.max).astype(np.int64)
        else:
            values = column.to_numpy(dtype=object)
            target = (shift or {}).get(spec.name)
            if target is not None:
                if target not in spec.codes:
                    raise ValueError(f"shift for {spec.name!r}: {target!r} is not one of {list(spec.codes)}")
                values = np.where(rng.random(rows) < 0.5, target, values)
            out[spec.name] = pd.Series(values, dtype=object).astype(str)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, required=True)
    parser.add_argument("--output", type=Path, required=True, help=".parquet or .csv")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--shift", action="append", default=[], metavar="FIELD=FACTOR_OR_CODE")
    add_config_dir(parser)
    args = parser.parse_args(argv)
    config = load_project_config(args.config_dir or Settings().config_dir)
    shift: dict[str, float | str] = {}
    for item in args.shift:
        name, _, value = item.partition("=")
        spec = config.features.by_name.get(name)
        if spec is None:
            parser.error(f"--shift: unknown field {name!r}")
        shift[name] = float(value) if spec.type == "integer" else value
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
