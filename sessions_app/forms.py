from typing import Any

from django import forms
from django.conf import settings
from django.utils.translation import gettext_lazy as _

from transcription.usage.limits import provider_languages

LANGUAGE_CHOICES = [
    ("en", _("English")),
    ("fr", _("French")),
    ("de", _("German")),
    ("es", _("Spanish")),
    ("it", _("Italian")),
    ("pt", _("Portuguese")),
    ("nl", _("Dutch")),
    ("ru", _("Russian")),
    ("auto", _("Detect automatically")),
]


class SessionCreateForm(forms.Form):
    """A new session of a space. The language list says which languages this server's speech
    engine cannot transcribe (starting transcription then refuses with the reason); the
    peer-to-peer choice exists only with LiveKit, as without it every session is peer to peer.
    """

    title = forms.CharField(max_length=200, label=_("Title"))
    language = forms.ChoiceField(choices=LANGUAGE_CHOICES, initial="en", label=_("Language"))
    peer_to_peer = forms.BooleanField(
        required=False,
        label=_("Peer-to-peer video"),
        help_text=_(
            "The browsers connect to each other directly, without the video server: for up to "
            "%(count)d people. Transcription then hears the browsers' microphones."
        ),
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        supported = provider_languages()
        self.unsupported_languages = supported is not None
        if supported is not None:
            self.fields["language"].choices = [
                (code, _language_label(code, label, supported)) for code, label in LANGUAGE_CHOICES
            ]
            names = ", ".join(str(label) for code, label in LANGUAGE_CHOICES if code in supported)
            self.fields["language"].help_text = _(
                "This server transcribes %(languages)s only: a session in another language has "
                "video, and no transcript."
            ) % {"languages": names}
            self.fields["language"].widget.attrs["aria-describedby"] = "language-help"
        if settings.LIVEKIT_ENABLED:
            field = self.fields["peer_to_peer"]
            field.help_text = field.help_text % {"count": settings.MESH_MAX_PARTICIPANTS}
            field.widget.attrs["aria-describedby"] = "p2p-help"
        else:
            # Without LiveKit every session is peer to peer: there is nothing to choose.
            del self.fields["peer_to_peer"]

    def languages(self) -> list[str]:
        value = self.cleaned_data["language"]
        return [] if value == "auto" else [value]

    def wants_peer_to_peer(self) -> bool:
        """Whether the session skips the video server (always, in effect, without LiveKit)."""
        return bool(self.cleaned_data.get("peer_to_peer", False))


def _language_label(code: str, label: Any, supported: frozenset[str]) -> str:
    if code == "auto" or code in supported:
        return str(label)
    return str(_("%(language)s — not transcribed here") % {"language": label})
