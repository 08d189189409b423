"""Email Routing: a zone's rules and its catch-all, with the rules Email Routing enforces."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from tgk_deploy.emulator import bodies
from tgk_deploy.emulator.context import DEFAULT_ZONE_ID, Shared
from tgk_deploy.emulator.wire import (
    ApiError,
    Code,
    JsonDict,
    Page,
    Request,
    Response,
    envelope,
    json_body,
    page_envelope,
    paginate,
    router,
    validate,
)


@dataclass
class EmailRule:
    id: str
    name: str
    enabled: bool
    matchers: list[JsonDict]
    actions: list[JsonDict]
    priority: float = 0

    def to_api(self) -> JsonDict:
        return {
            "id": self.id,
            "tag": self.id,
            "name": self.name,
            "enabled": self.enabled,
            "matchers": [dict(m) for m in self.matchers],
            "actions": [dict(a) for a in self.actions],
            "priority": self.priority,
        }


class EmailRouting:
    """The routing rules and catch-all of every zone."""

    def __init__(self, shared: Shared) -> None:
        self._shared = shared
        self.email_rules: dict[str, dict[str, EmailRule]] = {}
        self.catch_alls: dict[str, EmailRule] = {}

    def _rules(self, zone_id: str) -> dict[str, EmailRule]:
        return self.email_rules.setdefault(zone_id, {})

    def list_rules(
        self, zone_id: str, *, page: int = 1, per_page: int = 20, enabled: bool | None = None
    ) -> Page:
        if page < 1 or not 5 <= per_page <= 50:
            raise ApiError(400, Code.EMAIL_VALIDATION, "page must be >= 1 and per_page 5..50")
        with self._shared.lock:
            rules = [r for r in self._rules(zone_id).values() if enabled in (None, r.enabled)]
            rules.sort(key=lambda r: r.priority)
            return paginate([r.to_api() for r in rules], page, per_page)

    def create_rule(self, zone_id: str, body: bodies.RuleBody) -> JsonDict:
        with self._shared.lock:
            _check_rule(body.matchers, body.actions, catch_all=False)
            rule = EmailRule(
                id=self._shared.hex32(),
                name=body.name,
                enabled=body.enabled,
                matchers=[_matcher_dict(m) for m in body.matchers],
                actions=[_action_dict(a) for a in body.actions],
                priority=body.priority,
            )
            self._rules(zone_id)[rule.id] = rule
            return rule.to_api()

    def _rule(self, zone_id: str, rule_id: str) -> EmailRule:
        rule = self._rules(zone_id).get(rule_id)
        if rule is None:
            raise ApiError(404, Code.EMAIL_NOT_FOUND, f"routing rule {rule_id} not found")
        return rule

    def get_rule(self, zone_id: str, rule_id: str) -> JsonDict:
        with self._shared.lock:
            return self._rule(zone_id, rule_id).to_api()

    def update_rule(self, zone_id: str, rule_id: str, body: bodies.RuleBody) -> JsonDict:
        """PUT replaces the whole rule: what is not sent takes its default."""
        with self._shared.lock:
            rule = self._rule(zone_id, rule_id)
            _check_rule(body.matchers, body.actions, catch_all=False)
            rule.name = body.name
            rule.enabled = body.enabled
            rule.priority = body.priority
            rule.matchers = [_matcher_dict(m) for m in body.matchers]
            rule.actions = [_action_dict(a) for a in body.actions]
            return rule.to_api()

    def delete_rule(self, zone_id: str, rule_id: str) -> JsonDict:
        with self._shared.lock:
            rule = self._rule(zone_id, rule_id)
            del self._rules(zone_id)[rule_id]
            return rule.to_api()

    def _catch_all(self, zone_id: str) -> EmailRule:
        if zone_id not in self.catch_alls:
            self.catch_alls[zone_id] = EmailRule(
                id=self._shared.hex32(),
                name="",
                enabled=False,
                matchers=[{"type": "all"}],
                actions=[{"type": "drop"}],
            )
        return self.catch_alls[zone_id]

    def get_catch_all(self, zone_id: str) -> JsonDict:
        with self._shared.lock:
            return _catch_all_api(self._catch_all(zone_id))

    def update_catch_all(self, zone_id: str, body: bodies.CatchAllBody) -> JsonDict:
        with self._shared.lock:
            _check_rule(body.matchers, body.actions, catch_all=True)
            rule = self._catch_all(zone_id)
            rule.name = body.name
            rule.enabled = body.enabled
            rule.matchers = [_matcher_dict(m) for m in body.matchers]
            rule.actions = [_action_dict(a) for a in body.actions]
            return _catch_all_api(rule)

    def seed_email_rule(
        self,
        name: str,
        *,
        zone_id: str = DEFAULT_ZONE_ID,
        enabled: bool = True,
        to: str = "alerts@tgk.invalid",
        worker: str | None = None,
        forward_to: str | None = None,
        priority: float = 0,
    ) -> EmailRule:
        """A literal ``to`` rule sending to a Worker, or forwarding (the legacy router)."""
        if worker is not None:
            action = {"type": "worker", "value": [worker]}
        else:
            action = {"type": "forward", "value": [forward_to or "legacy-router@tgk.invalid"]}
        body = bodies.RuleBody.model_validate(
            {
                "name": name,
                "enabled": enabled,
                "priority": priority,
                "matchers": [{"type": "literal", "field": "to", "value": to}],
                "actions": [action],
            }
        )
        with self._shared.lock:
            rule_id = self.create_rule(zone_id, body)["id"]
            return self._rules(zone_id)[rule_id]


# --- helpers of the rules above ----------------------------------------------------------------


_ADDRESS = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_SCRIPT_NAME = re.compile(r"^[a-z0-9_][a-z0-9-_]*$")


def _matcher_dict(matcher: bodies.RuleMatcher) -> JsonDict:
    return matcher.model_dump(exclude_none=True)


def _action_dict(action: bodies.RuleAction) -> JsonDict:
    data = action.model_dump(exclude_none=True)
    if action.type == "drop":
        data.pop("value", None)
    return data


def _check_rule(
    matchers: Sequence[bodies.RuleMatcher], actions: Sequence[bodies.RuleAction], *, catch_all: bool
) -> None:
    """Email routing's own rules on matchers and actions (beyond the JSON shape)."""

    def refuse(message: str) -> ApiError:
        return ApiError(400, Code.EMAIL_VALIDATION, f"Invalid Input: {message}")

    for matcher in matchers:
        if catch_all:
            if matcher.type != "all" or matcher.field or matcher.value:
                raise refuse('a catch-all rule has exactly one matcher: {"type": "all"}')
        elif matcher.type != "literal":
            raise refuse("matcher type 'all' is only valid on the catch-all rule")
        elif matcher.field != "to" or not matcher.value or not _ADDRESS.match(matcher.value):
            raise refuse("a literal matcher needs field 'to' and an email address as value")
    if catch_all and len(matchers) != 1:
        raise refuse("a catch-all rule has exactly one matcher")
    if len(actions) != 1:
        raise refuse("a routing rule has exactly one action")
    for action in actions:
        values = action.value or []
        if action.type == "drop":
            if values:
                raise refuse("actions: (0: (value: drop action cannot have values.).)")
        elif not values:
            raise refuse(f"a {action.type} action needs a value")
        elif action.type == "worker" and not all(_SCRIPT_NAME.match(v) for v in values):
            raise refuse("a worker action's value is a Worker script name")
        elif action.type == "forward" and not all(_ADDRESS.match(v) for v in values):
            raise refuse("a forward action's value is a list of email addresses")


