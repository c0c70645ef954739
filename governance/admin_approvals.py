"""Back-office for approvals: policies (edit = new version), requests and their sign-off page, and the
read-only records they leave behind (signatures, gate decisions, deployments).

Every write goes through a service (`policy_update`, `approval_request_sign`,
`approval_request_withdraw`); the admin collects input, shows refusals in words and never saves
a row itself (STYLE.md §12). Querysets are the API's selectors, so a user reads here what the
API would show them. Imported from governance/admin.py.
"""

import datetime as dt
import json
from typing import Any, cast

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext_lazy as _

from governance import errors, selectors
from governance.dashboard_selectors import approval_request_roles_open, approval_requests_pending_for_user
from governance.gate import DP_RATIO_MIN, EO_DIFFERENCE_MAX, METRIC, METRIC_MIN, gate_checks_compute
from governance.models import ApprovalPolicy, ApprovalRequest, Deployment, GateDecision, Signature
from governance.permissions import PERMISSIONS, Action, user_can, user_reads_all, user_roles
from governance.services.approvals import approval_request_author_ids, approval_request_sign, approval_request_withdraw
from governance.services.policies import policy_update
from governance.services.signatures import approval_request_evidence_changes, signature_verify
from mlops_site.common.admin import ReadOnlyAdmin
from mlops_site.common.errors import ApplicationError
from mlops_site.common.roles import Role
from registry.models import RegisteredModel

Status = ApprovalRequest.Status

# Roles a policy may require: those the permission matrix lets sign.
SIGNING_ROLES = tuple(role for role in Role.values if Action.APPROVAL_SIGN in PERMISSIONS.get(role, ()))
THRESHOLD_FIELDS = (DP_RATIO_MIN, EO_DIFFERENCE_MAX, METRIC_MIN)
NO_SIGNING_RIGHT = "{user} may not sign approvals."
NO_POLICY_EDIT_RIGHT = "Only compliance officers edit approval policies."
METRIC_NAME_REQUIRED = "Name the metric this minimum applies to (a key of the version's metrics, e.g. accuracy)."
# Why the sign-off page shows no form; the service refuses the same cases (separation_of_duties,
# signer_role_missing, role_already_filled), the page only spares the user a form bound to fail.
CANNOT_SIGN_REQUESTER = "you opened it, and separation of duties bars the requester from signing it."
CANNOT_SIGN_AUTHOR = ("you made the model version it is about, and separation of duties bars its authors from "
                      "signing its approval.")
CANNOT_SIGN_SIGNED = "you signed it already ({meaning} as {role}), and one person fills one required role once."
# What a refusal means for the person at the form, beside the service's own message.
REFUSAL_WORDS = {
    "reauthentication_failed": "The password did not match your account. Nothing was signed; repeated failures "
                               "lock your signing.",
    "signing_locked": "Your signing is locked after repeated wrong passwords; a compliance officer can unlock it.",
    "separation_of_duties": "Separation of duties: this signature must come from someone else.",
    "evidence_stale": "The evidence changed since the request was opened, so a signature would bind a record that "
                      "is no longer true. The requester should withdraw it and open a new one.",
    "signer_role_missing": "You do not hold a role this request still needs.",
    "role_already_filled": "Every signature your role needs is already there.",
    "reason_required": "A rejection needs a reason.",
    "invalid_transition": "The request is no longer pending.",
}


def _pre(data: Any):
    return format_html('<pre style="white-space: pre-wrap; word-break: break-all; margin: 0">{}</pre>',
                       json.dumps(data, indent=2, ensure_ascii=False, sort_keys=True, default=str))


def utc_text(value: dt.datetime | None) -> str:
    """Every time in the governance admin, to the second and in UTC (Django's default drops both)."""
    if value is None:
        return "—"
    return value.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _roles_text(required_roles: dict[str, int]) -> str:
    return ", ".join(f"{count} {role}" for role, count in sorted(required_roles.items())) or "—"


# --- policies ---------------------------------------------------------------------------------------

