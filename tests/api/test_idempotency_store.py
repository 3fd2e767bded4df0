import asyncio
from datetime import timedelta

import pytest

from api.idempotency import (
    RECLAIM_RUNNING_AFTER,
    Claim,
    abandon,
    claim,
    complete,
    request_fingerprint,
    validate_key,
)
from domain.errors import DomainError, ErrorCode
from domain.models import IdempotencyRecord
from domain.services.retention import prune_idempotency_records
from tests.support.assertions import refused
from tests.support.factories import make_account
from tests.support.principals import owner_principal

pytestmark = pytest.mark.anyio

KEY = "3f1c6f6e-5c7a-4c1e-9b8e-2f0d8e0b1a77"
INVITE = request_fingerprint(
    "mutation Invite($input: InviteUserInput!) { inviteUser(input: $input) { errors { code } } }",
    {"input": {"email": "new@example.com", "firstName": "New", "lastName": "Person"}},
    "Invite",
)
OTHER = request_fingerprint(
    "mutation { cancelScheduledSeatChange { errors { code } } }", None, None
)
BODY = '{"data":{"inviteUser":{"errors":[]}}}'


async def test_given_new_key_when_claimed_completed_and_claimed_again_then_replayed(owner, clock):
    first = await claim(actor=owner, key=KEY, fingerprint=INVITE, clock=clock)
    running = await IdempotencyRecord.get(id=first.record_id)
    await complete(claim=first, response_body=BODY, clock=clock)
    clock.advance(timedelta(hours=23))

    second = await claim(actor=owner, key=KEY, fingerprint=INVITE, clock=clock)

    assert (first.is_replay, first.replay_body) == (False, None)
    assert (running.completed_at, running.response_body) == (None, None)
    assert running.expires_at == running.created_at + timedelta(hours=24)
    assert running.principal == f"user:{owner.user_id}"
    assert second == Claim.replay(BODY)
    assert second.is_replay
    assert await IdempotencyRecord.all().count() == 1


async def test_given_completed_key_when_claimed_with_other_request_then_reused(owner, clock):
    first = await claim(actor=owner, key=KEY, fingerprint=INVITE, clock=clock)
    await complete(claim=first, response_body=BODY, clock=clock)

    await refused(
        claim(actor=owner, key=KEY, fingerprint=OTHER, clock=clock),
        ErrorCode.IDEMPOTENCY_KEY_REUSED,
    )


async def test_given_running_key_when_claimed_with_other_request_then_reused(owner, clock):
    await claim(actor=owner, key=KEY, fingerprint=INVITE, clock=clock)

    await refused(
        claim(actor=owner, key=KEY, fingerprint=OTHER, clock=clock),
        ErrorCode.IDEMPOTENCY_KEY_REUSED,
    )


async def test_given_running_key_when_claimed_again_then_in_use(owner, clock):
    await claim(actor=owner, key=KEY, fingerprint=INVITE, clock=clock)
    clock.advance(RECLAIM_RUNNING_AFTER - timedelta(seconds=1))

    await refused(
        claim(actor=owner, key=KEY, fingerprint=INVITE, clock=clock),
        ErrorCode.IDEMPOTENCY_KEY_IN_USE,
    )


async def test_given_concurrent_claims_when_gathered_then_exactly_one_is_fresh(owner, clock):
    results = await asyncio.gather(
        *(claim(actor=owner, key=KEY, fingerprint=INVITE, clock=clock) for _ in range(8)),
        return_exceptions=True,
    )

    fresh = [r for r in results if isinstance(r, Claim)]
    refusals = [r for r in results if isinstance(r, DomainError)]
    assert len(fresh) == 1
    assert not fresh[0].is_replay
    assert len(refusals) == 7
    assert {r.code for r in refusals} == {ErrorCode.IDEMPOTENCY_KEY_IN_USE}
    assert await IdempotencyRecord.all().count() == 1


async def test_given_expired_record_when_claimed_with_any_request_then_replaced(owner, clock):
    old = await claim(actor=owner, key=KEY, fingerprint=INVITE, clock=clock)
    await complete(claim=old, response_body=BODY, clock=clock)
    clock.advance(timedelta(hours=24))

    new = await claim(actor=owner, key=KEY, fingerprint=OTHER, clock=clock)

    assert not new.is_replay
    assert new.record_id != old.record_id
    record = await IdempotencyRecord.get()
    assert (record.id, record.request_hash, record.completed_at, record.created_at) == (
        new.record_id,
        OTHER,
        None,
        clock.now(),
    )


async def test_given_expired_record_when_concurrent_claims_then_exactly_one_replaces_it(
    owner, clock
):
    old = await claim(actor=owner, key=KEY, fingerprint=INVITE, clock=clock)
    await complete(claim=old, response_body=BODY, clock=clock)
    clock.advance(timedelta(hours=24))

    results = await asyncio.gather(
        *(claim(actor=owner, key=KEY, fingerprint=INVITE, clock=clock) for _ in range(8)),
        return_exceptions=True,
    )

    fresh = [r for r in results if isinstance(r, Claim)]
    assert len(fresh) == 1, results
    assert not fresh[0].is_replay
    assert {r.code for r in results if isinstance(r, DomainError)} == {
        ErrorCode.IDEMPOTENCY_KEY_IN_USE
    }
    assert await IdempotencyRecord.all().values_list("id", flat=True) == [fresh[0].record_id]


