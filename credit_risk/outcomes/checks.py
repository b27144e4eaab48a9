"""Row checks for loaded outcomes: each refused row is named with its rule, the others go on.

Rules, in the order they are applied (a row gets the first it breaks):

- ``missing_id``: neither ``request_id`` nor ``applicant_id``;
- ``unknown_outcome``: the outcome is not one of the target's two values;
- ``invalid_observed_at``: ``observed_at`` is not an ISO date or timestamp;
- ``duplicate_id``: the same id twice in one file (every copy is refused: which is right is unknown);
- ``unknown_id``: no logged decision has that request_id (or applicant_id);
- ``ambiguous_applicant``: an ``applicant_id`` row whose applicant has several decisions made at or
  before ``observed_at``: which one the outcome belongs to is unknown (give its request_id);
- ``observed_before_decision``: the outcome is dated before the decision it would belong to.

An ``applicant_id`` row belongs to that applicant's one decision made at or before ``observed_at``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa

from credit_risk.schema import DataValidationError, TargetSpec

RULES = (
    "missing_id",
    "unknown_outcome",
    "invalid_observed_at",
    "duplicate_id",
    "unknown_id",
    "ambiguous_applicant",
    "observed_before_decision",
)
_NAMED = 3  # request ids an ambiguity message lists
ID_COLUMNS = ("request_id", "applicant_id")
REJECT_COLUMNS = ["row", "rule", "message", "request_id", "applicant_id", "outcome", "observed_at"]


@dataclass(frozen=True)
class Checked:
    """Rows that passed (one per decision, ready for the table) and rows refused, with their rule."""

    accepted: pa.Table
    rejects: pd.DataFrame

    @property
    def rejected(self) -> int:
        return len(self.rejects)


def _text(frame: pd.DataFrame, name: str) -> pd.Series:
    if name not in frame.columns:
        return pd.Series(pd.NA, index=frame.index, dtype="string")
    values = frame[name].astype("string").str.strip()
    return values.mask(values == "")


def _instants(column: pd.Series, text: pd.Series) -> pd.Series:
    """UTC instants: a typed timestamp column as it is (naive = UTC), text parsed as ISO 8601."""
    if pd.api.types.is_datetime64_any_dtype(column):
        values = column.reset_index(drop=True)
        return values.dt.tz_localize("UTC") if values.dt.tz is None else values.dt.tz_convert("UTC")
    return pd.to_datetime(text, utc=True, errors="coerce", format="ISO8601")


def check_outcomes(raw: pd.DataFrame, decisions: pa.Table, target: TargetSpec) -> Checked:
    """Check rows of ``request_id``/``applicant_id``, ``outcome``, ``observed_at`` against the logged decisions.

    ``decisions`` has request_id, applicant_id and scored_at. A file without an
    id column, an ``outcome`` or an ``observed_at`` column is refused whole.
    """
    missing = [c for c in ("outcome", "observed_at") if c not in raw.columns]
    if not any(c in raw.columns for c in ID_COLUMNS):
        missing.insert(0, "request_id or applicant_id")
    if missing:
        raise DataValidationError(f"missing column(s): {', '.join(missing)}")
    unknown = sorted(set(raw.columns) - {*ID_COLUMNS, "outcome", "observed_at"})
    if unknown:
        raise DataValidationError(f"unknown column(s): {', '.join(map(str, unknown))}")
    frame = pd.DataFrame(index=pd.RangeIndex(len(raw)))
    frame["row"] = np.arange(1, len(raw) + 1, dtype=np.int64)
    frame["request_id"] = _text(raw, "request_id").to_numpy()
    frame["applicant_id"] = _text(raw, "applicant_id").to_numpy()
    frame["outcome"] = _text(raw, "outcome").to_numpy()
    typed = pd.api.types.is_datetime64_any_dtype(raw["observed_at"])
    # a typed timestamp column needs no parsing; its text is written for the refused rows only
    frame["observed_raw"] = pd.NA if typed else _text(raw, "observed_at").to_numpy()
    frame["observed_at"] = _instants(raw["observed_at"], frame["observed_raw"])
    rule = pd.Series(pd.NA, index=frame.index, dtype="string")
    message = pd.Series(pd.NA, index=frame.index, dtype="string")

    def refuse(mask: pd.Series, name: str, text: pd.Series | str) -> None:
        mask = mask.fillna(False).astype(bool) & rule.isna()
        rule[mask] = name
        message[mask] = text[mask] if isinstance(text, pd.Series) else text

    by_request = frame["request_id"].notna()
    key = frame["request_id"].fillna(frame["applicant_id"])
    refuse(key.isna(), "missing_id", "neither request_id nor applicant_id is given")
    allowed = [target.event, target.non_event]
    refuse(~frame["outcome"].isin(allowed), "unknown_outcome", f"outcome must be one of {allowed}")
    refuse(
        frame["observed_at"].isna() & key.notna(),
        "invalid_observed_at",
        "observed_at must be an ISO 8601 date or timestamp",
    )
    kind_key = np.where(by_request, "r:", "a:") + key.fillna("").astype(str)
    duplicated = pd.Series(kind_key, index=frame.index).duplicated(keep=False) & key.notna()
    refuse(duplicated, "duplicate_id", "the same id appears more than once in this load")

    scored_at, request_id = _match_decisions(frame, by_request, decisions)
    frame["matched_request_id"] = request_id
    refuse(key.notna() & scored_at.isna() & ~frame["_before"], "unknown_id", "no logged decision has this id")
    ambiguous = _ambiguity(frame, by_request, decisions)
    refuse(ambiguous.notna(), "ambiguous_applicant", ambiguous)
    before = (frame["_before"] | (scored_at.notna() & (frame["observed_at"] < scored_at))) & rule.isna()
    when = scored_at[before].astype("string").fillna("every decision")
    refuse(
        before, "observed_before_decision", ("observed_at is before the decision (" + when + ")").reindex(frame.index)
    )
    ok = rule.isna()
    good = frame[ok]
    accepted = pa.table(
        {
            "request_id": pa.array(good["matched_request_id"].astype(str).to_numpy(), pa.string()),
            "applicant_id": pa.array(good["applicant_id"].astype(object).where(good["applicant_id"].notna(), None)),
            "outcome": pa.array(good["outcome"].astype(str).to_numpy(), pa.string()),
            "label": pa.array((good["outcome"] == target.event).to_numpy(dtype=np.int8), pa.int8()),
            "observed_at": pa.array(good["observed_at"].dt.as_unit("us"), pa.timestamp("us", tz="UTC")),
            "source_row": pa.array(good["row"].to_numpy(), pa.int64()),
        }
    )
    bad = frame[~ok]
    if typed:
        bad = bad.assign(observed_raw=bad["observed_at"].astype("string"))
    rejects = pd.DataFrame(
        {
            "row": bad["row"].to_numpy(),
            "rule": rule[~ok].to_numpy(),
            "message": message[~ok].to_numpy(),
            "request_id": bad["request_id"].to_numpy(),
            "applicant_id": bad["applicant_id"].to_numpy(),
            "outcome": bad["outcome"].to_numpy(),
            "observed_at": bad["observed_raw"].to_numpy(),
        },
        columns=REJECT_COLUMNS,
    )
    return Checked(accepted, rejects)


def _ambiguity(frame: pd.DataFrame, by_request: pd.Series, decisions: pa.Table) -> pd.Series:
    """For each applicant_id row whose applicant has several decisions at or before its outcome, the
    sentence naming them (NA elsewhere): attaching it to the latest could give one decision's outcome
    to another (a request whose applicant_id was reused)."""
    out = pd.Series(pd.NA, index=frame.index, dtype="string")
    rows = frame.loc[~by_request & frame["applicant_id"].notna() & frame["observed_at"].notna()]
    if rows.empty or decisions.num_rows == 0:
        return out
    known = decisions.select(["request_id", "applicant_id", "scored_at"]).to_pandas()
    known["scored_at"] = known["scored_at"].astype("datetime64[us, UTC]")
    pairs = rows[["applicant_id", "observed_at"]].reset_index().merge(known, on="applicant_id")
    pairs = pairs[pairs["scored_at"] <= pairs["observed_at"].astype("datetime64[us, UTC]")]
    for index, group in pairs.sort_values("scored_at").groupby("index"):
        if len(group) > 1:
            named = ", ".join(group["request_id"].astype(str).head(_NAMED))
            more = f" and {len(group) - _NAMED} more" if len(group) > _NAMED else ""
            out[index] = (
                f"applicant_id has {len(group)} decisions made at or before observed_at "
                f"(request ids {named}{more}): give the request_id of the one this outcome belongs to"
            )
    return out


def _match_decisions(frame: pd.DataFrame, by_request: pd.Series, decisions: pa.Table) -> tuple[pd.Series, pd.Series]:
    """Each row's decision time and request_id (NaT/NA: none); sets ``frame['_before']`` for
    applicant rows whose every decision is later than the outcome."""
    scored = pd.Series(pd.NaT, index=frame.index, dtype="datetime64[us, UTC]")
    matched = frame["request_id"].copy()
    frame["_before"] = False
    table = decisions.select(["request_id", "applicant_id", "scored_at"]).to_pandas()
    table["scored_at"] = table["scored_at"].astype("datetime64[us, UTC]")
    if by_request.any() and len(table):  # no decision logged yet: every row stays unmatched (NaT)
        lookup = table.drop_duplicates("request_id").set_index("request_id")["scored_at"]
        scored[by_request] = frame.loc[by_request, "request_id"].map(lookup).astype("datetime64[us, UTC]")
    by_applicant = ~by_request & frame["applicant_id"].notna() & frame["observed_at"].notna()
    if by_applicant.any():
        rows = frame.loc[by_applicant, ["applicant_id", "observed_at"]].reset_index()
        rows["observed_at"] = rows["observed_at"].astype("datetime64[us, UTC]")
        known = table.dropna(subset=["applicant_id"]).sort_values("scored_at")
        known = known[known["applicant_id"].isin(rows["applicant_id"])]
        # the latest decision of the applicant at or before the outcome
        paired = pd.merge_asof(
            rows.sort_values("observed_at"),
            known.rename(columns={"scored_at": "decided_at"}),
            left_on="observed_at",
            right_on="decided_at",
            by="applicant_id",
            direction="backward",
        ).set_index("index")
        scored[paired.index] = paired["decided_at"]
        matched[paired.index] = paired["request_id"].astype("string")
        has_any = rows.set_index("index")["applicant_id"].isin(known["applicant_id"])
        frame.loc[paired.index, "_before"] = (paired["decided_at"].isna() & has_any.reindex(paired.index)).to_numpy()
    return scored, matched
