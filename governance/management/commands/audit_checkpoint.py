from django.core.management.base import BaseCommand

from governance.checkpoints import audit_checkpoint_create


class Command(BaseCommand):
    help = "Sign a checkpoint over every event so far and print its size and root."

    def handle(self, *args, **options):
        checkpoint = audit_checkpoint_create()
        self.stdout.write(f"checkpoint size {checkpoint.size} root {checkpoint.root}")
