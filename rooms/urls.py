from django.conf import settings
from django.conf.urls.static import static as static_urls
from django.contrib import admin
from django.http import HttpRequest, HttpResponse, HttpResponsePermanentRedirect
from django.templatetags.static import static
from django.urls import include, path
from django.views.generic import RedirectView
from django.views.i18n import JavaScriptCatalog
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from identity.urls import api_urlpatterns as identity_api
from identity.views import admin_login, language_set
from rooms import health, metrics
from sessions_app.urls import api_urlpatterns as sessions_api
from sessions_app.urls import space_session_urlpatterns
from spaces.urls import api_urlpatterns as spaces_api
from spaces.urls import invite_urlpatterns
from transcription.search_views import search_all, search_space
from transcription.urls import api_urlpatterns as transcription_api
from transcription.usage.views import my_usage, space_usage


class ApiDocsView(SpectacularSwaggerSplitView):
    """The API reference: Swagger UI from drf-spectacular-sidecar's static files, started by a
    script this view serves (``?script``), so the page needs no CDN, no web font and no inline
    script or style: the same Content-Security-Policy as every other page."""

    template_name = "api/docs.html"


api_patterns = [
    *identity_api,
    *spaces_api,
    *sessions_api,
    *transcription_api,
    path("schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path(
        "docs/",
        ApiDocsView.as_view(url_name="api-schema"),
        name="api-docs",
    ),
]


def favicon(request: HttpRequest) -> HttpResponse:
    # Browsers ask for /favicon.ico whatever the page's <link rel="icon"> says.
    return HttpResponsePermanentRedirect(static("favicon.svg"))


urlpatterns = [
    path("", RedirectView.as_view(pattern_name="spaces:list", permanent=False), name="home"),
    path("favicon.ico", favicon),
    path("health", health.health, name="health"),
    path("health/ready", health.ready, name="health-ready"),
    path("metrics", metrics.metrics_view, name="metrics"),
    path("language/", language_set, name="language-set"),
    path("jsi18n/", JavaScriptCatalog.as_view(domain="djangojs"), name="javascript-catalog"),
    path("accounts/", include("allauth.urls")),
    path("me/usage/", my_usage, name="my-usage"),
    path("me/", include("identity.urls")),
    path("search/", search_all, name="search"),
    path("spaces/<slug:slug>/usage/", space_usage, name="space-usage"),
    path("spaces/<slug:slug>/search/", search_space, name="space-search"),
    path("spaces/", include("spaces.urls")),
    *space_session_urlpatterns,
    *invite_urlpatterns,
    path("sessions/", include("sessions_app.urls")),
    path("api/", include(api_patterns)),
    # Before the admin's own URLs: its sign-in under allauth's failed sign-in limits.
    path("admin/login/", admin_login, name="admin-login"),
    path("admin/", admin.site.urls),
]

handler404 = "rooms.api.not_found"

if settings.DEBUG:
    urlpatterns += static_urls(settings.MEDIA_URL, document_root=settings.MEDIA_ROOT)
