"""Turning read rows into validated, normalised, masked complaints.

Every rejected row yields a :class:`RowError` naming its row and field; the good rows go on.
Error reasons never quote the submitted value: it may hold personal data.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from typing import Any

from tools.dedup import find_duplicates
from tools.ingest.columns import FIELDS
from tools.ingest.read import RawRow
from tools.pii import mask, mask_text
from tools.schema import Complaint, RowError
from tools.text import normalize

_DATE_FORMATS = (
    "%Y-%m-%d %H:%M:%S",
    "%Y-%m-%d %H:%M",
    "%Y/%m/%d %H:%M:%S",
    "%Y/%m/%d %H:%M",
    "%Y-%m-%d",
    "%Y/%m/%d",
    "%Y%m%d",
)


def parse_time(value: Any) -> datetime | None:
    """Parse a received_at value; None when it is not a date."""
    if isinstance(value, datetime):
        return value
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day)
    s = str(value).strip()
    try:
        return datetime.fromisoformat(s.replace("Z", "+00:00"))
    except ValueError:
        pass
    for fmt in _DATE_FORMATS:
        try:
            return datetime.strptime(s, fmt)
        except ValueError:
            continue
    return None


def _clean(value: Any) -> str | None:
    if value is None:
        return None
    s = normalize(str(value))
    return s or None


def prepare(
    rows: list[RawRow],
    *,
    canonical_channel: Callable[[str], str | None],
    max_text_chars: int,
) -> tuple[list[Complaint], list[RowError]]:
    """Validate, normalise and mask rows; return accepted complaints and per-row errors."""
    accepted: list[Complaint] = []
    errors: list[RowError] = []
    seen_ids: dict[str, int] = {}
    for raw in rows:
        if raw.data is None:
            field, reason = raw.problem or ("row", "unreadable row")
            errors.append(RowError(row=raw.row, field=field, reason=reason))
            continue
        rec = raw.data
        ident = _clean(rec.get("id"))
        ident = mask_text(ident) if ident else ident
        if not ident:
            errors.append(
                RowError(row=raw.row, field="id", reason="missing id; every complaint needs a unique id")
            )
            continue
        if len(ident) > 128:
            errors.append(RowError(row=raw.row, field="id", reason="id longer than 128 characters"))
            continue
        if ident in seen_ids:
            errors.append(
                RowError(
                    row=raw.row,
                    id=ident,
                    field="id",
                    reason=f"duplicate id; first used on row {seen_ids[ident]}, this row was skipped",
                )
            )
            continue
        raw_text = rec.get("text")
        if raw_text is None:
            errors.append(RowError(row=raw.row, id=ident, field="text", reason="missing text"))
            continue
        if not isinstance(raw_text, str | int | float):
            errors.append(RowError(row=raw.row, id=ident, field="text", reason="text must be a string"))
            continue
        text = normalize(str(raw_text))
        if not text:
            errors.append(RowError(row=raw.row, id=ident, field="text", reason="text is empty"))
            continue
        if len(text) > max_text_chars:
            errors.append(
                RowError(
                    row=raw.row,
                    id=ident,
                    field="text",
                    reason=f"text has {len(text)} characters; the limit is {max_text_chars}",
                )
            )
            continue
        received = None
        if rec.get("received_at") not in (None, ""):
            received = parse_time(rec["received_at"])
            if received is None:
                errors.append(
                    RowError(
                        row=raw.row,
                        id=ident,
                        field="received_at",
                        reason="not a date; use ISO 8601 such as 2026-09-03T10:21:00+08:00",
                    )
                )
                continue
        channel = _clean(rec.get("channel"))
        if channel:
            canon = canonical_channel(channel)
            if canon is None:
                errors.append(
                    RowError(
                        row=raw.row,
                        id=ident,
                        field="channel",
                        severity="warning",
                        reason="unknown channel; analysed with the channel inferred from the text",
                    )
                )
            channel = canon
        masked, report = mask(text)
        extra = {
            k: mask_text(normalize(str(v)))
            for k, v in rec.items()
            if k not in FIELDS and k != "metadata" and v not in (None, "")
        }
        if isinstance(rec.get("metadata"), dict):
            extra.update({str(k): mask_text(normalize(str(v))) for k, v in rec["metadata"].items()})
        customer = _clean(rec.get("customer_id"))
        seen_ids[ident] = raw.row
        accepted.append(
            Complaint(
                id=ident,
                row=raw.row,
                text=masked,
                channel=channel,
                received_at=received,
                period=received.strftime("%Y-%m") if received else None,
                customer_id=mask_text(customer) if customer else None,
                customer_segment=_clean(rec.get("customer_segment")),
                business_line=_clean(rec.get("business_line")),
                product=mask_text(p) if (p := _clean(rec.get("product"))) else None,
                metadata=extra,
                pii_masked=report.total,
            )
        )
    dups = find_duplicates([(c.id, c.text) for c in accepted])
    if dups:
        accepted = [c.model_copy(update={"duplicate_of": dups.get(c.id)}) for c in accepted]
    return accepted, errors
