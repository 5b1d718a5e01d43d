from typing import Any

from django import forms
from django.conf import settings
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from spaces.forms import LanguagesForm, marked
from spaces.languages import languages_label
from spaces.models import Space
from transcription.usage.limits import provider_languages

# The ``language`` choice that keeps the space's default.
SPACE_DEFAULT = "space"


class SessionCreateForm(LanguagesForm):
    """A new session of a space, in its space's default languages unless the person picks
    automatic detection, one language, or several expected ones (``LanguagesForm``); the
    peer-to-peer choice exists only with LiveKit, as without it every session is peer to peer.
    """

    title = forms.CharField(max_length=200, label=gettext_lazy("Title"))
    # Not sent (a hand-made request): the space's default, as in the API.
    language = forms.ChoiceField(
        required=False, initial=SPACE_DEFAULT, label=gettext_lazy("Language")
    )
    peer_to_peer = forms.BooleanField(
        required=False,
        label=gettext_lazy("Peer-to-peer video"),
        help_text=gettext_lazy(
            "The browsers connect to each other directly, without the video server: for up to "
            "%(count)d people. Transcription then hears the browsers' microphones."
        ),
    )
    several_help = gettext_lazy(
        "With “Several languages”: the languages spoken in the session, at most %(max)d; "
        "the transcription switches between them."
    )
    several_missing = gettext_lazy("Tick the languages expected in the session, at most %(max)d.")
    default_values = ("", SPACE_DEFAULT)

    def __init__(self, *args: Any, space: Space | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        supported = provider_languages()
        default = list(space.languages) if space is not None else None
        if default is None:
            space_default = _("Space default")
        else:
            space_default = marked(
                _("Space default (%(languages)s)") % {"languages": languages_label(default)},
                default,
                supported,
            )
        self.language_choices_set(
            current=default or [], supported=supported, leading=[(SPACE_DEFAULT, space_default)]
        )
        if settings.LIVEKIT_ENABLED:
            field = self.fields["peer_to_peer"]
            field.help_text = field.help_text % {"count": settings.MESH_MAX_PARTICIPANTS}
            field.widget.attrs["aria-describedby"] = "p2p-help"
        else:
            # Without LiveKit every session is peer to peer: there is nothing to choose.
            del self.fields["peer_to_peer"]

    def wants_peer_to_peer(self) -> bool:
        """Whether the session skips the video server (always, in effect, without LiveKit)."""
        return bool(self.cleaned_data.get("peer_to_peer", False))
