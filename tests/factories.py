from datetime import timedelta

import factory
from django.utils import timezone

from identity.models import User
from sessions_app.models import VideoSession
from spaces.models import Space, SpaceInvite, SpaceMember

PASSWORD = "correct-horse-battery-staple"


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        skip_postgeneration_save = True

    email = factory.Sequence(lambda n: f"user{n}@example.com")
    display_name = factory.Faker("name")
    password = factory.PostGenerationMethodCall("set_password", PASSWORD)

    @factory.post_generation
    def _save(obj, create, extracted, **kwargs):
        if create:
            obj.save()


class SpaceFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Space

    slug = factory.Sequence(lambda n: f"space-{n}")
    name = factory.Sequence(lambda n: f"Space {n}")
    created_by = factory.SubFactory(UserFactory)


class SpaceMemberFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = SpaceMember

    space = factory.SubFactory(SpaceFactory)
    user = factory.SubFactory(UserFactory)
    role = SpaceMember.Role.MEMBER


class SpaceInviteFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = SpaceInvite

    space = factory.SubFactory(SpaceFactory)
    created_by = factory.SelfAttribute("space.created_by")
    expires_at = factory.LazyFunction(lambda: timezone.now() + timedelta(days=7))


class VideoSessionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = VideoSession

    title = factory.Sequence(lambda n: f"Session {n}")
    space = factory.SubFactory(SpaceFactory)
    created_by = factory.SelfAttribute("space.created_by")
