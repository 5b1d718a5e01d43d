from django.urls import path

from spaces import api, views

app_name = "spaces"

urlpatterns = [
    path("", views.space_list, name="list"),
    path("<slug:slug>/", views.space_detail, name="detail"),
    path("<slug:slug>/invites/", views.invite_create, name="invite-create"),
    path(
        "<slug:slug>/invites/<int:invite_id>/revoke/",
        views.invite_revoke,
        name="invite-revoke",
    ),
    path("<slug:slug>/languages/", views.space_languages, name="languages"),
    path("<slug:slug>/delete/", views.space_delete, name="delete"),
    path(
        "<slug:slug>/members/<int:member_id>/remove/",
        views.member_remove,
        name="member-remove",
    ),
]

invite_urlpatterns = [
    path("invite/<str:token>/", views.invite_accept, name="invite-accept"),
]

api_urlpatterns = [
    path("spaces", api.SpaceListCreateApi.as_view(), name="api-space-list"),
    path("spaces/<slug:slug>", api.SpaceDetailApi.as_view(), name="api-space-detail"),
    path(
        "spaces/<slug:slug>/members",
        api.MemberListApi.as_view(),
        name="api-member-list",
    ),
    path(
        "spaces/<slug:slug>/members/<int:member_id>",
        api.MemberRemoveApi.as_view(),
        name="api-member-remove",
    ),
    path(
        "spaces/<slug:slug>/invites",
        api.InviteListCreateApi.as_view(),
        name="api-invite-create",
    ),
    path(
        "spaces/<slug:slug>/invites/<int:invite_id>",
        api.InviteRevokeApi.as_view(),
        name="api-invite-revoke",
    ),
    path(
        "invites/<str:token>/accept",
        api.InviteAcceptApi.as_view(),
        name="api-invite-accept",
    ),
]
