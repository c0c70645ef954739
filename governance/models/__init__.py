from governance.models.audit import AuditChainHead, AuditEvent, AuditQueueEntry
from governance.models.tokens import ApiToken

__all__ = ["ApiToken", "AuditChainHead", "AuditEvent", "AuditQueueEntry"]
