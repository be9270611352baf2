"""The exceptions paved raises: one class per kind of the library's errors.

Every error is a :class:`PavedError` with ``.kind`` (``"invalid_input"``, ``"not_found"``,
``"conflict"``, ``"denied"``, ``"unavailable"``, ``"timeout"``, ``"internal"``) and ``.hint``
(how to fix it, e.g. ``did you mean "production"?``). The class comes from the kind, never
from the message. Bad input also is a :class:`ValueError`, a missing thing a
:class:`LookupError`, a timeout a :class:`TimeoutError`.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "PavedError",
    "InvalidInput",
    "NotFound",
    "Conflict",
    "Denied",
    "PolicyDenied",
    "Unavailable",
    "Timeout",
    "InternalError",
]


class PavedError(Exception):
    """An error of paved: ``kind`` says what went wrong, ``hint`` how to fix it."""

    kind: str
    hint: str | None
    message: str

    def __init__(self, message: str, *, kind: str = "internal", hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.kind = kind
        self.hint = hint

    def __str__(self) -> str:
        if self.hint:
            return f"{self.message}\n  hint: {self.hint}"
        return self.message


class InvalidInput(PavedError, ValueError):
    """What was given (an argument, a file, the configuration) is not valid; nothing ran."""


class NotFound(PavedError, LookupError):
    """Something named does not exist (a release, a revision, a secret, a database)."""


class Conflict(PavedError):
    """The current state does not allow the action (a lock, a concurrent change, ownership)."""


class Denied(PavedError):
    """A backend's authorisation refused the action."""


class PolicyDenied(Denied):
    """Organisation policy refused the action; ``violations`` says which rules and where."""

    violations: list[dict[str, Any]]

    def __init__(
        self,
        message: str,
        *,
        kind: str = "denied",
        hint: str | None = None,
        violations: list[dict[str, Any]] | None = None,
    ) -> None:
        super().__init__(message, kind=kind, hint=hint)
        self.violations = list(violations or [])


class Unavailable(PavedError):
    """A backend cannot be reached or is not ready, or the app did not become available."""


class Timeout(PavedError, TimeoutError):
    """An operation did not finish in time."""


class InternalError(PavedError):
    """Any other failure."""
