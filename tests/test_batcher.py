"""The micro-batcher behind ``llmrec serve``: which prompts go into which scoring call, and who gets which scores.

A fake scorer (each prompt's score is a function of the prompt alone) stands in for the model, so every request's
answer can be checked against scoring it alone, whatever the calls it was split over.
"""

from __future__ import annotations

import asyncio
import random

import numpy as np
import pytest

from llmrec.serve.batcher import ADMISSIONS, MicroBatcher, ShuttingDown


def _recorder(delay: float = 0.0):
    calls: list[list[float]] = []

    def score(prompts):
        calls.append(list(prompts))
        if delay:
            import time

            time.sleep(delay)
        return np.asarray(prompts, dtype=float) * 2 + 1

    return score, calls


def test_request_admission_close_finishes_queued_work_and_refuses_new():
    calls = []

    def score(prompts):
        calls.append(len(prompts))
        return np.arange(len(prompts), dtype=float)

    async def scenario():
        b = MicroBatcher(score, max_batch_prompts=3, max_wait_s=0.05, admission="request")
        await b.start()
        jobs = [asyncio.create_task(b.submit([i, i])) for i in range(4)]
        await asyncio.sleep(0)  # queued, not yet scored
        await b.close()
        with pytest.raises(ShuttingDown):
            await b.submit([1])
        return [j.result().tolist() for j in jobs]

    results = asyncio.run(scenario())
    assert results == [[0.0, 1.0]] * 4  # each job alone: two prompts each, max 3 per batch
    assert calls == [2, 2, 2, 2]


@pytest.mark.parametrize("admission", ADMISSIONS)
def test_errors_reach_every_request_of_the_call(admission):
    def boom(prompts):
        raise RuntimeError("model failed")

    async def scenario():
        b = MicroBatcher(boom, max_batch_prompts=8, max_wait_s=0.01, admission=admission)
        await b.start()
        out = await asyncio.gather(b.submit([1]), b.submit([2]), return_exceptions=True)
        await b.close()
        return out, b.stats()

    out, stats = asyncio.run(scenario())
    assert all(isinstance(o, RuntimeError) for o in out) and stats["errors"] >= 1



@pytest.mark.parametrize("admission", ADMISSIONS)
def test_every_request_gets_its_own_scores_whatever_the_calls(admission):
    rng = random.Random(7)
    sizes = [rng.choice([1, 1, 2, 5, 13]) for _ in range(40)]
    score, calls = _recorder()

    async def scenario():
        b = MicroBatcher(score, max_batch_prompts=6, max_wait_s=0.002, admission=admission)
        await b.start()

        async def client(i, n):
            await asyncio.sleep(rng.random() * 0.02)
            return await b.submit([float(100 * i + j) for j in range(n)])

        out = await asyncio.gather(*(client(i, n) for i, n in enumerate(sizes)))
        await b.close()
        return out, b.stats()

    out, stats = asyncio.run(scenario())
    for i, (n, got) in enumerate(zip(sizes, out)):
        np.testing.assert_array_equal(got, np.arange(n, dtype=float) * 2 + 200 * i + 1)
    assert sorted(p for c in calls for p in c) == sorted(float(100 * i + j) for i, n in enumerate(sizes)
                                                         for j in range(n))  # each prompt scored once
    assert stats["requests"] == len(sizes) and stats["admission"] == admission
    if admission == "continuous":
        assert max(len(c) for c in calls) <= 6  # a call never exceeds the cap, even for a 13-prompt request
    else:
        assert max(len(c) for c in calls) == 13  # a request larger than the cap goes alone and whole


