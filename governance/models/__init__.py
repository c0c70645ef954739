from governance.models.audit import AuditChainHead, AuditCheckpoint, AuditEvent, AuditQueueEntry
from governance.models.tokens import ApiToken

__all__ = ["ApiToken", "AuditChainHead", "AuditCheckpoint", "AuditEvent", "AuditQueueEntry"]
from governance.models.merkle import AuditMerkleNode  # noqa: E402,I001

__all__ += ["AuditMerkleNode"]
