"""The business rules of the running app, as a dependency."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from supportdesk.config import BusinessRules


def get_rules(request: Request) -> BusinessRules:
    rules: BusinessRules = request.app.state.rules
    return rules


RulesDep = Annotated[BusinessRules, Depends(get_rules)]
