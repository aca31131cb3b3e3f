"""Symfony sessions: attributes in ``_sf2_attributes``, the user inside the security token.

The firewall's ``ContextListener`` stores ``serialize($token)`` (a string) under
``_security_<context>``. Token classes serialize their own fields followed by
their parent's data as the last element, down to ``AbstractToken``'s
``[user, authenticated, null, attributes, roleNames]``:

* ``UsernamePasswordToken``: ``[credentials, firewall, <AbstractToken data>]``
* ``PostAuthenticationToken``: ``[firewall, <AbstractToken data>]``
* ``SwitchUserToken``: ``[originalToken, originatedFromUri, <UsernamePasswordToken data>]``
  (the original token, the impersonator's, sits at element 0 and is never used)

so the user is element 0 of the innermost data, found by following the last
element until an array whose element 1 is the ``authenticated`` boolean.
"""

from __future__ import annotations

from bridge import php
from bridge.frameworks import Plain

ATTRIBUTES = "_sf2_attributes"
MAX_NESTING = 8  # token classes inheriting from token classes; 3 levels in Symfony 5.4


def innermost_data(token) -> dict:
    """``AbstractToken``'s data inside a token; KeyError when it is no token."""
    if not isinstance(token, php.PHPObject):
        raise KeyError("the security token is not an object")
    data = token.props
    for _ in range(MAX_NESTING):
        if not isinstance(data, dict) or not data:
            break
        if 0 in data and isinstance(data.get(1), bool):
            return data
        positions = [k for k in data if isinstance(k, int)]
        if not positions:
            break
        data = data[max(positions)]
    raise KeyError(f"{token.class_name} holds no user")


class Symfony(Plain):
    """The ``symfony`` preset for the firewall context ``context``."""

    name = "symfony"

    def __init__(self, *, context: str = "main"):
        self.token_key = f"_security_{context}"

    def _token(self, attributes: dict):
        serialized = attributes.get(self.token_key)
        if serialized is None:
            raise KeyError(f"{self.token_key} absent")
        if not isinstance(serialized, str):
            raise KeyError(f"{self.token_key} is not a serialized token")
        return php.unserialize(serialized.encode("utf-8", "surrogateescape"))

    def _attributes(self, variables: dict) -> dict:
        attributes = variables.get(ATTRIBUTES)
        if not isinstance(attributes, dict):
            raise KeyError(f"{ATTRIBUTES} absent")
        return attributes

    def scope(self, variables: dict) -> tuple[object, dict]:
        attributes = self._attributes(variables)
        data = innermost_data(self._token(attributes))
        if data[1] is not True:
            raise KeyError("the token is not authenticated")
        return data[0], attributes

    def shown(self, variables: dict) -> dict:
        """The session with the token string replaced by the decoded token."""
        attributes = variables.get(ATTRIBUTES)
        if not isinstance(attributes, dict) or self.token_key not in attributes:
            return variables
        try:
            token = self._token(attributes)
        except (KeyError, php.SessionDecodeError):
            return variables
        return {**variables, ATTRIBUTES: {**attributes, self.token_key: token}}
