"""Create the demo accounts and space that `make run` prints, once; safe to run again."""

import os

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from identity.models import User
from spaces.models import Space
from spaces.services import space_create

DEMO_PASSWORD = "rooms-demo-password"  # noqa: S105 - a documented local demo account
DEMO_USERS = [
    ("demo@rooms.local", "Demo Host", True),
    ("guest@rooms.local", "Demo Guest", False),
]


class Command(BaseCommand):
    help = "Create demo users and a demo space for local use, and print how to sign in."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--force", action="store_true", help="allow with DEBUG=false")
        parser.add_argument(
            "--host",
            dest="address",
            default=settings.ALLOWED_HOSTS[0],
            help="the host the server listens on, for the printed address",
        )
        parser.add_argument(
            "--port",
            type=int,
            default=os.environ.get("PORT") or "8000",
            help="the port the server listens on, for the printed address (default: $PORT, 8000)",
        )

    def handle(
        self,
        *args: object,
        force: bool = False,
        address: str = "",
        port: int = 8000,
        **options: object,
    ) -> None:
        if not settings.DEBUG and not force:
            raise CommandError("demo_setup creates known passwords: refusing with DEBUG=false")
        users = []
        for email, name, staff in DEMO_USERS:
            user = User.objects.filter(email=email).first()
            if user is None:
                user = User.objects.create_user(
                    email=email,
                    password=DEMO_PASSWORD,
                    display_name=name,
                    is_staff=staff,
                    is_superuser=staff,
                )
            users.append(user)
        host = users[0]
        space = Space.objects.filter(created_by=host, name="Demo space").first()
        if space is None:
            space = space_create(owner=host, name="Demo space")
        url = f"http://{address}:{port}"
        self.stdout.write(
            self.style.SUCCESS(
                "\n  Rooms is starting at "
                f"{url}\n"
                f"  Sign in as {DEMO_USERS[0][0]} / {DEMO_PASSWORD}"
                f" (owner of “{space.name}”, staff)\n"
                f"  or as {DEMO_USERS[1][0]} / {DEMO_PASSWORD}"
                " (not a member yet: invite them with a link)\n"
                f"  Admin: {url}/admin/   API docs: {url}/api/docs/\n"
            )
        )
