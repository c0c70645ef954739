"""Back-office for governance. Writes go through the services; the admin only collects input.

API tokens: list, issue (the key is shown once, on the page that follows the form) and
revoke. A token is never edited or deleted: revocation keeps the record and its audit trail.
"""

from django import forms
from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.template.response import TemplateResponse
from django.utils import timezone
from django.utils.cache import add_never_cache_headers

from governance.models import ApiToken
from governance.services.tokens import api_token_issue, api_token_revoke
from mlops_site.common.errors import ApplicationError


class ApiTokenIssueForm(forms.ModelForm):
    """The fields an administrator chooses; the key, prefix and hash are made by the service."""

    scopes = forms.MultipleChoiceField(
        choices=ApiToken.Scope.choices, required=False, widget=forms.CheckboxSelectMultiple,
        help_text="None ticked: the defaults for the user's role (ci_service: registry:read, "
                  "registry:write, gate:check, deployments:write; auditor: registry:read, audit:read; "
                  "others: every scope).",
    )

    class Meta:
        model = ApiToken
        fields = ["user", "name", "scopes", "expires_at"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # The service refuses inactive users; offering only active ones keeps the refusal unreachable.
        self.fields["user"].queryset = get_user_model().objects.filter(is_active=True).order_by("username")

    def clean_expires_at(self):
        expires_at = self.cleaned_data.get("expires_at")
        if expires_at is not None and expires_at <= timezone.now():
            raise forms.ValidationError("The expiry time must be in the future.")
        return expires_at


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    list_display = ["prefix", "user", "name", "scope_list", "created_at", "expires_at", "revoked_at",
                    "last_used_at", "state"]
    list_filter = [("revoked_at", admin.EmptyFieldListFilter), "created_at", "expires_at"]
    search_fields = ["prefix", "name", "user__username"]
    list_select_related = ["user"]
    ordering = ["-created_at"]
    actions = ["revoke_tokens"]
    readonly_fields = ["user", "name", "prefix", "scopes", "created_at", "expires_at", "revoked_at",
                       "last_used_at"]

    @admin.display(description="scopes")
    def scope_list(self, obj: ApiToken) -> str:
        return ", ".join(obj.scopes)

    @admin.display(description="state")
    def state(self, obj: ApiToken) -> str:
        if obj.revoked_at:
            return "revoked"
        return "active" if obj.is_active() else "expired"

    def get_form(self, request, obj=None, change=False, **kwargs):
        if obj is None:
            kwargs["form"] = ApiTokenIssueForm
        return super().get_form(request, obj, change=change, **kwargs)

    def get_readonly_fields(self, request, obj=None):
        return self.readonly_fields if obj is not None else []

    def get_fields(self, request, obj=None):
        return self.readonly_fields if obj is not None else ApiTokenIssueForm.Meta.fields

    # A token's record never changes except through revocation, and is never deleted.
    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    def has_revoke_permission(self, request) -> bool:
        return request.user.has_perm("governance.change_apitoken")

    def save_model(self, request, obj, form, change):
        token, key = api_token_issue(
            actor=request.user, user=form.cleaned_data["user"], scopes=form.cleaned_data["scopes"],
            name=form.cleaned_data["name"], expires_at=form.cleaned_data["expires_at"],
        )
        # The admin goes on to log and redirect with `obj`: make it the token the service saved.
        obj.__dict__.update({key_: value for key_, value in token.__dict__.items() if key_ != "_state"})
        obj._state.adding = False
        request._attest_issued = (token, key)

    def response_add(self, request, obj, post_url_continue=None):
        issued = getattr(request, "_attest_issued", None)
        if issued is None:
            return super().response_add(request, obj, post_url_continue)
        token, key = issued
        context = {**self.admin_site.each_context(request), "opts": self.opts, "token": token, "key": key,
                   "title": "API token issued"}
        response = TemplateResponse(request, "admin/governance/apitoken/issued.html", context)
        add_never_cache_headers(response)  # the key must not stay in any cache
        return response

    @admin.action(description="Revoke the selected tokens", permissions=["revoke"])
    def revoke_tokens(self, request, queryset):
        revoked = 0
        for token in queryset.filter(revoked_at__isnull=True):
            try:
                api_token_revoke(actor=request.user, token=token,
                                 reason=f"revoked in the admin by {request.user.get_username()}")
            except ApplicationError as exc:
                self.message_user(request, f"{token.prefix}…: {exc.message}", messages.ERROR)
            else:
                revoked += 1
        self.message_user(request, f"{revoked} token(s) revoked.", messages.SUCCESS)
from governance import admin_audit  # noqa: E402,F401,I001
from governance import admin_approvals  # noqa: E402,F401,I001
from governance import admin_models  # noqa: E402,F401,I001
from governance import admin_reports  # noqa: E402,F401,I001
