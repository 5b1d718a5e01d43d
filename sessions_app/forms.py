from typing import Any

from django import forms
from django.conf import settings
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from spaces.languages import MAX_LANGUAGES, language_choices, languages_label
from spaces.models import Space
from transcription.usage.limits import provider_languages

# The ``language`` choices besides one fixed language.
SPACE_DEFAULT = "space"
AUTOMATIC = "auto"
SEVERAL = "several"


class SessionCreateForm(forms.Form):
    """A new session of a space, in its space's default languages unless the person picks
    automatic detection, one language, or several expected ones (ticked in ``languages``).

    Languages this server's speech engine cannot transcribe are marked in the list, and
    ``session_create`` refuses them; the peer-to-peer choice exists only with LiveKit, as
    without it every session is peer to peer.
    """

    title = forms.CharField(max_length=200, label=gettext_lazy("Title"))
    # Not sent (a hand-made request): the space's default, as in the API.
    language = forms.ChoiceField(
        required=False, initial=SPACE_DEFAULT, label=gettext_lazy("Language")
    )
    languages = forms.MultipleChoiceField(
        required=False,
        widget=forms.CheckboxSelectMultiple,
        label=gettext_lazy("Expected languages"),
    )
    peer_to_peer = forms.BooleanField(
        required=False,
        label=gettext_lazy("Peer-to-peer video"),
        help_text=gettext_lazy(
            "The browsers connect to each other directly, without the video server: for up to "
            "%(count)d people. Transcription then hears the browsers' microphones."
        ),
    )

    def __init__(self, *args: Any, space: Space | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        supported = provider_languages()
        default = list(space.languages) if space is not None else None
        if default is None:
            space_default = _("Space default")
        else:
            space_default = _marked(
                _("Space default (%(languages)s)") % {"languages": languages_label(default)},
                default,
                supported,
            )
        languages = [
            (code, _marked(name, [code], supported))
            for code, name in language_choices(extra=default or ())
        ]
        self.fields["language"].choices = [
            (SPACE_DEFAULT, space_default),
            (AUTOMATIC, _("Detect automatically")),
            *languages,
            (SEVERAL, _("Several languages (tick them below)")),
        ]
        self.fields["languages"].choices = languages
        self.fields["languages"].help_text = _(
            "With “Several languages”: the languages spoken in the session, at most %(max)d; "
            "the transcription switches between them."
        ) % {"max": MAX_LANGUAGES}
        if supported is not None:
            self.fields["language"].help_text = _(
                "This server transcribes %(languages)s only, so the languages marked “not "
                "transcribed here” cannot be chosen."
            ) % {"languages": languages_label(sorted(supported))}
            self.fields["language"].widget.attrs["aria-describedby"] = "language-help"
        if settings.LIVEKIT_ENABLED:
            field = self.fields["peer_to_peer"]
            field.help_text = field.help_text % {"count": settings.MESH_MAX_PARTICIPANTS}
            field.widget.attrs["aria-describedby"] = "p2p-help"
        else:
            # Without LiveKit every session is peer to peer: there is nothing to choose.
            del self.fields["peer_to_peer"]

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if data.get("language") == SEVERAL and not data.get("languages"):
            self.add_error(
                "languages",
                _("Tick the languages expected in the session, at most %(max)d.")
                % {"max": MAX_LANGUAGES},
            )
        return data

    def languages_chosen(self) -> list[str] | None:
        """The session's languages for ``session_create``: None for the space's default, ``[]``
        for automatic detection, else the codes (which it checks)."""
        value = self.cleaned_data["language"]
        if value in ("", SPACE_DEFAULT):
            return None
        if value == AUTOMATIC:
            return []
        if value == SEVERAL:
            return list(self.cleaned_data["languages"])
        return [value]

    def wants_peer_to_peer(self) -> bool:
        """Whether the session skips the video server (always, in effect, without LiveKit)."""
        return bool(self.cleaned_data.get("peer_to_peer", False))


def _marked(label: str, codes: list[str], supported: frozenset[str] | None) -> str:
    """``label``, marked when this server's speech engine cannot transcribe one of ``codes``
    (``supported``: what it can; None for any)."""
    if supported is None or all(code in supported for code in codes):
        return label
    return _("%(language)s — not transcribed here") % {"language": label}
