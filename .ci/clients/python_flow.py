"""One customer flow through a client that openapi-python-client generated
from the served document: sign in, list the schedules, read one, read the
regularization offers of the unpaid one.

    python_flow.py BASE_URL SPEC_JSON CLIENT_DIR

CLIENT_DIR is the generated package (`--meta none`) or a project holding
it. Operations are found by method and path, the way an
integrator reads the document, so the flow does not depend on how the
generator names modules; it calls only the generated functions and models.
"""

import importlib
import json
import re
import sys
import typing
from pathlib import Path

ORG = "fractio"
EMAIL = "sophie.laurent@example.com"
PASSWORD = "Sophie-Demo-2026!"
UNPAID = "FR-10398"


def fail(message: str) -> typing.NoReturn:
    print(f"python client flow: {message}", file=sys.stderr)
    sys.exit(1)


def package_of(client_dir: Path) -> tuple[Path, str]:
    """The directory to import from, and the generated package's name."""
    if (client_dir / "client.py").exists():
        return client_dir.parent, client_dir.name
    found = [p.parent for p in client_dir.glob("*/client.py")]
    if len(found) != 1:
        fail(f"expected one generated package in {client_dir}, found {found}")
    return client_dir, found[0].name


def modules_for(package: str, root: Path, method: str, path: str) -> list[Path]:
    """The generated modules whose request is `method path`."""
    wanted = re.sub(r"\{[^}]*\}", "{}", path)
    hits = []
    for source in sorted((root / package / "api").rglob("*.py")):
        text = source.read_text()
        if f'"method": "{method.lower()}"' not in text:
            continue
        for url in re.findall(r'"url":\s*f?"([^"]*)"', text):
            if re.sub(r"\{[^}]*\}", "{}", url) == wanted:
                hits.append(source)
    return hits


def operation(package: str, root: Path, method: str, path: str):
    """The generated module whose request is `method path`."""
    hits = modules_for(package, root, method, path)
    if len(hits) != 1:
        fail(f"{method} {path}: expected one generated operation, found {hits}")
    relative = hits[0].relative_to(root).with_suffix("")
    return importlib.import_module(".".join(relative.parts))


def call(module, expected: int, **kwargs):
    response = module.sync_detailed(**kwargs)
    if response.status_code != expected:
        fail(
            f"{module.__name__}: status {int(response.status_code)}, expected {expected}: "
            f"{response.content[:500]!r}"
        )
    if response.parsed is None:
        fail(f"{module.__name__}: the generated client parsed no body")
    return response.parsed


def main() -> None:
    base_url, _spec, client_dir = sys.argv[1], sys.argv[2], Path(sys.argv[3])
    client_dir, package = package_of(client_dir)
    sys.path.insert(0, str(client_dir))
    client_module = importlib.import_module(f"{package}.client")

    # The generator drops some operations silently (duplicate names, for
    # one): every operation of the document must have its own function.
    spec = json.loads(Path(_spec).read_text())
    methods = ("get", "put", "post", "delete", "patch")
    missing = [
        f"{method.upper()} {path}"
        for path, item in spec["paths"].items()
        for method in methods
        if method in item and len(modules_for(package, client_dir, method, path)) != 1
    ]
    if missing:
        fail(f"{len(missing)} operations have no generated function: {', '.join(missing)}")

    login = operation(package, client_dir, "POST", "/v1/auth/login")
    body_type = typing.get_type_hints(login.sync_detailed)["body"]
    anonymous = client_module.Client(base_url=base_url, raise_on_unexpected_status=True)
    tokens = call(
        login,
        200,
        client=anonymous,
        body=body_type.from_dict({"organization": ORG, "email": EMAIL, "password": PASSWORD}),
    )
    if tokens.token_type.lower() != "bearer" or not tokens.access_token:
        fail(f"no bearer token: {tokens}")

    customer = client_module.AuthenticatedClient(
        base_url=base_url, token=tokens.access_token, raise_on_unexpected_status=True
    )
    listing = call(operation(package, client_dir, "GET", "/v1/me/schedules"), 200, client=customer)
    if not listing.data:
        fail("the demo customer has no schedule")
    by_number = {s.order_number: s for s in listing.data}
    if UNPAID not in by_number:
        fail(f"no schedule {UNPAID} among {sorted(by_number)}")

    schedule = call(
        operation(package, client_dir, "GET", "/v1/me/schedules/{id}"),
        200,
        id=by_number[UNPAID].id,
        client=customer,
    )
    status = getattr(schedule.status, "value", schedule.status)
    if schedule.order_number != UNPAID or status != "unpaid":
        fail(f"read {schedule.order_number} with status {status!r}")

    offers = call(
        operation(package, client_dir, "GET", "/v1/me/schedules/{id}/regularization"),
        200,
        id=schedule.id,
        client=customer,
    )
    if not offers.offers:
        fail("no regularization offer for the unpaid schedule")
    print(
        f"python client flow: signed in, {len(listing.data)} schedules, read {schedule.order_number}, "
        f"{len(offers.offers)} regularization offers"
    )


if __name__ == "__main__":
    main()