class PolicyEditForm(forms.Form):
    """The rules of a tier's next version; the current version fills it in."""

    approvable = forms.BooleanField(required=False, help_text=_("Unticked: nothing of this tier is ever approved."))
    environments = forms.CharField(help_text=_("Comma-separated, e.g. staging, production."), required=False)
    required_reports = forms.MultipleChoiceField(choices=ApprovalPolicy.Report.choices, required=False,
                                                 widget=forms.CheckboxSelectMultiple)
    demographic_parity_ratio_min = forms.FloatField(required=False, min_value=0, max_value=1,
                                                    label=_("demographic parity ratio ≥"))
    equalized_odds_difference_max = forms.FloatField(required=False, min_value=0, max_value=1,
                                                     label=_("equalized odds difference ≤"))
    metric = forms.CharField(required=False, max_length=100, label=_("performance metric"),
                             help_text=_("A key of the version's metrics, e.g. accuracy or auc."))
    metric_min = forms.FloatField(required=False, label=_("performance metric ≥"))
    max_report_age_days = forms.IntegerField(min_value=1, label=_("maximum report age (days)"))
    max_approval_age_days = forms.IntegerField(min_value=1, label=_("maximum approval age (days)"))
    reason = forms.CharField(widget=forms.Textarea(attrs={"rows": 3, "cols": 60}),
                             help_text=_("Why this change: it is recorded with the new version and in the audit log."))

    def __init__(self, *args, policy: ApprovalPolicy, **kwargs):
        initial = {
            "approvable": policy.approvable, "environments": ", ".join(policy.environments),
            "required_reports": list(policy.required_reports),
            "max_report_age_days": policy.max_report_age_days,
            "max_approval_age_days": policy.max_approval_age_days,
            "metric": policy.thresholds.get(METRIC, ""),
            **{key: policy.thresholds.get(key) for key in THRESHOLD_FIELDS},
            **{f"role_{role}": policy.required_roles.get(role, 0) for role in SIGNING_ROLES},
        }
        super().__init__(*args, initial=initial, **kwargs)  # type: ignore[misc]  # stubs: initial may be in *args
        self.policy = policy
        for role in SIGNING_ROLES:
            self.fields[f"role_{role}"] = forms.IntegerField(
                min_value=0, max_value=20, label=_("signers: %(role)s") % {"role": role},
                help_text=_("0: this role is not required."))
        # Signer counts read best right after the environments.
        order = ["approvable", "environments", *[f"role_{role}" for role in SIGNING_ROLES]]
        self.order_fields(order)

    def clean_environments(self) -> list[str]:
        raw = self.cleaned_data.get("environments") or ""
        return [name.strip() for name in raw.split(",") if name.strip()]

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        # Without a name the gate falls back to accuracy, so a minimum typed for another metric
        # would silently judge the wrong number.
        if cleaned.get(METRIC_MIN) is not None and not cleaned.get("metric"):
            self.add_error("metric", METRIC_NAME_REQUIRED)
        return cleaned

    def changes(self) -> dict[str, Any]:
        """The service's `changes`: every editable rule, thresholds merged over keys this form does not know."""
        data = self.cleaned_data
        thresholds = {key: value for key, value in self.policy.thresholds.items()
                      if key not in (*THRESHOLD_FIELDS, METRIC)}
        for key in THRESHOLD_FIELDS:
            if data.get(key) is not None:
                thresholds[key] = data[key]
        if data.get("metric"):
            thresholds[METRIC] = data["metric"].strip()
        return {
            "approvable": data["approvable"], "environments": data["environments"],
            "required_roles": {role: data[f"role_{role}"] for role in SIGNING_ROLES if data.get(f"role_{role}")},
            "required_reports": list(data["required_reports"]), "thresholds": thresholds,
            "max_report_age_days": data["max_report_age_days"],
            "max_approval_age_days": data["max_approval_age_days"],
        }


def _form_errors_add(form: forms.Form, exc: ApplicationError) -> None:
    """A refusal's field errors go under their fields; the message itself goes on top of the form."""
    for field, field_messages in (exc.fields or {}).items():
        if field in form.fields:
            for message in field_messages:
                form.add_error(field, message)
    form.add_error(None, exc.message)