def test_continuous_admission_answers_a_short_request_before_a_long_earlier_one():
    score, calls = _recorder(delay=0.01)
    done: list[str] = []

    async def scenario():
        b = MicroBatcher(score, max_batch_prompts=4, max_wait_s=0.0)
        await b.start()

        async def ask(name, prompts, after=0.0):
            await asyncio.sleep(after)
            out = await b.submit(prompts)
            done.append(name)
            return out

        long, short = await asyncio.gather(ask("long", [float(i) for i in range(40)]),
                                           ask("short", [1000.0], after=0.015))
        await b.close()
        return long, short

    long, short = asyncio.run(scenario())
    assert done == ["short", "long"]  # it joined a call while the long request still had 30+ prompts left
    np.testing.assert_array_equal(short, [2001.0])
    np.testing.assert_array_equal(long, np.arange(40) * 2.0 + 1)
    with_short = next(i for i, c in enumerate(calls) if 1000.0 in c)
    assert 0 < with_short < len(calls) - 1 and all(len(c) <= 4 for c in calls)


def test_request_admission_makes_a_short_request_wait_for_the_whole_long_one():
    score, calls = _recorder(delay=0.01)
    done: list[str] = []

    async def scenario():
        b = MicroBatcher(score, max_batch_prompts=4, max_wait_s=0.0, admission="request")
        await b.start()

        async def ask(name, prompts, after=0.0):
            await asyncio.sleep(after)
            await b.submit(prompts)
            done.append(name)

        await asyncio.gather(ask("long", [float(i) for i in range(40)]), ask("short", [1000.0], after=0.015))
        await b.close()

    asyncio.run(scenario())
    assert done == ["long", "short"] and calls[-1] == [1000.0]


def test_continuous_close_finishes_partly_scored_requests():
    score, calls = _recorder()

    async def scenario():
        b = MicroBatcher(score, max_batch_prompts=3, max_wait_s=0.05)
        await b.start()
        jobs = [asyncio.create_task(b.submit([float(i), float(i + 10)])) for i in range(4)]
        await asyncio.sleep(0)
        await b.close()
        with pytest.raises(ShuttingDown):
            await b.submit([1.0])
        return [j.result().tolist() for j in jobs]

    assert asyncio.run(scenario()) == [[2 * i + 1.0, 2 * i + 21.0] for i in range(4)]
    assert [len(c) for c in calls] == [3, 3, 2]  # eight prompts in calls of at most three


def test_a_cancelled_request_gives_up_its_remaining_prompts():
    score, calls = _recorder(delay=0.01)

    async def scenario():
        b = MicroBatcher(score, max_batch_prompts=2, max_wait_s=0.0)
        await b.start()
        gone = asyncio.create_task(b.submit([float(i) for i in range(100)]))
        await asyncio.sleep(0.03)
        gone.cancel()  # the client went away after a few calls
        kept = await b.submit([500.0])
        await b.close()
        return kept

    np.testing.assert_array_equal(asyncio.run(scenario()), [1001.0])
    assert sum(len(c) for c in calls) < 20  # not all 100 prompts of the cancelled request were scored


def test_an_error_in_one_call_spares_later_requests():
    def flaky(prompts):
        if 13.0 in prompts:
            raise RuntimeError("model failed")
        return np.asarray(prompts, dtype=float)

    async def scenario():
        b = MicroBatcher(flaky, max_batch_prompts=8, max_wait_s=0.0)
        await b.start()
        bad = await asyncio.gather(b.submit([13.0]), return_exceptions=True)
        good = await b.submit([2.0, 3.0])
        await b.close()
        return bad[0], good, b.stats()

    bad, good, stats = asyncio.run(scenario())
    assert isinstance(bad, RuntimeError) and good.tolist() == [2.0, 3.0] and stats["errors"] == 1


def test_empty_request_and_bad_admission():
    async def scenario():
        b = MicroBatcher(lambda ps: np.zeros(len(ps)), max_wait_s=0.0)
        await b.start()
        out = await b.submit([])
        await b.close()
        return out

    assert asyncio.run(scenario()).shape == (0,)
    with pytest.raises(ValueError, match="admission must be one of"):
        MicroBatcher(lambda ps: ps, admission="fifo")
