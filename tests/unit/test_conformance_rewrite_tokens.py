"""The conformance rule that makes objects.rewrite take several calls (``done: false`` and a rewriteToken), on
hand-built requests; the source's size comes from a stand-in for the emulator's objects.get."""

from __future__ import annotations

from localdev.conformance.exchange import Exchange
from localdev.conformance.rules import all_rules
from localdev.conformance.rules.storage_rewrite_tokens import RewriteTokens
from localdev.conformance.world import Clock, Upstream, World


class _Sizes(Upstream):
    """objects.get answered from a dict of sizes (no emulator)."""

    def __init__(self, sizes: dict[str, int]) -> None:
        super().__init__("http://127.0.0.1:9", "http://127.0.0.1:9")
        self.sizes = sizes

    def storage(self, method: str, path: str) -> tuple[int, dict]:
        name = path.rsplit("/o/", 1)[1].replace("%2F", "/")
        return (200, {"size": str(self.sizes[name])}) if name in self.sizes else (404, {})


def rewrite(token: str | None = None, source: str = "a%2Fx.csv", extra: str = "") -> Exchange:
    query = "ifGenerationMatch=0&ifSourceGenerationMatch=7" + (f"&rewriteToken={token}" if token else "") + extra
    return Exchange.parse(method="POST", target=f"/storage/v1/b/drop/o/{source}/rewriteTo/b/arch/o/c%2F{source}?{query}",
                          headers={}, body=b"{}")


def test_a_large_rewrite_takes_calls_until_done_and_the_last_is_forwarded_without_the_token():
    world, rule = World(clock=Clock(), upstream=_Sizes({"a/x.csv": 2500})), RewriteTokens()
    first = rule.before(rewrite(), world)
    assert first is not None and first.json["done"] is False and first.json["totalBytesRewritten"] == "1024"
    token = first.json["rewriteToken"]
    second = rule.before(rewrite(token), world)
    assert second is not None and second.json["totalBytesRewritten"] == "2048" and second.json["rewriteToken"] == token
    last = rewrite(token)
    assert rule.before(last, world) is None, "the completing call goes to the emulator, which copies"
    assert "rewriteToken" not in last.target and "ifGenerationMatch=0" in last.target
    assert rule.partial_answers == 2
    assert rule.before(rewrite(token), world).status == 400, "a finished token is not accepted again"


def test_small_objects_and_other_calls_are_forwarded_at_once():
    world, rule = World(clock=Clock(), upstream=_Sizes({"a/x.csv": 1024})), RewriteTokens()
    assert rule.before(rewrite(), world) is None
    assert rule.before(rewrite(extra="&maxBytesRewrittenPerCall=1048576"), world) is None
    get = Exchange.parse(method="GET", target="/storage/v1/b/drop/o/a%2Fx.csv", headers={}, body=b"")
    assert rule.before(get, world) is None


def test_max_bytes_per_call_sets_the_progress_and_a_token_of_another_object_is_refused():
    world, rule = World(clock=Clock(), upstream=_Sizes({"a/x.csv": 3000, "b.csv": 3000})), RewriteTokens()
    first = rule.before(rewrite(extra="&maxBytesRewrittenPerCall=2000"), world)
    assert first.json["totalBytesRewritten"] == "2000"
    refused = rule.before(rewrite(first.json["rewriteToken"], source="b.csv"), world)
    assert refused.status == 400 and refused.json["error"]["errors"][0]["reason"] == "invalid"
    assert rule.before(rewrite("never-issued"), world).status == 400


def test_the_rule_sees_rewrites_after_the_generation_preconditions():
    names = [r.name for r in all_rules()]
    assert names.index("storage_generation_preconditions") < names.index("storage_rewrite_tokens")
