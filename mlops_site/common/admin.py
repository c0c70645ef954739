from urllib.parse import urlencode

from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseRedirect
from django.urls import reverse

# By name, not by import: this package sits below every app, governance included.
AUDIT_EVENT_VIEW_PERMISSION = "governance.view_auditevent"
AUDIT_LOG_UNREADABLE = "This object's history is the audit log, which your role does not read."


class AuditHistoryMixin:
    """"History" opens the audit log filtered to the object: Attest's services write an audit event for
    every change, never a django_admin_log row, so Django's own history page would always be empty."""

    def history_view(self, request, object_id, extra_context=None):
        # The same checks as Django's history_view: the object must be in the user's queryset and viewable.
        obj = self.get_object(request, unquote(object_id))
        if obj is None:
            return self._get_obj_does_not_exist_redirect(request, self.opts, object_id)
        if not self.has_view_or_change_permission(request, obj):
            raise PermissionDenied
        if not request.user.has_perm(AUDIT_EVENT_VIEW_PERMISSION):
            messages.info(request, AUDIT_LOG_UNREADABLE)
            return HttpResponseRedirect(reverse(f"admin:{self.opts.app_label}_{self.opts.model_name}_change",
                                                args=[obj.pk], current_app=self.admin_site.name))
        # audit_event_record() stores target._meta.label_lower and str(target.pk).
        query = urlencode({"object_type": self.opts.label_lower, "object_id": obj.pk})
        changelist = reverse("admin:governance_auditevent_changelist", current_app=self.admin_site.name)
        return HttpResponseRedirect(f"{changelist}?{query}")


class ReadOnlyAdmin(AuditHistoryMixin, admin.ModelAdmin):
    """Records of evidence and decisions: shown, never added, changed or deleted in the admin."""

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
