"""The value types the plan's models share: bounded numbers, DNS names, HTTP paths, pinned
image references, and Kubernetes CPU, memory and other quantities with their conversions.

Strings held to a narrow shape because they reach rendered files as syntax are in
scalectl.plan.patterns.
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Annotated

from pydantic import AfterValidator, BeforeValidator, Field, WithJsonSchema

DNS_LABEL = r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$"
# fullmatch with ASCII digits: "$" accepted "500m\n", which then crashed cpu_cores (exit 3,
# tests/hostile/corpus.py "cpu-newline"), and \d accepts any Unicode digit.
_CPU = re.compile(r"[0-9]+(\.[0-9]+)?|[0-9]+m")
_MEM = re.compile(r"[0-9]+(\.[0-9]+)?(Ki|Mi|Gi|Ti|k|M|G|T)?")
_MEM_FACTORS = {
    "": 1,
    "k": 10**3,
    "M": 10**6,
    "G": 10**9,
    "T": 10**12,
    "Ki": 2**10,
    "Mi": 2**20,
    "Gi": 2**30,
    "Ti": 2**40,
}


def _cpu(value: str) -> str:
    if not _CPU.fullmatch(value):
        raise ValueError("must be a Kubernetes CPU quantity such as 500m or 2")
    return value


def _memory(value: str) -> str:
    if not _MEM.fullmatch(value):
        raise ValueError("must be a Kubernetes memory quantity such as 512Mi or 2Gi")
    return value


def cpu_cores(value: str) -> float:
    """A Kubernetes CPU quantity as cores: 500m is 0.5."""
    return int(value[:-1]) / 1000 if value.endswith("m") else float(value)


def memory_bytes(value: str) -> int:
    """A Kubernetes memory quantity (512Mi, 2Gi, 1G) as bytes."""
    match = re.match(r"^(\d+(?:\.\d+)?)([A-Za-z]*)$", value)
    assert match, value
    return int(float(match.group(1)) * _MEM_FACTORS[match.group(2)])


# An image reference as the distribution spec's grammar allows it (reference/regexp.go),
# minus IPv6 registries: the name reaches Compose and Kubernetes files, so only this shape.
_DOMAIN_PART = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_PATH_PART = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_IMAGE = re.compile(
    rf"(?:{_DOMAIN_PART}(?:\.{_DOMAIN_PART})*(?::[0-9]+)?/)?{_PATH_PART}(?:/{_PATH_PART})*"
    r"(?::(?P<tag>\w[\w.-]{0,127}))?(?:@(?P<digest>sha256:[a-f0-9]{64}))?",
    re.ASCII,
)


def _pinned_image(value: str) -> str:
    match = _IMAGE.fullmatch(value)  # not match(): "$" would accept a trailing newline
    if not match:
        raise ValueError(
            "must be an image reference such as ghcr.io/acme/api:1.4.2 (lowercase repository, "
            "a tag and/or an @sha256: digest)"
        )
    if match["digest"]:
        return value
    if not match["tag"]:
        raise ValueError("must pin a tag or digest, such as ghcr.io/acme/api:1.4.2")
    if match["tag"] == "latest":
        raise ValueError("must not use the moving tag 'latest'; pin a version or digest")
    return value


# Kubernetes' quantity grammar (apimachinery resource.Quantity), unsigned: an HPA target
# must be positive. A number written in YAML becomes its text.
_QUANTITY = re.compile(
    r"(?P<number>[0-9]+(?:\.[0-9]*)?|\.[0-9]+)"
    r"(?P<suffix>Ki|Mi|Gi|Ti|Pi|Ei|m|k|M|G|T|P|E|[eE][+-]?[0-9]{1,3})?"
)
_QUANTITY_FACTORS = {
    **{s: Decimal(2) ** (10 * i) for i, s in enumerate(("", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei"))},
    **{s: Decimal(10) ** (3 * i) for i, s in enumerate(("", "k", "M", "G", "T", "P", "E"))},
    "m": Decimal("0.001"),
}
QUANTITY_RANGE = (Decimal("0.001"), Decimal(10) ** 15)


def quantity_value(text: str) -> Decimal:
    """A Kubernetes quantity (30, 300m, 1.5k, 2Gi, 1e3) as a number."""
    match = _QUANTITY.fullmatch(text)
    if match is None:
        raise ValueError(text)
    suffix = match["suffix"] or ""
    factor = (
        Decimal(10) ** int(suffix[1:]) if suffix[:1] in ("e", "E") and len(suffix) > 1 else None
    )
    number = Decimal(match["number"])
    return number * (factor if factor is not None else _QUANTITY_FACTORS[suffix])


def _number_text(value: object) -> object:
    # bool is an int: `true` is not a quantity.
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if isinstance(value, float):
        return repr(value)
    return value


def _quantity(value: str) -> str:
    low, high = QUANTITY_RANGE
    if len(value) > 32 or _QUANTITY.fullmatch(value) is None:
        raise ValueError(
            "must be a Kubernetes quantity such as 30, 300m, 1.5k or 2Gi (digits with an "
            "optional m, k, M, G, Ki, Mi, Gi... suffix)"
        )
    if not low <= quantity_value(value) <= high:
        raise ValueError("must be at least 1m (0.001) and at most 1e15")
    return value


Cpu = Annotated[str, AfterValidator(_cpu)]
Memory = Annotated[str, AfterValidator(_memory)]
Image = Annotated[str, AfterValidator(_pinned_image)]
Name = Annotated[str, Field(pattern=DNS_LABEL)]
Quantity = Annotated[
    str,
    BeforeValidator(_number_text),
    AfterValidator(_quantity),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "number", "exclusiveMinimum": 0},
                {"type": "string", "pattern": "^" + _QUANTITY.pattern + "$"},
            ]
        }
    ),
]
Fraction = Annotated[float, Field(gt=0, lt=1)]
# Finite, with a ceiling: inf or a 400-digit float would reach math.ceil and overflow.
Positive = Annotated[float, Field(gt=0, le=1e9)]
MAX_REPLICAS = 10_000
Port = Annotated[int, Field(ge=1, le=65535)]
HttpPath = Annotated[str, Field(pattern=r"^/[A-Za-z0-9/_.\-]*$")]