async def test_given_running_record_left_by_a_crash_when_claimed_after_reclaim_time_then_fresh(
    owner, clock
):
    crashed = await claim(actor=owner, key=KEY, fingerprint=INVITE, clock=clock)
    clock.advance(RECLAIM_RUNNING_AFTER)

    retry = await claim(actor=owner, key=KEY, fingerprint=INVITE, clock=clock)
    # The crashed request's late completion must not overwrite the new owner's row.
    await complete(claim=crashed, response_body='{"late":true}', clock=clock)
    await abandon(claim=crashed)

    assert not retry.is_replay
    assert retry.record_id != crashed.record_id
    record = await IdempotencyRecord.get()
    assert (record.id, record.completed_at, record.response_body) == (retry.record_id, None, None)


async def test_given_stale_running_record_when_claimed_with_other_request_then_reused(owner, clock):
    await claim(actor=owner, key=KEY, fingerprint=INVITE, clock=clock)
    clock.advance(RECLAIM_RUNNING_AFTER)

    await refused(
        claim(actor=owner, key=KEY, fingerprint=OTHER, clock=clock),
        ErrorCode.IDEMPOTENCY_KEY_REUSED,
    )


async def test_given_abandoned_claim_when_retried_then_fresh(owner, clock):
    crashed = await claim(actor=owner, key=KEY, fingerprint=INVITE, clock=clock)

    await abandon(claim=crashed)
    retry = await claim(actor=owner, key=KEY, fingerprint=INVITE, clock=clock)

    assert not retry.is_replay
    assert await IdempotencyRecord.all().count() == 1


async def test_given_replay_when_completed_or_abandoned_then_nothing_changes(owner, clock):
    first = await claim(actor=owner, key=KEY, fingerprint=INVITE, clock=clock)
    await complete(claim=first, response_body=BODY, clock=clock)
    replay = await claim(actor=owner, key=KEY, fingerprint=INVITE, clock=clock)

    await complete(claim=replay, response_body="{}", clock=clock)
    await abandon(claim=replay)

    record = await IdempotencyRecord.get()
    assert record.response_body == BODY


async def test_given_same_key_when_used_by_other_principals_then_each_has_its_own(
    account, owner, api_token_actor, clock
):
    other = await make_account(clock, email="other@example.com", name="Other")
    other_owner = owner_principal(other.account_id, other.owner_user_id)

    claims = [
        await claim(actor=actor, key=KEY, fingerprint=INVITE, clock=clock)
        for actor in (owner, api_token_actor, other_owner)
    ]

    assert [c.is_replay for c in claims] == [False, False, False]
    scopes = await IdempotencyRecord.all().order_by("id").values_list("principal", flat=True)
    assert scopes == [
        f"user:{owner.user_id}",
        f"token:{api_token_actor.token_id}",
        f"user:{other.owner_user_id}",
    ]


async def test_given_expired_and_live_records_when_pruned_then_only_expired_deleted(owner, clock):
    await claim(actor=owner, key="old", fingerprint=INVITE, clock=clock)
    clock.advance(timedelta(hours=1))
    live = await claim(actor=owner, key="new", fingerprint=INVITE, clock=clock)
    clock.advance(timedelta(hours=23))

    pruned = await prune_idempotency_records(clock=clock)

    assert pruned == 1
    assert await IdempotencyRecord.all().values_list("id", flat=True) == [live.record_id]


async def test_given_bad_key_when_claimed_then_invalid_input_and_nothing_stored(owner, clock):
    error = await refused(
        claim(actor=owner, key="", fingerprint=INVITE, clock=clock), ErrorCode.INVALID_INPUT
    )

    assert error.field is None
    assert await IdempotencyRecord.all().count() == 0


@pytest.mark.parametrize(
    ("key", "valid"),
    [
        ("a", True),
        ("x" * 255, True),
        (" ~!\"#$%&'()*+,-./0123456789:;<=>?@[\\]^_`{|}", True),
        ("", False),
        ("x" * 256, False),
        ("tab\there", False),
        ("new\nline", False),
        ("del\x7f", False),
        ("nul\x00", False),
        ("caf\u00e9", False),
        ("emoji\U0001f600", False),
    ],
)
def test_given_key_when_validated_then_only_printable_ascii_up_to_255_passes(key, valid):
    if valid:
        validate_key(key)
        return
    with pytest.raises(DomainError) as caught:
        validate_key(key)
    assert (caught.value.code, caught.value.field) == (ErrorCode.INVALID_INPUT, None)


def test_given_equivalent_requests_when_fingerprinted_then_equal_and_differences_count():
    query = "mutation M($a: Int, $b: Int) { x }"

    same = {
        request_fingerprint(query, {"a": 1, "b": 2}, "M"),
        request_fingerprint(query, {"b": 2, "a": 1}, "M"),
    }
    no_variables = {request_fingerprint(query, None, None), request_fingerprint(query, {}, None)}
    different = {
        request_fingerprint(query, {"a": 1, "b": 2}, "M"),
        request_fingerprint(query, {"a": 1, "b": 3}, "M"),
        request_fingerprint(query, {"a": 1, "b": 2}, None),
        request_fingerprint(query + " ", {"a": 1, "b": 2}, "M"),
    }

    assert len(same) == 1
    assert len(no_variables) == 1
    assert len(different) == 4
    assert all(len(f) == 64 for f in same | different)
