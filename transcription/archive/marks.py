"""A stored segment as the finished page shows it: its text as escaped HTML in one element that
names it (for corrections), with what the engine was unsure of marked (dotted underline, the
confidence on hover)."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.utils.html import escape, format_html
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import gettext


def _percent(confidence: float) -> str:
    return gettext("Recognised with %(percent)d%% confidence") % {
        "percent": round(confidence * 100)
    }


def _words_html(text: str, words: list[dict[str, Any]] | None) -> SafeString | None:
    """``text`` with its unsure words marked, when ``words`` spell exactly ``text``."""
    if not words:
        return None
    pieces = [str(w.get("text", "")).strip() for w in words]
    if " ".join(p for p in pieces if p) != " ".join(text.split()):
        return None  # not the recognised text any more: mark nothing word by word
    threshold = settings.TRANSCRIPT_LOW_CONFIDENCE
    html = []
    for piece, word in zip(pieces, words, strict=True):
        if not piece:
            continue
        confidence = word.get("confidence")
        if isinstance(confidence, int | float) and confidence < threshold:
            html.append(
                format_html(
                    '<span class="unsure" title="{}">{}</span>', _percent(confidence), piece
                )
            )
        else:
            html.append(escape(piece))
    return mark_safe(" ".join(html))  # noqa: S308 - every piece was escaped


def segment_html(
    *,
    utterance_id: str,
    text: str,
    revision: int,
    speaker_identity: str,
    confidence: float | None,
    words: list[dict[str, Any]] | None,
    inner: SafeString | None = None,
) -> SafeString:
    """One segment as ``<span class="seg" data-uid data-rev data-speaker>``; ``inner`` (e.g.
    search highlights) replaces the text's own markup."""
    classes = ["seg"]
    title = ""
    body = inner if inner is not None else _words_html(text, words)
    if body is None:
        body = escape(text)
        if confidence is not None and confidence < settings.TRANSCRIPT_LOW_CONFIDENCE:
            classes.append("unsure")
            title = _percent(confidence)
    if revision:
        classes.append("edited")
        title = title or gettext("Corrected by a person")
    return format_html(
        '<span class="{}" data-uid="{}" data-rev="{}" data-speaker="{}"{}>{}</span>',
        " ".join(classes),
        utterance_id,
        revision,
        speaker_identity,
        format_html(' title="{}"', title) if title else "",
        body,
    )