@admin.register(ApprovalPolicy)
class ApprovalPolicyAdmin(ReadOnlyAdmin):
    """Every version of every tier; "edit" makes the tier's next version through `policy_update`."""

    list_display = ["risk_tier", "version", "is_current", "approvable", "signers", "reports", "created_at_utc",
                    "change_reason"]
    list_filter = ["risk_tier", "approvable"]
    list_select_related = ["created_by"]
    ordering = ["risk_tier", "-version"]
    fields = readonly_fields = ("risk_tier", "version", "is_current", "approvable", "environments_text", "signers",
                                "reports", "thresholds_display", "max_report_age_days", "max_approval_age_days",
                                "change_reason", "created_by", "created_at_utc", "diff_display", "edit_link")

    def get_queryset(self, request):
        if not user_can(request.user, Action.POLICY_READ):
            return ApprovalPolicy.objects.none()
        return super().get_queryset(request)

    @admin.display(description=_("current"), boolean=True)
    def is_current(self, obj: ApprovalPolicy) -> bool:
        return not ApprovalPolicy.objects.filter(risk_tier=obj.risk_tier, version__gt=obj.version).exists()

    @admin.display(description=_("created at"), ordering="created_at")
    def created_at_utc(self, obj: ApprovalPolicy) -> str:
        return utc_text(obj.created_at)

    @admin.display(description=_("environments"))
    def environments_text(self, obj: ApprovalPolicy) -> str:
        return ", ".join(obj.environments) or "—"

    @admin.display(description=_("required signers"))
    def signers(self, obj: ApprovalPolicy) -> str:
        return _roles_text(obj.required_roles)

    @admin.display(description=_("required reports"))
    def reports(self, obj: ApprovalPolicy) -> str:
        return ", ".join(obj.required_reports) or "—"

    @admin.display(description=_("thresholds"))
    def thresholds_display(self, obj: ApprovalPolicy):
        return _pre(obj.thresholds) if obj.thresholds else "—"

    @admin.display(description=_("changes from the previous version"))
    def diff_display(self, obj: ApprovalPolicy):
        previous = selectors.policy_previous(policy=obj)
        rows = selectors.policy_diff(old=previous, new=obj)
        if previous is None:
            return "Version 1: no previous version."
        if not rows:
            return f"No rule differs from v{previous.version}."
        body = format_html_join("", "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
                                ((row["rule"], _pre(row["before"]), _pre(row["after"])) for row in rows))
        return format_html('<table><thead><tr><th>rule</th><th>v{}</th><th>v{}</th></tr></thead>'
                           "<tbody>{}</tbody></table>", previous.version, obj.version, body)

    @admin.display(description=_("edit"))
    def edit_link(self, obj: ApprovalPolicy):
        url = reverse("admin:governance_approvalpolicy_edit", args=[obj.risk_tier])
        return format_html('<a class="button" href="{}">Edit the {} policy (creates its next version)</a>',
                           url, obj.risk_tier)

    def get_fields(self, request, obj=None):
        fields = list(super().get_fields(request, obj))
        if not user_can(request.user, Action.POLICY_UPDATE):
            fields.remove("edit_link")
        return fields

    def get_urls(self):
        return [
            path("edit/<str:risk_tier>/", self.admin_site.admin_view(self.edit_view),
                 name="governance_approvalpolicy_edit"),
            *super().get_urls(),
        ]

    def changelist_view(self, request, extra_context=None):
        extra_context = {**(extra_context or {}), "can_edit_policies": user_can(request.user, Action.POLICY_UPDATE),
                         "tiers": [p.risk_tier for p in selectors.policy_list()]}
        return super().changelist_view(request, extra_context)

    def edit_view(self, request: HttpRequest, risk_tier: str) -> HttpResponse:
        """The form of a tier's next version. Only compliance officers (and administrators) reach it."""
        if not user_can(request.user, Action.POLICY_UPDATE):
            raise PermissionDenied(NO_POLICY_EDIT_RIGHT)
        try:
            current = selectors.policy_current(risk_tier=risk_tier)
        except ApplicationError as exc:
            raise Http404(exc.message) from None
        form = PolicyEditForm(request.POST or None, policy=current)
        if request.method == "POST" and form.is_valid():
            try:
                created = policy_update(actor=request.user, risk_tier=risk_tier, changes=form.changes(),
                                        reason=form.cleaned_data["reason"])
            except ApplicationError as exc:
                _form_errors_add(form, exc)
            else:
                self.message_user(request, f"Created {created}. Requests already open keep the version they "
                                           "were opened under.", messages.SUCCESS)
                return HttpResponseRedirect(reverse("admin:governance_approvalpolicy_change", args=[created.pk]))
        context = {**self.admin_site.each_context(request), "opts": self.opts, "form": form, "policy": current,
                   "title": f"Edit the {risk_tier} approval policy (v{current.version} → v{current.version + 1})"}
        return TemplateResponse(request, "admin/governance/approvalpolicy/edit.html", context)