def _catch_all_api(rule: EmailRule) -> JsonDict:
    data = rule.to_api()
    data.pop("priority")
    return data


# --- HTTP --------------------------------------------------------------------------------------

route = router("email_routing")
ZONE_RULES = "/zones/{zone_identifier}/email/routing/rules"


def _enabled_filter(request: Request) -> bool | None:
    raw = request.param("enabled")
    if raw is None:
        return None
    if raw.lower() not in ("true", "false"):
        raise ApiError(400, Code.EMAIL_VALIDATION, "enabled must be true or false")
    return raw.lower() == "true"


def _rule_body(request: Request, model: type[bodies.RuleBody] | type[bodies.CatchAllBody]):
    return validate(model, json_body(request, Code.EMAIL_VALIDATION), Code.EMAIL_VALIDATION)


@route("GET", ZONE_RULES)
def _list_rules(routing: EmailRouting, request: Request, params: dict[str, str]) -> Response:
    page = routing.list_rules(
        params["zone_identifier"],
        page=request.int_param("page", 1),
        per_page=request.int_param("per_page", 20),
        enabled=_enabled_filter(request),
    )
    return page_envelope(page)


@route("POST", ZONE_RULES)
def _create_rule(routing: EmailRouting, request: Request, params: dict[str, str]) -> Response:
    body = _rule_body(request, bodies.RuleBody)
    return envelope(routing.create_rule(params["zone_identifier"], body))


@route("GET", ZONE_RULES + "/catch_all")
def _get_catch_all(routing: EmailRouting, request: Request, params: dict[str, str]) -> Response:
    return envelope(routing.get_catch_all(params["zone_identifier"]))


@route("PUT", ZONE_RULES + "/catch_all")
def _put_catch_all(routing: EmailRouting, request: Request, params: dict[str, str]) -> Response:
    body = _rule_body(request, bodies.CatchAllBody)
    return envelope(routing.update_catch_all(params["zone_identifier"], body))


@route("GET", ZONE_RULES + "/{rule_identifier}")
def _get_rule(routing: EmailRouting, request: Request, params: dict[str, str]) -> Response:
    return envelope(routing.get_rule(params["zone_identifier"], params["rule_identifier"]))


@route("PUT", ZONE_RULES + "/{rule_identifier}")
def _put_rule(routing: EmailRouting, request: Request, params: dict[str, str]) -> Response:
    body = _rule_body(request, bodies.RuleBody)
    return envelope(routing.update_rule(params["zone_identifier"], params["rule_identifier"], body))


@route("DELETE", ZONE_RULES + "/{rule_identifier}")
def _delete_rule(routing: EmailRouting, request: Request, params: dict[str, str]) -> Response:
    return envelope(routing.delete_rule(params["zone_identifier"], params["rule_identifier"]))
