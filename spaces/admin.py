from django.contrib import admin

from spaces.models import Space, SpaceInvite, SpaceMember


class SpaceMemberInline(admin.TabularInline):
    model = SpaceMember
    extra = 0
    autocomplete_fields = ["user"]


@admin.register(Space)
class SpaceAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "created_by", "created_at", "member_count"]
    search_fields = ["name", "slug", "created_by__email"]
    list_filter = ["created_at"]
    readonly_fields = ["created_at"]
    autocomplete_fields = ["created_by"]
    inlines = [SpaceMemberInline]

    @admin.display(description="Members")
    def member_count(self, obj: Space) -> int:
        return obj.memberships.count()


@admin.register(SpaceMember)
class SpaceMemberAdmin(admin.ModelAdmin):
    list_display = ["space", "user", "role", "joined_at"]
    list_filter = ["role"]
    search_fields = ["space__name", "space__slug", "user__email"]
    autocomplete_fields = ["space", "user"]


@admin.register(SpaceInvite)
class SpaceInviteAdmin(admin.ModelAdmin):
    list_display = [
        "space",
        "created_by",
        "created_at",
        "expires_at",
        "uses",
        "revoked",
    ]
    list_filter = ["revoked", "expires_at"]
    search_fields = ["space__name", "space__slug", "created_by__email"]
    readonly_fields = ["token", "created_at", "uses"]
    autocomplete_fields = ["space", "created_by"]
