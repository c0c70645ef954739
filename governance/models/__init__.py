from governance.models.audit import AuditChainHead, AuditCheckpoint, AuditEvent, AuditQueueEntry
from governance.models.tokens import ApiToken

__all__ = ["ApiToken", "AuditChainHead", "AuditCheckpoint", "AuditEvent", "AuditQueueEntry"]
from governance.models.merkle import AuditMerkleNode  # noqa: E402,I001

__all__ += ["AuditMerkleNode"]
from governance.models.policies import ApprovalPolicy  # noqa: E402,I001
from governance.models.approvals import ApprovalRequest, GateDecision, Signature, SigningCredentialState  # noqa: E402
from governance.models.deployments import Deployment  # noqa: E402

__all__ += ["ApprovalPolicy", "ApprovalRequest", "Deployment", "GateDecision", "Signature", "SigningCredentialState"]
from governance.models.notifications import NotificationDelivery  # noqa: E402

__all__ += ["NotificationDelivery"]
from governance.models.evaluations import Evaluation, Report, ReportChart  # noqa: E402

__all__ += ["Evaluation", "Report", "ReportChart"]
from governance.models.dossiers import Dossier  # noqa: E402

__all__ += ["Dossier"]
from governance.models.mlflow import MlflowAliasState, MlflowModelVersionLink  # noqa: E402

__all__ += ["MlflowAliasState", "MlflowModelVersionLink"]
from governance.models.outbox import OutboxMessage  # noqa: E402

__all__ += ["OutboxMessage"]