# --- approval requests ------------------------------------------------------------------------------

def _sign_barred(target: ApprovalRequest, *, viewer: Any) -> str:
    """Why `viewer` cannot sign `target` as it stands ("" if they can), in the order the service refuses.

    For a pending request and a user with a signing role only (the page words the other cases).
    `approval_request_author_ids` is the service's own separation-of-duties rule: the page bars exactly whom it refuses.
    """
    if target.requested_by_id == viewer.pk:
        return CANNOT_SIGN_REQUESTER
    if viewer.pk in approval_request_author_ids(target):
        return CANNOT_SIGN_AUTHOR
    for signature in target.signatures.all():
        if signature.signer_id == viewer.pk and signature.meaning != Signature.Meaning.REVIEWED:
            return CANNOT_SIGN_SIGNED.format(meaning=signature.meaning, role=signature.role)
    # A signer whose role is not required, or whose role's approvals are complete, keeps the form:
    # the service still takes their rejection or their "reviewed" note.
    return ""


class SignForm(forms.Form):
    """Re-authentication and the decision: the service checks all of it again."""

    password = forms.CharField(widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
                               label=_("your password"), help_text=_("Signing re-authenticates (21 CFR 11.200)."))
    meaning = forms.ChoiceField(choices=Signature.Meaning.choices, widget=forms.RadioSelect)
    role = forms.ChoiceField(required=False, label=_("sign as"),
                             help_text=_("Empty: the first required role you hold that is still open."))
    reason = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 3, "cols": 60}),
                             help_text=_("Required to reject."))

    def __init__(self, *args, roles: list[str], **kwargs):
        super().__init__(*args, **kwargs)
        cast(forms.ChoiceField, self.fields["role"]).choices = [("", "—")] + [(role, role) for role in roles]

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        # The service refuses this too, but only after re-authenticating and as a message above the
        # form; here it marks the field, together with any other mistake in the same submission.
        if cleaned.get("meaning") == Signature.Meaning.REJECT and not (cleaned.get("reason") or "").strip():
            self.add_error("reason", errors.REASON_REQUIRED)
        return cleaned


class WithdrawForm(forms.Form):
    reason = forms.CharField(widget=forms.Textarea(attrs={"rows": 3, "cols": 60}),
                             help_text=_("Recorded with the request and in the audit log."))


class RiskTierFilter(admin.SimpleListFilter):
    title = _("risk tier")
    parameter_name = "risk_tier"

    def lookups(self, request, model_admin):
        return RegisteredModel.RiskTier.choices

    def queryset(self, request, queryset):
        return queryset.filter(model__risk_tier=self.value()) if self.value() else queryset


class EnvironmentFilter(admin.SimpleListFilter):
    """The environments that occur in the rows the user may read."""

    title = _("environment")
    parameter_name = "environment"

    def lookups(self, request, model_admin):
        names = model_admin.get_queryset(request).exclude(environment="").order_by().values_list(
            "environment", flat=True).distinct()
        return [(name, name) for name in sorted(set(names))]

    def queryset(self, request, queryset):
        return queryset.filter(environment=self.value()) if self.value() else queryset


