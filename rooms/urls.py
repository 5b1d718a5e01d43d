from django.conf import settings
from django.conf.urls.static import static as static_urls
from django.contrib import admin
from django.http import HttpRequest, HttpResponse, HttpResponsePermanentRedirect
from django.templatetags.static import static
from django.urls import include, path
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView

from identity.urls import api_urlpatterns as identity_api
from sessions_app.urls import api_urlpatterns as sessions_api
from sessions_app.urls import space_session_urlpatterns
from spaces.urls import api_urlpatterns as spaces_api
from spaces.urls import invite_urlpatterns
from transcription.urls import api_urlpatterns as transcription_api

api_patterns = [
    *identity_api,
    *spaces_api,
    *sessions_api,
    *transcription_api,
    path("schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("docs/", SpectacularRedocView.as_view(url_name="api-schema"), name="api-docs"),
]


def favicon(request: HttpRequest) -> HttpResponse:
    # Browsers ask for /favicon.ico whatever the page's <link rel="icon"> says.
    return HttpResponsePermanentRedirect(static("favicon.svg"))


urlpatterns = [
    path("", RedirectView.as_view(pattern_name="spaces:list", permanent=False), name="home"),
    path("favicon.ico", favicon),
    path("accounts/", include("allauth.urls")),
    path("me/", include("identity.urls")),
    path("spaces/", include("spaces.urls")),
    *space_session_urlpatterns,
    *invite_urlpatterns,
    path("sessions/", include("sessions_app.urls")),
    path("api/", include(api_patterns)),
    path("admin/", admin.site.urls),
]

if settings.DEBUG:
    urlpatterns += static_urls(settings.MEDIA_URL, document_root=settings.MEDIA_ROOT)
