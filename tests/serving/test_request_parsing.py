"""The single applicant's quick check accepts exactly what the pydantic model accepts, with the same values."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest
import yaml

from credit_risk.config import load_project_config
from credit_risk.schema import FeatureSchema
from serving.errors import ServiceError
from serving.requests import RequestParser, _quick_applicant, _RefusedError

pytestmark = pytest.mark.code

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "home_equity" / "config" / "features.yaml"


def _schemas() -> dict[str, FeatureSchema]:
    return {
        "german credit": load_project_config().features,
        "home equity": FeatureSchema.model_validate(yaml.safe_load(EXAMPLE.read_text())),
    }


def _odd_values(spec: Any, rng: random.Random) -> list[Any]:
    """Values that break or test a field's rule: every JSON type, edges, near misses."""
    values: list[Any] = [None, True, False, "", "3", [], {}, [1], 0, -1, 1.5, 24.0, 10**30, -(10**30), 1e308]
    if spec.type == "categorical":
        codes = list(spec.codes)
        values += [*codes, codes[0].lower(), codes[0] + " ", " " + codes[0], rng.choice(codes) + "x"]
    else:
        low, high = float(spec.min), float(spec.max)
        values += [low, high, low - 1, high + 1, low - 1e-9, high + 1e-9, (low + high) / 2, round((low + high) / 2)]
        values += [int(low), int(high), float(int(high)), rng.uniform(low, high)]
    return values


def _bodies(schema: FeatureSchema, seed: int) -> list[bytes]:
    rng = random.Random(seed)
    example = schema.example_record()
    names = list(example)
    bodies = [json.dumps(example).encode()]
    for spec in schema.fields:  # each field on its own: every odd value, and absent
        for value in _odd_values(spec, rng):
            bodies.append(json.dumps({**example, spec.name: value}).encode())
        bodies.append(json.dumps({k: v for k, v in example.items() if k != spec.name}).encode())
    for _ in range(400):  # several fields at once, valid and not
        record = dict(example)
        for spec in rng.sample(list(schema.fields), rng.randint(1, 4)):
            record[spec.name] = rng.choice(_odd_values(spec, rng))
        bodies.append(json.dumps(record).encode())
    first, second = names[0], names[1]
    text = json.dumps(example)
    for applicant_id in ("loan-7", "L.1:2_3", "", "-lead", "a" * 128, "a" * 129, 7, None, "é", "a b", "a\n"):
        bodies.append(json.dumps({**example, "applicant_id": applicant_id}).encode())
    bodies += [
        text.replace("{", '{"unknown": 1, ', 1).encode(),  # an unknown field
        text.replace("{", '{"applicantid": "x", ', 1).encode(),
        text.replace("{", f'{{"{first}": {json.dumps(example[first])}, ', 1).encode(),  # a key twice
        text.replace("{", f'{{"{second}": {json.dumps(example[second])}, ', 1).encode(),
        text.replace("{", f'{{"{first}": "{example[first]}x", ', 1).encode(),
        text.replace("{", '{"applicant_id": "a", "applicant_id": "b", ', 1).encode(),
        text.replace(f'"{first}"', f'"{first[0]}\\u{ord(first[1]):04x}{first[2:]}"', 1).encode(),  # escaped key
        text.replace("{", '{"\\u0061pplicant_id": "a", "applicant_id": "b", ', 1).encode(),
        text.encode("utf-16"),
        b"\xef\xbb\xbf" + text.encode(),  # a byte-order mark
        text.encode() + b"\n",
        b"  " + text.encode() + b" ",
        text.replace(": ", ":").encode(),
        text.encode()[:-1],
        text.encode() + b"}",
        b"[" + text.encode() + b"]",
        b"null",
        b"[" * 20000 + b"]" * 20000,
        b'{"a":' * 5000 + b"1" + b"}" * 5000,
        b"{}",
        b"",
        text.replace(f"{json.dumps(example[first])}", "NaN", 1).encode(),
        text.replace(f"{json.dumps(example[first])}", "Infinity", 1).encode(),
        text.replace(f"{json.dumps(example[first])}", "1" * 5000, 1).encode(),
        text.encode().replace(b"}", b', "note": "\xff"}'),
    ]
    return bodies


def _full(parser: RequestParser, body: bytes) -> tuple[str, Any]:
    try:
        return "accepted", parser.single_in_full(body)
    except ServiceError as exc:
        return "refused", type(exc).__name__


@pytest.mark.parametrize("name", ["german credit", "home equity"])
def test_the_quick_check_takes_exactly_the_bodies_the_full_parse_takes_with_the_same_values(name: str) -> None:
    schema = _schemas()[name]
    parser = RequestParser.for_schema(schema, max_batch=10)
    accepted_quickly = refused = 0
    for body in _bodies(schema, seed=len(name)):
        verdict, full = _full(parser, body)
        try:
            quick = _quick_applicant(parser.rules, parser.known, body)
        except _RefusedError:
            # refused quickly: the full parse judges it, so only a valid body it could have taken is a loss
            assert verdict == "refused" or b"\\" in body, body[:200]
            refused += 1
            continue
        assert verdict == "accepted", body[:200]  # never lets through what the full parse refuses
        assert quick == full and list(quick) == list(full), body[:200]  # same values, types and order
        assert [type(v) for v in quick.values()] == [type(v) for v in full.values()], body[:200]
        accepted_quickly += 1
        assert parser.single(body) == full
    assert accepted_quickly > 100 and refused > 100  # both sides of the check were exercised