@admin.register(ApprovalRequest)
class ApprovalRequestAdmin(ReadOnlyAdmin):
    """Requests the user may read; the sign-off page and withdrawal call the services."""

    list_display = ["id", "target", "status", "tier_and_policy", "requested_by", "opened_at_utc",
                    "signature_count", "sign_link"]
    list_display_links = ["id", "target"]
    list_filter = ["kind", "status", EnvironmentFilter, RiskTierFilter]
    search_fields = ["model__name", "evidence_sha256", "reason"]
    actions = ["withdraw_selected"]
    fields = readonly_fields = (
        "kind", "status", "model", "version_number", "environment", "risk_tier", "reason", "requested_by",
        "opened_at_utc", "decided_at_utc", "decision_reason", "policy_link", "evidence_sha256", "evidence_display",
        "signatures_display", "sign_link",
    )

    def get_queryset(self, request):
        # The API's selector: another team's request is not in the queryset (404 on its page).
        return selectors.approval_request_list(user=request.user)

    def get_ordering(self, request):
        return ["-created_at", "-id"]

    @admin.display(description=_("version"))
    def version_number(self, obj: ApprovalRequest) -> str:
        return f"v{obj.model_version.version}" if obj.model_version is not None else "—"

    @admin.display(description=_("about"))
    def target(self, obj: ApprovalRequest) -> str:
        if obj.model_version is not None:
            return f"deploy {obj.model.name} v{obj.model_version.version} → {obj.environment}"
        return f"retrain {obj.model.name}"

    @admin.display(description=_("opened at (UTC)"), ordering="created_at")
    def opened_at_utc(self, obj: ApprovalRequest) -> str:
        return utc_text(obj.created_at)

    @admin.display(description=_("decided at (UTC)"))
    def decided_at_utc(self, obj: ApprovalRequest) -> str:
        return utc_text(obj.decided_at)

    @admin.display(description=_("risk tier, policy"), ordering="model__risk_tier")
    def tier_and_policy(self, obj: ApprovalRequest) -> str:
        return f"{obj.model.risk_tier}, v{obj.policy.version}"

    @admin.display(description=_("risk tier"))
    def risk_tier(self, obj: ApprovalRequest) -> str:
        return obj.model.risk_tier

    @admin.display(description=_("policy version signed under"))
    def policy_link(self, obj: ApprovalRequest):
        url = reverse("admin:governance_approvalpolicy_change", args=[obj.policy_id])
        return format_html('<a href="{}">{}</a> — signers: {}', url, obj.policy, _roles_text(obj.policy.required_roles))

    @admin.display(description=_("signatures"))
    def signature_count(self, obj: ApprovalRequest) -> int:
        return len(obj.signatures.all())

    @admin.display(description=_("evidence signed"))
    def evidence_display(self, obj: ApprovalRequest):
        return _pre(obj.evidence)

    @admin.display(description=_("signatures (21 CFR 11.50 manifestation)"))
    def signatures_display(self, obj: ApprovalRequest):
        signatures = list(obj.signatures.all())
        if not signatures:
            return "None yet."
        rows = format_html_join(
            "", "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td>"
            '<td><code style="word-break: break-all">{}</code></td><td>{}</td></tr>',
            ((s.printed_name, s.role, s.meaning, s.reason or "—", utc_text(s.signed_at), s.record_sha256,
              "yes" if signature_verify(s, obj) else "NO") for s in signatures))
        return format_html(
            "<table><thead><tr><th>printed name</th><th>role</th><th>meaning</th><th>reason</th>"
            "<th>signed at (UTC)</th><th>record sha256</th><th>verifies</th></tr></thead><tbody>{}</tbody></table>",
            rows)

    @admin.display(description=_("sign-off"))
    def sign_link(self, obj: ApprovalRequest):
        if obj.status != Status.PENDING:
            return "—"
        return format_html('<a href="{}">sign-off page</a>',
                           reverse("admin:governance_approvalrequest_sign", args=[obj.pk]))

    def get_urls(self):
        wrap = self.admin_site.admin_view
        return [
            path("pending/", wrap(self.pending_view), name="governance_approvalrequest_pending"),
            path("<int:pk>/sign/", wrap(self.sign_view), name="governance_approvalrequest_sign"),
            path("<int:pk>/signed/<int:signature_pk>/", wrap(self.signed_view),
                 name="governance_approvalrequest_signed"),
            *super().get_urls(),
        ]

    def changelist_view(self, request, extra_context=None):
        extra_context = {**(extra_context or {}), "can_sign": user_can(request.user, Action.APPROVAL_SIGN)}
        return super().changelist_view(request, extra_context)

    def _context(self, request: HttpRequest, **extra) -> dict[str, Any]:
        return {**self.admin_site.each_context(request), "opts": self.opts, **extra}

    def _get_or_404(self, request: HttpRequest, pk: int) -> ApprovalRequest:
        try:
            return selectors.approval_request_get_for_user(user=request.user, pk=pk)
        except ApplicationError as exc:
            raise Http404(exc.message) from None

    def pending_view(self, request: HttpRequest) -> HttpResponse:
        """Pending requests that still need a role the logged-in user holds, oldest first."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        rows = approval_requests_pending_for_user(user=request.user)
        roles = sorted(selectors.approval_signing_roles(user=request.user))
        return TemplateResponse(request, "admin/governance/approvalrequest/pending.html", self._context(
            request, rows=rows, roles=roles, can_sign=user_can(request.user, Action.APPROVAL_SIGN),
            title="Pending requests for my roles"))

    def sign_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        """The evidence side by side, the signatures so far, what the gate says now, and the signing form.

        A user who may read the request but holds no signing role sees the evidence and, in place of
        the form, why they may not sign (403); the services would refuse them anyway. A signer whom
        separation of duties bars, or whose roles this request no longer needs, sees why in place of
        the form too (200: the page is theirs to read); a POST still goes to the service, which refuses.
        """
        target = self._get_or_404(request, pk)
        refused = ""
        if not user_can(request.user, Action.APPROVAL_SIGN) or Role.CI_SERVICE in user_roles(request.user):
            refused = NO_SIGNING_RIGHT.format(user=request.user.get_username())
            roles = sorted(user_roles(request.user))
            refused += (f" Your roles ({', '.join(roles)}) do not sign; a model validator, compliance officer, "
                        "risk officer or ML engineer does." if roles else " You hold no role.")
        held = user_roles(request.user)
        form = SignForm(request.POST or None, roles=[r for r in target.policy.required_roles if r in held])
        refusal = None
        if request.method == "POST" and not refused and form.is_valid():
            data = form.cleaned_data
            try:
                signature = approval_request_sign(actor=request.user, request=target, password=data["password"],
                                                  meaning=data["meaning"], reason=data["reason"],
                                                  role=data["role"] or None)
            except ApplicationError as exc:
                refusal = exc
            else:
                return HttpResponseRedirect(reverse("admin:governance_approvalrequest_signed",
                                                    args=[target.pk, signature.pk]))
            target = self._get_or_404(request, pk)  # the refusal may have come after a state change elsewhere
        evidence = self._evidence_context(target, viewer=request.user)
        barred = ""
        if not refused and evidence["is_pending"]:
            barred = _sign_barred(target, viewer=request.user)
        response = TemplateResponse(request, "admin/governance/approvalrequest/sign.html", self._context(
            request, **evidence, form=form, refusal=refusal, sign_barred=barred,
            refusal_words=REFUSAL_WORDS.get(refusal.code, "") if refusal else "", signing_refused=refused,
            printed_name=selectors.user_printed_name(request.user),
            title=f"Sign-off: {target}"))
        if refused:
            response.status_code = 403
        return response

    def _evidence_context(self, target: ApprovalRequest, *, viewer: Any) -> dict[str, Any]:
        from governance.dashboard_selectors import drift_status, report_panels, retraining_focus_version
        from registry.admin import lineage_columns

        version = target.model_version
        gate_checks = None
        if target.kind == ApprovalRequest.Kind.DEPLOYMENT and version is not None:
            gate_checks, _approved = gate_checks_compute(model_version=version, environment=target.environment,
                                                         artifact_sha256=version.artifact_sha256)
        # The same comparison and words as the signing service's 409 evidence_stale refusal.
        changed = approval_request_evidence_changes(target) if target.status == Status.PENDING else []
        signatures = list(target.signatures.all())
        # A retraining request is about the version in production (or the one whose drift asked for it).
        shown, shown_why = version, ""
        if shown is None:
            shown, shown_why = retraining_focus_version(user=viewer, model=target.model)
        return {
            "target": target, "model": target.model, "version": version, "shown_version": shown,
            "shown_why": shown_why,
            "authors": list(version.authors.values_list("username", flat=True)) if version else [],
            "evidence": target.evidence, "evidence_json": json.dumps(target.evidence, indent=2, sort_keys=True),
            "datasets": target.evidence.get("datasets") or target.evidence.get("proposed_datasets") or [],
            "reports": target.evidence.get("reports") or [],
            "report_panels": report_panels(version=shown) if shown is not None else [],
            "lineage": lineage_columns(user=viewer, version=shown) if shown is not None else None,
            "drift": drift_status(user=viewer, version=shown) if shown is not None else None,
            "signatures": [{"s": s, "signed_at": utc_text(s.signed_at), "verifies": signature_verify(s, target)}
                           for s in signatures],
            "roles_open": approval_request_roles_open(target),
            "policy_roles": _roles_text(target.policy.required_roles),
            "gate_checks": gate_checks,
            "gate_failed": [c for c in gate_checks or [] if not c["passed"]],
            "evidence_warning": errors.evidence_stale(pk=target.pk, changes=changed).message if changed else "",
            "is_pending": target.status == Status.PENDING,
            "mine": [s for s in signatures if s.signer_id == viewer.pk],
            "is_requester": target.requested_by_id == viewer.pk,
            "is_author": viewer.pk in approval_request_author_ids(target),
        }

    def signed_view(self, request: HttpRequest, pk: int, signature_pk: int) -> HttpResponse:
        """The manifestation of a signature just made (21 CFR 11.50): name, role, meaning, reason, UTC time, hash."""
        target = self._get_or_404(request, pk)
        signature = target.signatures.filter(pk=signature_pk).first()
        if signature is None:
            raise Http404("No such signature on this request.")
        from governance.dashboard_selectors import dossier_url

        return TemplateResponse(request, "admin/governance/approvalrequest/signed.html", self._context(
            request, target=target, signature=signature, signed_at=utc_text(signature.signed_at),
            verifies=signature_verify(signature, target), version=target.model_version,
            roles_open=approval_request_roles_open(target), dossier_url=dossier_url(model=target.model),
            title=f"Signed: {target}"))

    def has_withdraw_permission(self, request: HttpRequest) -> bool:
        return user_can(request.user, Action.APPROVAL_WITHDRAW)

    @admin.action(description=_("Withdraw the selected pending requests (asks for a reason)"),
                  permissions=["withdraw"])
    def withdraw_selected(self, request: HttpRequest, queryset: QuerySet):
        form = WithdrawForm(request.POST if "withdraw_reason_given" in request.POST else None)
        if form.is_bound and form.is_valid():
            done = 0
            for target in queryset:
                try:
                    approval_request_withdraw(actor=request.user, request=target, reason=form.cleaned_data["reason"])
                except ApplicationError as exc:
                    self.message_user(request, f"#{target.pk}: {exc.message}", messages.ERROR)
                else:
                    done += 1
            if done:
                self.message_user(request, f"Withdrew {done} request(s).", messages.SUCCESS)
            return None
        return TemplateResponse(request, "admin/governance/approvalrequest/withdraw.html", self._context(
            request, form=form, targets=list(queryset), action_checkbox_name=helpers.ACTION_CHECKBOX_NAME,
            title="Withdraw approval requests"))


# --- read-only records ------------------------------------------------------------------------------

@admin.register(Signature)
class SignatureAdmin(ReadOnlyAdmin):
    list_display = ["request", "printed_name", "role", "meaning", "signed_at_utc", "short_record", "verifies"]
    list_filter = ["meaning", "role"]
    search_fields = ["printed_name", "record_sha256", "signer__username"]
    list_select_related = ["request", "request__model", "request__model_version"]
    fields = readonly_fields = ("request", "printed_name", "signer", "role", "meaning", "reason", "signed_at_utc",
                                "record_sha256", "verifies")

    def get_queryset(self, request):
        readable = selectors.approval_request_list(user=request.user).order_by().values("pk")
        return super().get_queryset(request).filter(request__in=readable)

    @admin.display(description=_("signed at (UTC)"), ordering="signed_at")
    def signed_at_utc(self, obj: Signature) -> str:
        return utc_text(obj.signed_at)

    @admin.display(description=_("record sha256"))
    def short_record(self, obj: Signature) -> str:
        return obj.record_sha256[:16] + "…"

    @admin.display(description=_("verifies"), boolean=True)
    def verifies(self, obj: Signature) -> bool:
        return signature_verify(obj)


def _scoped_to_teams(user: Any, queryset: QuerySet, team_path: str) -> QuerySet:
    """As the selectors do: governance roles and administrators read all, others their teams' records."""
    if not user_can(user, Action.DEPLOYMENT_READ):
        return queryset.none()
    if user_reads_all(user):
        return queryset
    return queryset.filter(**{f"{team_path}__members": user}).distinct()


