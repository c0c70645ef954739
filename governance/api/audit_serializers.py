"""Serializers of the audit-log API. Output shapes follow CONTRACT.md ("The audit log")."""

from rest_framework import serializers

from governance.audit_selectors import audit_event_contract

MAX_BIGINT = 2**63 - 1


class AuditErrorDetailSerializer(serializers.Serializer):
    code = serializers.CharField()
    message = serializers.CharField()
    fields = serializers.DictField()


class AuditErrorOutputSerializer(serializers.Serializer):
    error = AuditErrorDetailSerializer()


class AuditEventFilterInputSerializer(serializers.Serializer):
    object_type = serializers.CharField(required=False, max_length=100, help_text="e.g. registry.registeredmodel")
    object_id = serializers.CharField(required=False, max_length=100)
    actor = serializers.CharField(required=False, max_length=150, help_text="user id or username")
    action = serializers.CharField(required=False, max_length=100, help_text="e.g. registry.model.registered")
    since = serializers.DateTimeField(required=False, help_text="events at or after this time (inclusive)")
    until = serializers.DateTimeField(required=False, help_text="events before this time (exclusive)")


class AuditEventOutputSerializer(serializers.Serializer):
    """An event byte-for-byte as the log hashed it, plus prev_hash and hash."""

    seq = serializers.IntegerField()
    timestamp = serializers.CharField()
    actor = serializers.JSONField(help_text='{"id", "username", "roles"} or {"system": NAME}')
    action = serializers.CharField()
    object_type = serializers.CharField()
    object_id = serializers.CharField()
    object_repr = serializers.CharField()
    payload = serializers.JSONField(help_text='object with "before", "after", "reason" and more')
    correlation_id = serializers.CharField()
    prev_hash = serializers.CharField()
    hash = serializers.CharField()

    def to_representation(self, instance):
        return audit_event_contract(instance)


class AuditCheckpointOutputSerializer(serializers.Serializer):
    size = serializers.IntegerField()
    root = serializers.CharField()
    timestamp = serializers.CharField()
    signature = serializers.CharField()
    public_key = serializers.CharField()

    def to_representation(self, instance):
        return instance.as_contract()


class AuditProofInputSerializer(serializers.Serializer):
    checkpoint = serializers.IntegerField(required=False, min_value=0, max_value=MAX_BIGINT,
                                          help_text="checkpoint size (default: the latest checkpoint)")


class AuditProofOutputSerializer(serializers.Serializer):
    seq = serializers.IntegerField()
    leaf_index = serializers.IntegerField()
    tree_size = serializers.IntegerField()
    leaf_hash = serializers.CharField()
    audit_path = serializers.ListField(child=serializers.CharField())
    root = serializers.CharField()
    checkpoint = AuditCheckpointOutputSerializer()

    def to_representation(self, instance):
        return instance


class AuditConsistencyInputSerializer(serializers.Serializer):
    first = serializers.IntegerField(min_value=0, max_value=MAX_BIGINT, help_text="the older checkpoint's size")
    second = serializers.IntegerField(min_value=0, max_value=MAX_BIGINT, help_text="the newer checkpoint's size")


class AuditConsistencyOutputSerializer(serializers.Serializer):
    first = AuditCheckpointOutputSerializer()
    second = AuditCheckpointOutputSerializer()
    consistency_path = serializers.ListField(child=serializers.CharField())

    def to_representation(self, instance):
        return instance


class AuditVerifyOutputSerializer(serializers.Serializer):
    ok = serializers.BooleanField()
    count = serializers.IntegerField()
    head = serializers.CharField()
    broken_seq = serializers.IntegerField(allow_null=True)
    reason = serializers.CharField(allow_blank=True)
    line = serializers.CharField(help_text="what manage.py verify_audit_log prints")
