"""Template tags of Attest's admin pages."""

from django import template

from governance.dashboard_selectors import alert_may_handle

register = template.Library()


@register.simple_tag(takes_context=True)
def attest_may_handle_alert(context, alert) -> bool:
    """Whether the logged-in user may acknowledge, resolve or dismiss `alert` (monitoring's rule)."""
    return alert_may_handle(user=context["request"].user, alert=alert)
