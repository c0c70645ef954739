"""Extension points through which governance adds rules to registry use cases.

The registry must not import governance (dependencies point monitoring -> governance ->
registry), yet some registry changes are governed: a CI retrain of the live version needs an
approved retraining request. Governance registers its guard here when its app is ready.
"""

from collections.abc import Callable
from typing import Any

# guard(actor=, model=, parent=) raises an ApplicationError to refuse the registration.
ModelVersionGuard = Callable[..., None]
_model_version_guards: list[ModelVersionGuard] = []


def model_version_register_guard_add(guard: ModelVersionGuard) -> ModelVersionGuard:
    if guard not in _model_version_guards:
        _model_version_guards.append(guard)
    return guard


def model_version_register_guards_run(*, actor: Any, model: Any, parent: Any) -> None:
    for guard in list(_model_version_guards):
        guard(actor=actor, model=model, parent=parent)
