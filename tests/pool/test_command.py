"""Command tasks (perfgate.pool.command): argv templates, streamed output, exit status, timeouts, process groups."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from pool_helpers import Events, fast_config, gone, wait_until

from perfgate.config import TaskConfig
from perfgate.pool import JobSpec, Pool

COMMANDS = {
    "say": ("sh", "-c", 'echo "$1"; echo "to stderr" >&2', "sh", "{text}"),
    "exit": ("sh", "-c", 'exit "$1"', "sh", "{code}"),
    "signal": ("sh", "-c", 'kill -s "$1" $$', "sh", "{name}"),
    "stubborn": (
        "sh",
        "-c",
        "trap '' TERM; echo $$ > \"$1\"; while :; do sleep 0.05; done",
        "sh",
        "{pid_file}",
    ),
    "polite": ("sh", "-c", 'echo $$ > "$1"; exec sleep 600', "sh", "{pid_file}"),
    "background": ("sh", "-c", 'sleep 600 & echo $! > "$1"; echo started', "sh", "{pid_file}"),
    "missing": ("/nonexistent/perfgate-test-binary",),
}


@pytest.fixture
async def cmd_pool(events: Events) -> AsyncIterator[Pool]:
    tasks = {name: TaskConfig(name=name, command=argv) for name, argv in COMMANDS.items()}
    config = fast_config(min_workers=0, max_workers=2, kill_grace_s=0.3, max_log_line_bytes=100)
    async with Pool(config, tasks, max_log_lines=10, on_event=events) as pool:
        yield pool


async def test_args_fill_placeholders_as_one_argument(cmd_pool: Pool, events: Events) -> None:
    outcome = await cmd_pool.submit(
        JobSpec(id="s", task="say", args={"text": "two words; $(rm -rf /)"})
    ).wait()
    assert outcome.state == "succeeded"
    assert outcome.result is None
    logs = {(e["stream"], e["line"]) for e in events.of("s", "log")}
    assert logs == {("stdout", "two words; $(rm -rf /)"), ("stderr", "to stderr")}


async def test_non_zero_exit_fails_with_the_code(cmd_pool: Pool, events: Events) -> None:
    outcome = await cmd_pool.submit(JobSpec(id="e", task="exit", args={"code": 7})).wait()
    assert outcome.state == "failed"
    assert outcome.error == {
        "type": "CommandFailed",
        "kind": "exit",
        "exit_code": 7,
        "message": "exited with code 7",
    }
    assert events.of("e", "error")[0]["error"] == outcome.error


async def test_death_by_signal_is_reported(cmd_pool: Pool) -> None:
    outcome = await cmd_pool.submit(JobSpec(id="k", task="signal", args={"name": "SEGV"})).wait()
    assert outcome.state == "failed"
    assert outcome.error["signal"] == "SIGSEGV"


async def test_retries_apply_to_commands(cmd_pool: Pool, events: Events) -> None:
    spec = JobSpec(id="r", task="exit", args={"code": 1}, max_retries=2)
    outcome = await cmd_pool.submit(spec).wait()
    assert (outcome.state, outcome.attempts) == ("dead", 3)
    assert events.states("r").count("retrying") == 2


async def test_timeout_sigterm_then_sigkill_after_grace(cmd_pool: Pool, tmp_path: Path) -> None:
    pid_file = tmp_path / "pid"
    # The timeout must find the command running with SIGTERM ignored: the shim (a Python
    # start) and then sh must be up first, which takes well over 0.5 s on a loaded machine; with
    # less, the SIGTERM lands before the trap (or before the pid file is written) and the
    # SIGKILL path goes untested. Three seconds is what a loaded 2-core machine meets.
    spec = JobSpec(id="t", task="stubborn", args={"pid_file": str(pid_file)}, timeout_s=3.0)
    handle = cmd_pool.submit(spec)
    await wait_until(lambda: pid_file.exists() and pid_file.read_text().strip() != "")
    pid = int(pid_file.read_text())
    outcome = await handle.wait()
    assert outcome.state == "failed"
    assert outcome.error["kind"] == "timeout"
    assert "timed out after 3s" in outcome.error["message"]
    # SIGKILL is sent before the job finishes; the kernel completes it asynchronously.
    await wait_until(lambda: gone(pid), timeout_s=5)


async def test_cancel_a_running_command(cmd_pool: Pool, tmp_path: Path, events: Events) -> None:
    pid_file = tmp_path / "pid"
    handle = cmd_pool.submit(JobSpec(id="c", task="polite", args={"pid_file": str(pid_file)}))
    await wait_until(lambda: pid_file.exists() and pid_file.read_text().strip() != "")
    assert cmd_pool.cancel("c")
    outcome = await handle.wait()
    assert outcome.state == "cancelled"
    assert gone(int(pid_file.read_text()))
    assert events.states("c") == ["queued", "running", "cancelled"]


async def test_leftover_background_processes_are_swept(cmd_pool: Pool, tmp_path: Path) -> None:
    pid_file = tmp_path / "pid"
    spec = JobSpec(id="b", task="background", args={"pid_file": str(pid_file)})
    outcome = await cmd_pool.submit(spec).wait()
    assert outcome.state == "succeeded"
    # SIGKILL is sent before the job finishes; the kernel completes it asynchronously.
    await wait_until(lambda: gone(int(pid_file.read_text())), timeout_s=2)


async def test_missing_executable_is_exit_127(cmd_pool: Pool, events: Events) -> None:
    outcome = await cmd_pool.submit(JobSpec(id="m", task="missing")).wait()
    assert outcome.error["exit_code"] == 127
    assert "cannot run" in events.of("m", "log")[0]["line"]
