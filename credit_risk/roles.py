"""Who may do what: the roles, the permission each grants, and the named tokens that carry them.

One table for the service's routes, the UI's words and the docs. A role is a bearer token from
the environment (``CREDIT_RISK_<ROLE>_TOKEN``) with a name (``CREDIT_RISK_<ROLE>_TOKEN_NAME``, else
the role's own name) that the ledger and the access log record beside every action.

Permissions are not a ladder: an approver validates models and must not be the admin who asked
for the promotion (SR 11-7's independence), a reviewer decides referred applications and sees
nothing else. An admin may also read decisions and review cases.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from credit_risk.config import ConfigError, Settings

# role -> the permissions it grants; a route asks for one permission
GRANTS: dict[str, frozenset[str]] = {
    "auditor": frozenset({"auditor"}),
    "reviewer": frozenset({"reviewer"}),
    "approver": frozenset({"approver"}),
    "admin": frozenset({"admin", "auditor", "reviewer"}),
}
ROLES = tuple(GRANTS)
PERMISSIONS = frozenset().union(*GRANTS.values())

# what each role is for, in words for people (the docs and the UI's sidebar)
DESCRIPTIONS: dict[str, str] = {
    "auditor": "finds, replays and prints decisions",
    "reviewer": "decides the applications the model refers, and records contests",
    "approver": "approves or rejects another person's promotion request",
    "admin": "promotes, rolls back, pauses automation and runs experiments; may also audit and review",
}

TOKEN_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")


@dataclass(frozen=True)
class RoleToken:
    role: str
    name: str
    token: str

    @property
    def actor(self) -> str:
        """How the ledger and the access log name the holder."""
        return f"{self.name} ({self.role})"


def role_tokens(settings: Settings) -> list[RoleToken]:
    """The configured tokens, one per role, named by ``CREDIT_RISK_<ROLE>_TOKEN_NAME`` or the role.

    A token value is used whole (a ``:`` in it is part of the secret, never a name). A name that is
    not a plain identifier, or two roles given the same token, is a configuration error."""
    tokens = []
    for role in ROLES:
        value = getattr(settings, f"{role}_token")
        if not value:
            continue
        name = getattr(settings, f"{role}_token_name") or role
        if not TOKEN_NAME.match(name):
            raise ConfigError(
                f"CREDIT_RISK_{role.upper()}_TOKEN_NAME: {name[:64]!r} is not a plain name "
                "(letters, digits and . _ @ -, at most 64)"
            )
        tokens.append(RoleToken(role=role, name=name, token=value))
    values = [token.token for token in tokens]
    if len(set(values)) != len(values):
        raise ConfigError("two roles have the same token: give each role its own")
    return tokens


def grants(role: str, permission: str) -> bool:
    return permission in GRANTS.get(role, frozenset())


def permission_available(settings: Settings, permission: str) -> bool:
    """Some configured token carries ``permission``: else the routes that need it do not exist."""
    return any(grants(token.role, permission) for token in role_tokens(settings))
