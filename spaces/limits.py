"""The limits that apply to a space: settings, overridden per space by ``SpaceLimits``.

Every number follows SPEC §7: 0 means unlimited. A missing ``SpaceLimits`` row, or an empty
field of one, means "use the setting".
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

from django.conf import settings
from django.utils.translation import gettext_lazy as _

from spaces.models import SpaceLimits, TranscriptionSwitch

DEFAULT_DISABLED_MESSAGE = _(
    "Transcription is switched off for now by the Rooms staff. Try again later, "
    "or ask the staff when it comes back."
)


@dataclass(frozen=True, slots=True)
class Limits:
    max_active_runs_per_user: int
    max_audio_senders: int
    max_run_minutes: int
    max_month_minutes: int
    max_participants: int


def limits_default() -> Limits:
    return Limits(
        max_active_runs_per_user=settings.TRANSCRIPTION_MAX_ACTIVE_RUNS_PER_USER,
        max_audio_senders=settings.TRANSCRIPTION_MAX_AUDIO_SENDERS,
        max_run_minutes=settings.TRANSCRIPTION_MAX_RUN_MINUTES,
        max_month_minutes=settings.TRANSCRIPTION_MAX_MONTH_MINUTES,
        max_participants=settings.SESSION_MAX_PARTICIPANTS,
    )


def limits_resolve(overrides: SpaceLimits | None) -> Limits:
    """The settings with every field ``overrides`` sets replacing its value."""
    limits = limits_default()
    if overrides is None:
        return limits
    values = {
        field.name: value
        for field in fields(Limits)
        if (value := getattr(overrides, field.name)) is not None
    }
    return replace(limits, **values)


def limits_for_space(*, space_id: int) -> Limits:
    return limits_resolve(SpaceLimits.objects.filter(space_id=space_id).first())


def new_runs_disabled_message() -> str | None:
    """Why new transcription runs are refused everywhere now, or None when they are allowed.

    The environment's switch (``TRANSCRIPTION_NEW_RUNS_DISABLED``) or the staff's switch in the
    admin: either one is enough. The default text is in the active language; the staff's own
    message is shown as they wrote it.
    """
    switch = TranscriptionSwitch.objects.filter(pk=TranscriptionSwitch.SINGLETON_PK).first()
    if switch is not None and switch.new_runs_disabled:
        return switch.message or str(DEFAULT_DISABLED_MESSAGE)
    if settings.TRANSCRIPTION_NEW_RUNS_DISABLED:
        return str(DEFAULT_DISABLED_MESSAGE)
    return None
