"""Governance services: every state change of the governance app, one function per use case.

Split by subdomain (roles, tokens, …); import from the submodule, e.g.
`from governance.services.tokens import api_token_issue`.
"""
