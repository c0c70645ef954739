from django.contrib import admin


class ReadOnlyAdmin(admin.ModelAdmin):
    """Records of evidence and decisions: shown, never added, changed or deleted in the admin."""

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
