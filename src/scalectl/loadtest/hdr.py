"""The HDR histograms load tests record in: one layout (microseconds, 1 µs to 1 h, 3
significant digits), its text encoding, how to free one at once, and its percentiles and
mean, the same values the hdrh library gives in a fraction of its time.

hdrh is imported inside the functions: this module is imported where a histogram may
never be made. hdrh walks every count in Python for each percentile and walks them again through its
iterator for the mean: about 300 ms per histogram at 1 µs..1 h and 3 digits. A run's results
take one per endpoint and per second, so reading an hour's run that way takes hours. Here the
counts between the lowest and the highest recorded value are copied out once (a C-level
slice), summed cumulatively, and each percentile is a binary search; the value of each index
comes from tables built once per histogram layout with hdrh's own functions.
"""

from __future__ import annotations

import base64
import binascii
import bisect
import functools
import itertools
import operator
import struct
import zlib
from typing import Any

HIGHEST_US = 3_600_000_000  # one hour
DIGITS = 3
# hdrh's V2 wire format: an outer header (cookie, length) around a zlib stream whose own
# header says the layout: cookie, payload length, offset, digits, lowest, highest, ratio.
_OUTER = struct.Struct(">II")
_PAYLOAD = struct.Struct(">IIIIQQd")
_COMPRESSION_COOKIE = 0x1C849304
_ENCODING_COOKIE = 0x1C849303
# Our layout's counts at worst as varints, plus the header: a larger stream is not ours.
_MAX_PAYLOAD_BYTES = 1 << 20


class BadHistogram(ValueError):
    """Text that is not a histogram in the one layout (report files may come from anywhere)."""


def new() -> Any:
    """An empty histogram in the one layout."""
    from hdrh.histogram import HdrHistogram

    return HdrHistogram(1, HIGHEST_US, DIGITS)


def encode(hist: Any) -> str:
    """The histogram as text (base64 of hdrh's compressed V2 encoding)."""
    return str(hist.encode().decode("ascii"))


def decode(encoded: str) -> Any:
    """The histogram that encode() gave as `encoded`."""
    from hdrh.histogram import HdrHistogram

    return HdrHistogram.decode(encoded.encode("ascii"))


def decode_checked(encoded: str) -> Any:
    """The histogram that encode() gave as `encoded`, from text that may not be: its headers
    are read first, and a layout other than ours, a zlib stream expanding past what our
    layout needs, or anything malformed raises BadHistogram before hdrh allocates counts.
    """
    try:
        blob = base64.b64decode(encoded.encode("ascii"), validate=True)
    except (UnicodeEncodeError, binascii.Error):
        raise BadHistogram("not base64") from None
    if len(blob) < _OUTER.size:
        raise BadHistogram("too short")
    cookie, length = _OUTER.unpack_from(blob)
    if cookie & ~0xF0 != _COMPRESSION_COOKIE & ~0xF0 or length != len(blob) - _OUTER.size:
        raise BadHistogram("not an HDR histogram (V2, compressed)")
    inflater = zlib.decompressobj()
    try:
        payload = inflater.decompress(blob[_OUTER.size :], _MAX_PAYLOAD_BYTES)
    except zlib.error:
        raise BadHistogram("corrupt compressed data") from None
    if inflater.unconsumed_tail or len(payload) < _PAYLOAD.size:
        raise BadHistogram("compressed data of the wrong size")
    cookie, _, offset, digits, lowest, highest, _ = _PAYLOAD.unpack_from(payload)
    if cookie & ~0xF0 != _ENCODING_COOKIE & ~0xF0 or (offset, digits, lowest, highest) != (
        0,
        DIGITS,
        1,
        HIGHEST_US,
    ):
        raise BadHistogram("a histogram layout other than 1 us..1 h at 3 digits")
    try:
        return decode(encoded)
    except Exception as exc:  # hdrh raises its own exception types, ValueError, TypeError
        raise BadHistogram(f"cannot decode ({type(exc).__name__})") from None


def add_encoded(hist: Any, encoded: str) -> None:
    """Add an encoded histogram to `hist`, freeing the decoded copy at once."""
    other = decode(encoded)
    hist.add(other)
    release(other)


@functools.cache
def _tables(lowest: int, highest: int, digits: int) -> tuple[list[int], list[int]]:
    """Per counts index: the highest value it stands for (what hdrh reports for a
    percentile) and its median value (what hdrh averages for the mean)."""
    from hdrh.histogram import HdrHistogram

    layout = HdrHistogram(lowest, highest, digits)
    values = [layout.get_value_from_index(i) for i in range(layout.counts_len)]
    high = [layout.get_highest_equivalent_value(v) for v in values]
    median = [layout._hdr_median_equiv_value(v) for v in values]
    return high, median


def value_tables() -> tuple[list[int], list[int]]:
    """Per counts index of the one layout: the value a percentile reports and the value the
    mean counts (see _tables)."""
    return _tables(1, HIGHEST_US, DIGITS)


class Summary:
    """The recorded counts of one histogram, ready for any number of percentiles."""

    def __init__(self, hist: Any) -> None:
        self.total = int(hist.get_total_count())
        self.max_value = int(hist.get_max_value()) if self.total else 0
        self._high: list[int] = []
        self._cumulative: list[int] = []
        self._mean = 0.0
        if not self.total:
            return
        high, median = _tables(
            hist.lowest_trackable_value, hist.highest_trackable_value, hist.significant_figures
        )
        # A decoded histogram may hold fewer counts than its layout: the rest are zero.
        stored = min(hist.counts_len, hist.encoder.payload.counts_len)
        first = min(hist._counts_index_for(hist.min_value), stored - 1)
        last = min(hist._counts_index_for(hist.max_value), stored - 1)
        # Through a memoryview: slicing the ctypes array itself makes each int in Python.
        counts = memoryview(hist.counts).cast("B").cast("Q")[first : last + 1].tolist()
        self._high = high[first : last + 1]
        self._cumulative = list(itertools.accumulate(counts))
        weighted = sum(map(operator.mul, counts, median[first : last + 1]))
        self._mean = weighted / self.total

    def percentile(self, percentile: float) -> int:
        """The value at `percentile` (0 < percentile <= 100), as hdrh's
        get_value_at_percentile; 0 for an empty histogram."""
        if not self.total:
            return 0
        target = max(int(min(percentile, 100.0) * self.total / 100 + 0.5), 1)
        index = bisect.bisect_left(self._cumulative, target)
        return self._high[min(index, len(self._high) - 1)]

    @property
    def mean(self) -> float:
        """As hdrh's get_mean_value: each count at its bucket's median value."""
        return self._mean


def release(hist: Any) -> None:
    """Free a histogram's ~190 KB now. hdrh's histogram and its encoder refer to each other,
    so a dropped histogram waits for a full garbage collection, which a process with as many
    objects as Locust's runs rarely: a run grew by 1.9 MB/s until this."""
    hist.encoder = None
