"""A notification as a mail: subject, plain text and HTML, in the member's language.

The language is the member's own tag's primary subtag ("fr-BE" → "fr") when we have templates for
it, English otherwise. Values are formatted for the language (points with its thousands
separator, dates with its month names) and escaped for the HTML part.
"""

from __future__ import annotations

import html
from datetime import date
from string import Template
from typing import Any

from services.notifications import messages
from services.notifications.messages import DEFAULT_LANGUAGE, MESSAGES
from services.notifications.models import NotificationKind
from shared.mail import Mail


def language_for(tag: str | None) -> str:
    """The template language for a member's language tag (English when none fits)."""
    primary = (tag or "").split("-")[0].lower()
    return primary if primary in MESSAGES else DEFAULT_LANGUAGE


def points_text(points: int, language: str) -> str:
    return f"{points:,}".replace(",", messages.THOUSANDS[language])


def date_text(day: date, language: str) -> str:
    month = messages.MONTHS[language].split()[day.month - 1]
    return f"{day.day} {month} {day.year}"


def masked_number(member_number: str) -> str:
    """A member number as another member may see it: the last four digits."""
    return "••••" + member_number[-4:] if member_number else "?"


def _values(kind: NotificationKind, data: dict[str, Any], language: str) -> dict[str, str]:
    """The template's values, as text (not yet escaped), from the notification's data."""
    if kind is NotificationKind.TIER_UP:
        return {
            "tier": str(data["toTier"]),
            "qualifying_points": points_text(int(data.get("qualifyingPoints") or 0), language),
        }
    if kind is NotificationKind.REWARD_VOUCHER:
        return {
            "reward": str(data.get("rewardName") or ""),
            "code": str(data["voucherCode"]),
            "points": points_text(int(data.get("points") or 0), language),
        }
    if kind is NotificationKind.TRANSFER_RECEIVED:
        return {
            "points": points_text(int(data["points"]), language),
            "sender": masked_number(str(data.get("fromMemberNumber") or "")),
            "message": str(data.get("message") or ""),
        }
    return {
        "points": points_text(int(data["points"]), language),
        "date": date_text(date.fromisoformat(str(data["expiresOn"])), language),
    }


def render(
    kind: NotificationKind, data: dict[str, Any], *, to: str, member_number: str, tag: str | None
) -> Mail:
    """The mail for a notification. KeyError for data a kind needs and lacks (a malformed event)."""
    language = language_for(tag)
    subject_t, text_t, html_t = (Template(part) for part in MESSAGES[language][kind])
    values = _values(kind, data, language)
    escaped = {k: html.escape(v) for k, v in values.items()}
    message_text = message_html = ""
    if values.get("message"):
        quote_text, quote_html = messages.TRANSFER_MESSAGE[language]
        message_text = Template(quote_text).substitute(message=values["message"])
        message_html = Template(quote_html).substitute(message=escaped["message"])
    subject = subject_t.substitute(values)
    text = text_t.substitute(values, message_text=message_text)
    footer = Template(messages.FOOTER[language]).substitute(member_number=member_number)
    body = html_t.substitute(escaped, message_html=message_html)
    page = Template(messages.LAYOUT).substitute(
        lang=language, subject=html.escape(subject), body=body, footer=html.escape(footer)
    )
    return Mail(to=to, subject=subject, text=f"{text}\n--\n{footer}\n", html=page)
