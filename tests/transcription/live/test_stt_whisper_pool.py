"""The offline engine's decoder pool (scheduling, restarts), with a stand-in decoder process."""

from __future__ import annotations

import sys
import threading
import time
from pathlib import Path

import pytest

from transcription.live.stt.whisper_pool import DecoderPool, Job, PoolError

# Answers each job after 0.2 s with the job's "tag" as its text; "crash" in a tag kills it.
ECHO_DECODER = """
import json, sys, time
print(json.dumps({"ready": True, "multilingual": False}), flush=True)
for line in sys.stdin.buffer:
    request = json.loads(line)
    sys.stdin.buffer.read(request["bytes"])
    if "crash" in request["tag"]:
        sys.exit(9)
    time.sleep(0.2)
    print(json.dumps({"id": request["id"], "text": request["tag"]}), flush=True)
"""


class Answers:
    def __init__(self) -> None:
        self.items: list[dict] = []
        self.done = threading.Event()
        self.expected = 0

    def __call__(self, job: Job, answer: dict) -> None:
        self.items.append(answer)
        if len(self.items) >= self.expected:
            self.done.set()

    def wait(self, count: int) -> list[dict]:
        self.expected = count
        if len(self.items) < count:
            assert self.done.wait(10), self.items
        return self.items


@pytest.fixture
def pool(tmp_path: Path):
    pool = DecoderPool(model_dir=str(tmp_path), argv=[sys.executable, "-c", ECHO_DECODER])
    pool.start()
    yield pool
    pool.close()


def job(tag: str, priority: int, answers: Answers) -> Job:
    return Job(pcm=b"\x00\x00" * 160, options={"tag": tag}, priority=priority, on_done=answers)


def test_finals_jump_the_queue_and_withdrawn_jobs_never_run(pool: DecoderPool) -> None:
    answers = Answers()
    pool.submit(job("running", 2, answers))
    time.sleep(0.05)  # the decoder has taken it
    assert not pool.idle
    partial = pool.submit(job("partial", 2, answers))
    pool.submit(job("final-a", 0, answers))
    withdrawn = pool.submit(job("withdrawn", 1, answers))
    pool.submit(job("final-b", 0, answers))
    assert pool.cancel(withdrawn)
    texts = [a["text"] for a in answers.wait(4)]
    assert texts == ["running", "final-a", "final-b", "partial"]
    assert not pool.cancel(partial), "a job that ran cannot be withdrawn"
    time.sleep(0.05)
    assert pool.idle


def test_a_crashed_decoder_is_restarted_and_its_job_fails_after_two_tries(
    pool: DecoderPool,
) -> None:
    answers = Answers()
    first_pid = pool.pids[0]
    pool.submit(job("crash", 0, answers))
    pool.submit(job("after", 0, answers))
    crashed, after = answers.wait(2)
    assert "error" in crashed
    assert after["text"] == "after", "the next job runs on a fresh decoder"
    assert pool.restarts == 2 and pool.pids[0] != first_pid


def test_a_decoder_that_cannot_start_is_a_pool_error(tmp_path: Path) -> None:
    failing = DecoderPool(
        model_dir=str(tmp_path), argv=[sys.executable, "-c", "import sys; sys.exit('no model')"]
    )
    with pytest.raises(PoolError, match="no model"):
        failing.start()
    failing.close()
