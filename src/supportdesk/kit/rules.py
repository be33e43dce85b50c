"""The business rules of the running app, as a dependency.

The dependencies are ``async def`` although they wait for nothing: FastAPI runs a plain
``def`` dependency in a worker thread, a hop that costs more than the lookup.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from supportdesk.config import BusinessRules, Settings


async def get_rules(request: Request) -> BusinessRules:
    rules: BusinessRules = request.app.state.rules
    return rules


RulesDep = Annotated[BusinessRules, Depends(get_rules)]


async def get_settings_of_app(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


SettingsDep = Annotated[Settings, Depends(get_settings_of_app)]
