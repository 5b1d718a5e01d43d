from django.urls import path

from identity import api, views

app_name = "identity"

urlpatterns = [
    path("profile/", views.profile, name="profile"),
]

api_urlpatterns = [
    path("me", api.MeApi.as_view(), name="api-me"),
    path("auth/token", api.TokenApi.as_view(), name="api-token"),
]
