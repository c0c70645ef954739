"""Approval policies: who must sign what, per EU AI Act risk tier, versioned."""

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from mlops_site.common.models import AppendOnlyModel


class ApprovalPolicy(AppendOnlyModel):
    """One version of the approval policy of a risk tier.

    Invariants: (risk_tier, version) is unique and versions count 1, 2, 3… per tier; the
    highest version is the tier's current policy; a row is never edited after creation (an
    edit is a new version, so a request keeps the exact rules it was opened under);
    `required_roles` maps role names to positive counts; an `approvable=False` policy (the
    `unacceptable` tier) can never approve a deployment.
    """

    edit_refusal = "Approval policies are versioned; an edit is a new version."
    delete_refusal = "Approval policies are never deleted: requests refer to their version."

    class Report(models.TextChoices):
        FAIRNESS = "fairness", _("fairness")
        EXPLAINABILITY = "explainability", _("explainability")

    risk_tier = models.CharField(_("risk tier"), max_length=16)
    version = models.PositiveIntegerField(_("version"))
    approvable = models.BooleanField(_("approvable"), default=True)
    environments = models.JSONField(_("environments covered"), default=list)
    required_roles = models.JSONField(_("required signer roles"), default=dict, blank=True,
                                      help_text=_('{"role": count}'))
    required_reports = models.JSONField(_("required reports"), default=list, blank=True)
    thresholds = models.JSONField(_("thresholds"), default=dict, blank=True)
    max_report_age_days = models.PositiveIntegerField(_("maximum report age (days)"), default=90)
    max_approval_age_days = models.PositiveIntegerField(_("maximum approval age (days)"), default=30)
    change_reason = models.TextField(_("reason for this version"), blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True,
                                   related_name="approval_policies_created")
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        ordering = ["risk_tier", "-version"]
        verbose_name = _("approval policy")
        verbose_name_plural = _("approval policies")
        constraints = [
            models.UniqueConstraint(fields=["risk_tier", "version"], name="approval_policy_version_unique"),
            models.CheckConstraint(condition=models.Q(version__gte=1), name="approval_policy_version_positive"),
            models.CheckConstraint(
                condition=models.Q(risk_tier__in=["minimal", "limited", "high", "unacceptable"]),
                name="approval_policy_risk_tier_valid",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.risk_tier} policy v{self.version}"

    def clean(self) -> None:
        from django.core.exceptions import ValidationError

        from mlops_site.common.roles import Role

        errors: dict[str, list[str]] = {}
        if not isinstance(self.required_roles, dict):
            errors["required_roles"] = ["An object of role: count."]
        else:
            for role, count in self.required_roles.items():
                if role not in Role.values or role in (Role.AUDITOR, Role.CI_SERVICE):
                    errors.setdefault("required_roles", []).append(f"{role!r} cannot sign.")
                if not isinstance(count, int) or isinstance(count, bool) or count < 1:
                    errors.setdefault("required_roles", []).append(f"The count for {role!r} must be >= 1.")
            if self.approvable and not self.required_roles:
                errors.setdefault("required_roles", []).append("An approvable policy needs a signer.")
        if not isinstance(self.environments, list) or not all(isinstance(e, str) and e for e in self.environments):
            errors["environments"] = ["A list of environment names."]
        if not isinstance(self.required_reports, list) or any(
            r not in self.Report.values for r in self.required_reports
        ):
            errors["required_reports"] = [f"A list drawn from {', '.join(self.Report.values)}."]
        if not isinstance(self.thresholds, dict):
            errors["thresholds"] = ["An object."]
        else:
            errors.update(_thresholds_errors(self.thresholds))
        if errors:
            raise ValidationError(errors)

    def covers(self, environment: str) -> bool:
        return environment in self.environments

    def as_rules(self) -> dict:
        """The rules as data: what a request's evidence records of its policy."""
        return {
            "id": self.pk, "risk_tier": self.risk_tier, "version": self.version, "approvable": self.approvable,
            "environments": list(self.environments), "required_roles": dict(self.required_roles),
            "required_reports": list(self.required_reports), "thresholds": dict(self.thresholds),
            "max_report_age_days": self.max_report_age_days, "max_approval_age_days": self.max_approval_age_days,
        }


def _thresholds_errors(thresholds: dict) -> dict[str, list[str]]:
    """What is wrong with a policy's thresholds, so that no rule is stored that the gate would read otherwise.

    A minimum without the metric's name once defaulted to accuracy in the gate, even for a regressor
    that reports none; each bound must be a number.
    """
    from governance.gate import DP_RATIO_MIN, EO_DIFFERENCE_MAX, METRIC, METRIC_MIN

    problems = [f"{key} must be a number." for key in (DP_RATIO_MIN, EO_DIFFERENCE_MAX, METRIC_MIN)
                if key in thresholds and (not isinstance(thresholds[key], int | float)
                                          or isinstance(thresholds[key], bool))]
    if METRIC_MIN in thresholds and not (isinstance(thresholds.get(METRIC), str) and thresholds[METRIC].strip()):
        problems.append(f"{METRIC_MIN} needs {METRIC}: the name of the metric it applies to (e.g. accuracy, auc).")
    return {"thresholds": problems} if problems else {}
