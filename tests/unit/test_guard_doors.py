"""The request guard knows every keyed route: each operation the OpenAPI document marks
as taking the bearer key is one the guard authenticates (and authorizes) before the
route runs or its body is read."""

from __future__ import annotations

from supportdesk.config import Settings
from supportdesk.kit.guard import route_doors
from supportdesk.main import create_app


class TestDoors:
    def test_every_operation_with_the_bearer_scheme_is_a_keyed_door(self) -> None:
        app = create_app(Settings(database_url="sqlite+aiosqlite:///unused.db"))
        doors = route_doors(app.router.routes)
        keyed: list[tuple[str, str]] = []
        for path, operations in app.openapi()["paths"].items():
            for method, operation in operations.items():
                if not operation.get("security"):
                    continue
                concrete = path.replace("{", "x").replace("}", "")
                door = next(d for d in doors[method.upper()] if d.path.match(concrete) is not None)
                assert door.keyed, (method, path)
                assert door.permissions, (method, path)
                keyed.append((method, path))
        assert len(keyed) > 40
