from django.conf import settings
from django.http import HttpRequest


def product(request: HttpRequest) -> dict[str, object]:
    return {
        "SITE_NAME": settings.SITE_NAME,
        "LIVEKIT_ENABLED": settings.LIVEKIT_ENABLED,
    }
