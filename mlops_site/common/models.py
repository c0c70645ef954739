from django.db import models
from django.utils.translation import gettext_lazy as _


class BaseModel(models.Model):
    """Abstract base: creation and update timestamps from the server clock."""

    created_at = models.DateTimeField(_("created at"), auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        abstract = True


class AppendOnlyModel(models.Model):
    """Abstract base of records that are evidence: inserted once, never updated or deleted.

    Subclasses say why in `edit_refusal` and `delete_refusal`. This is the Python layer only;
    every subclass's table also carries database triggers that refuse UPDATE, DELETE and TRUNCATE
    from any client (governance.db_triggers.PROTECTED_TABLES; a test keeps the two lists equal).
    """

    edit_refusal = "This record is append-only; it cannot be changed."
    delete_refusal = "This record is append-only; it cannot be deleted."

    class Meta:
        abstract = True

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise PermissionError(self.edit_refusal)
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise PermissionError(self.delete_refusal)
