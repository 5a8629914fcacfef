"""Strict patterns for plan strings that reach rendered files as names or syntax.

Issue 11: a free `server_name` injected nginx directives, endpoint keys broke PromQL and
alert annotations, a U+2028 in a webhook URL added an Alertmanager key, and TTL keys added
Compose entries. Each such string is held to the narrowest shape its target needs;
scalectl.plan.escape still quotes it wherever it is emitted.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from typing import Annotated, Any

from pydantic import AfterValidator, Field

_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_HOST = rf"{_LABEL}(?:\.{_LABEL})*"
_ONE_SERVER_NAME = rf"(?:_|(?:\*\.)?{_HOST})"

SERVER_NAME = rf"{_ONE_SERVER_NAME}(?: {_ONE_SERVER_NAME})*"
METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
ENDPOINT_KEY = rf"(?:{'|'.join(METHODS)}) /(?:[A-Za-z0-9._~/-]|\{{[A-Za-z_][A-Za-z0-9_]*\}})*"
# The characters RFC 3986 allows: no whitespace, control or Unicode line separators, and
# no "{" or "}", since runbook_base_url reaches annotations Prometheus expands as templates.
URL = r"https?://[A-Za-z0-9._~:/?#\[\]@!$&'()*+,;=%-]+"
# cache.ttl_seconds.<kind> becomes CACHE_TTL_<KIND> (reference_app/refapp/settings.py).
TTL_KIND = r"[a-z][a-z0-9_]*"
ENV_NAME = r"[A-Za-z_][A-Za-z0-9_]*"
# One argv entry of a worker's command: printable ASCII and spaces, so no NUL, newline or
# other control character, nor a Unicode line break, can reach a rendered file.
ARG = r"[ -~]{1,256}"


def _matches(pattern: str, message: str) -> Callable[[str], str]:
    # fullmatch with re.ASCII: "$" would accept a trailing newline, \w non-ASCII letters.
    compiled = re.compile(pattern, re.ASCII)

    def check(value: str) -> str:
        if not compiled.fullmatch(value):
            raise ValueError(message)
        return value

    return check


def _schema(pattern: str) -> Any:  # pydantic's Field() is typed Any
    return Field(json_schema_extra={"pattern": f"^{pattern}$"})


ServerName = Annotated[
    str,
    AfterValidator(
        _matches(
            SERVER_NAME,
            "must be host names, '_' or '*.'-wildcards separated by single spaces, "
            "such as 'example.com *.example.com'",
        )
    ),
    _schema(SERVER_NAME),
]
EndpointKey = Annotated[
    str,
    AfterValidator(
        _matches(
            ENDPOINT_KEY,
            "must be an HTTP method and a path such as 'GET /api/submissions/{id}' "
            "(letters, digits, ._~-/ and {name} parameters)",
        )
    ),
    _schema(ENDPOINT_KEY),
]
Url = Annotated[
    str,
    AfterValidator(
        _matches(
            URL, "must be an http:// or https:// URL of the characters RFC 3986 allows (no spaces)"
        )
    ),
    _schema(URL),
]
TtlKind = Annotated[
    str,
    AfterValidator(
        _matches(TTL_KIND, "must be lowercase letters, digits and '_', starting with a letter")
    ),
    _schema(TTL_KIND),
]
EnvName = Annotated[
    str,
    AfterValidator(
        _matches(ENV_NAME, "must be letters, digits and '_', not starting with a digit")
    ),
    _schema(ENV_NAME),
]
Arg = Annotated[
    str,
    AfterValidator(
        _matches(ARG, "must be 1 to 256 printable ASCII characters (no control characters)")
    ),
    _schema(ARG),
]

# A rate limit as a whole count per window, in the notation the reference app reads
# (refapp/settings.py holds its RATE_LIMIT_* settings to the same set; tests compare them).
# Up to 11 digits: an `rps` limit (at most 1e9) the app gets per minute needs them.
RATE_WINDOWS = {"second": 1, "minute": 60, "hour": 3600, "day": 86400}
RATE = rf"[1-9][0-9]{{0,10}}/(?:{'|'.join(RATE_WINDOWS)})"
Rate = Annotated[
    str,
    AfterValidator(
        _matches(
            RATE,
            "must be a whole count per second, minute, hour or day, such as '100/minute' "
            "(no spaces; at most 11 digits)",
        )
    ),
    _schema(RATE),
]

# An address or network in CIDR notation; rendered into nginx allow/set_real_ip_from.
_CIDR_SHAPE = r"[0-9A-Fa-f.:/]{1,64}"
_CIDR_CHARS = re.compile(_CIDR_SHAPE, re.ASCII)


def _cidr(value: str) -> str:
    # The character check first: ipaddress alone accepts IPv6 scope ids ("fe80::%eth0").
    try:
        if not _CIDR_CHARS.fullmatch(value):
            raise ValueError
        network = ipaddress.ip_network(value, strict=True)
    except ValueError:
        raise ValueError(
            "must be an IP address or a network in CIDR notation with no host bits set, "
            "such as 10.0.0.0/8 or fd00::/8"
        ) from None
    return str(network)  # normalized: 127.0.0.1 -> 127.0.0.1/32


Cidr = Annotated[str, AfterValidator(_cidr), _schema(_CIDR_SHAPE)]

# A Prometheus metric name that is also a Kubernetes custom-metric name (a URL path segment):
# the HPA asks the adapter for it, and the adapter's rules match and query it.
METRIC_NAME = r"[A-Za-z_:][A-Za-z0-9_:]{0,199}"
MetricName = Annotated[
    str,
    AfterValidator(
        _matches(
            METRIC_NAME,
            "must be a Prometheus metric name: letters, digits, '_' and ':', not starting "
            "with a digit, at most 200 characters",
        )
    ),
    _schema(METRIC_NAME),
]
# A metric selector's label: a Kubernetes label name (no prefix) that is also a Prometheus
# label name, since prometheus-adapter turns the selector into PromQL label matchers.
LABEL_KEY = r"[A-Za-z](?:[A-Za-z0-9_]{0,61}[A-Za-z0-9])?"
LabelKey = Annotated[
    str,
    AfterValidator(
        _matches(
            LABEL_KEY,
            "must be a label name both Kubernetes and Prometheus accept: letters, digits and "
            "'_', starting with a letter and ending with a letter or digit, at most 63 "
            "characters",
        )
    ),
    _schema(LABEL_KEY),
]
LABEL_VALUE = r"[A-Za-z0-9](?:[-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?"
LabelValue = Annotated[
    str,
    AfterValidator(
        _matches(
            LABEL_VALUE,
            "must be a Kubernetes label value: letters, digits, '-', '_' and '.', starting "
            "and ending with a letter or digit, at most 63 characters",
        )
    ),
    _schema(LABEL_VALUE),
]