@admin.register(GateDecision)
class GateDecisionAdmin(ReadOnlyAdmin):
    list_display = ["decision_id", "model_version", "environment", "allowed", "failed_checks", "evaluated_by",
                    "evaluated_at_utc"]
    list_filter = ["allowed", EnvironmentFilter]
    search_fields = ["=decision_id", "model_version__model__name", "artifact_sha256"]
    list_select_related = ["model_version", "model_version__model", "evaluated_by"]
    fields = readonly_fields = ("decision_id", "model_version", "environment", "artifact_sha256", "allowed",
                                "checks_display", "approval_request", "evaluated_by", "evaluated_at_utc")

    def get_queryset(self, request):
        return _scoped_to_teams(request.user, super().get_queryset(request), "model_version__model__team")

    @admin.display(description=_("evaluated at"), ordering="evaluated_at")
    def evaluated_at_utc(self, obj: GateDecision) -> str:
        return utc_text(obj.evaluated_at)

    @admin.display(description=_("failed checks"))
    def failed_checks(self, obj: GateDecision) -> str:
        return ", ".join(check["code"] for check in obj.checks if not check["passed"]) or "—"

    @admin.display(description=_("checks"))
    def checks_display(self, obj: GateDecision):
        rows = format_html_join("", "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
                                ((c["code"], "passed" if c["passed"] else "FAILED", c["message"]) for c in obj.checks))
        return format_html("<table><thead><tr><th>check</th><th>result</th><th>message</th></tr></thead>"
                           "<tbody>{}</tbody></table>", rows)


