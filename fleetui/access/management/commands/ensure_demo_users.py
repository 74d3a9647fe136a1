"""Create (or reset) the demo users admin/operator/viewer, one per role, for `make run`.

    python manage.py ensure_demo_users --password demo-pass-123
    python manage.py ensure_demo_users --admin-password A --operator-password O --viewer-password V

Passwords may also come from FLEETUI_DEMO_PASSWORD. Never used in production setups: the command
refuses to run when FLEETUI_MODE=production unless --force is given.
"""

from __future__ import annotations

import os
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction

from fleetui.core.roles import ADMIN, OPERATOR, ROLES, VIEWER


class Command(BaseCommand):
    help = "Create or update the demo users admin, operator and viewer (one per role)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--password", help="Password for all three (default: $FLEETUI_DEMO_PASSWORD).")
        for role in ROLES:
            parser.add_argument(f"--{role}-password", help=f"Password for the {role} user.")
        parser.add_argument("--prefix", default="", help="Prefix for the usernames (default: none).")
        parser.add_argument("--force", action="store_true", help="Run even when FLEETUI_MODE=production.")

    def handle(self, *args: Any, **options: Any) -> None:
        if getattr(settings, "PRODUCTION", False) and not options["force"]:
            raise CommandError("Refusing to create demo users in production mode (use --force if you mean it).")
        default = options["password"] or os.environ.get("FLEETUI_DEMO_PASSWORD", "")
        User = get_user_model()
        created: list[str] = []
        with transaction.atomic():
            for role in (ADMIN, OPERATOR, VIEWER):
                password = options[f"{role}_password"] or default
                if not password:
                    raise CommandError(f"No password for {role}: pass --password or --{role}-password.")
                if len(password) < 8:
                    raise CommandError(f"The {role} password is too short (8 characters at least).")
                group, _ = Group.objects.get_or_create(name=role)
                username = f"{options['prefix']}{role}"
                user, was_created = User.objects.get_or_create(username=username)
                user.set_password(password)
                user.is_active = True
                # The Django admin is for admins: staff + superuser so they can manage users there too.
                user.is_staff = role == ADMIN
                user.is_superuser = role == ADMIN
                user.save()
                user.groups.set([group])
                created.append(f"{username} ({role}{', new' if was_created else ''})")
        self.stdout.write("Demo users ready: " + ", ".join(created))
