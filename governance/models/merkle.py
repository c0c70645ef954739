"""The stored nodes of the audit log's Merkle tree (derived data, see governance.merkle)."""

from django.db import models
from django.utils.translation import gettext_lazy as _


class AuditMerkleNode(models.Model):
    """The hash of one perfect subtree: the 2**level leaves starting at leaf index * 2**level.

    Derived data, filled by checkpoint creation for levels ≥ 1 (level 0, the leaf hashes, comes
    from the events themselves). Every proof built from these rows is verified against a signed
    checkpoint root, so a damaged row can only make a proof fail, never make a false one pass.
    """

    pk = models.CompositePrimaryKey("level", "index")
    level = models.PositiveSmallIntegerField(_("level"))
    index = models.BigIntegerField(_("index"))
    hash = models.BinaryField(_("hash"), max_length=32)

    class Meta:
        verbose_name = _("audit Merkle node")
        verbose_name_plural = _("audit Merkle nodes")

    def __str__(self) -> str:
        return f"node {self.level}/{self.index}"