@admin.register(Deployment)
class DeploymentAdmin(ReadOnlyAdmin):
    """The deployment history per environment: filter by environment; newest first within it."""

    list_display = ["environment", "model_and_version", "short_artifact", "deployed_by", "deployed_at_utc",
                    "is_rollback", "short_decision"]
    list_filter = [EnvironmentFilter, "is_rollback", "model"]
    search_fields = ["model__name", "artifact_sha256", "=decision__decision_id"]
    date_hierarchy = "deployed_at"
    fields = readonly_fields = ("environment", "model", "model_version", "artifact_sha256", "deployed_by",
                                "deployed_at_utc", "is_rollback", "previous", "decision_link", "approval_request")

    def get_queryset(self, request):
        return selectors.deployment_list(user=request.user)

    def get_ordering(self, request):
        return ["environment", "-deployed_at", "-id"]

    @admin.display(description=_("version"))
    def version_number(self, obj: Deployment) -> str:
        return f"v{obj.model_version.version}"

    @admin.display(description=_("deployed at"), ordering="deployed_at")
    def deployed_at_utc(self, obj: Deployment) -> str:
        return utc_text(obj.deployed_at)

    @admin.display(description=_("model"), ordering="model__name")
    def model_and_version(self, obj: Deployment) -> str:
        return f"{obj.model.name} v{obj.model_version.version}"

    @admin.display(description=_("artifact sha256"))
    def short_artifact(self, obj: Deployment) -> str:
        return obj.artifact_sha256[:12] + "…"

    @admin.display(description=_("gate decision"))
    def short_decision(self, obj: Deployment):
        url = reverse("admin:governance_gatedecision_change", args=[obj.decision_id])
        return format_html('<a href="{}"><code>{}…</code></a>', url, str(obj.decision.decision_id)[:8])

    @admin.display(description=_("gate decision"))
    def decision_link(self, obj: Deployment):
        url = reverse("admin:governance_gatedecision_change", args=[obj.decision_id])
        return format_html('<a href="{}"><code>{}</code></a>', url, obj.decision.decision_id)
