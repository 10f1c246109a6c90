"""The contract every sandbox backend honours: statuses, limits, outputs, files, environment, compatibility.

The local backend always runs; the Modal backend runs only with Modal credentials (skipped with the reason).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator

import pytest

from sandboxes import (
    ExecutionResult,
    Limits,
    LocalSandbox,
    ModalSandbox,
    RunRequest,
    Sandbox,
    Status,
    modal_credentials_present,
)

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the local sandbox needs Linux")

BACKENDS = [
    pytest.param("local", id="local"),
    pytest.param(
        "modal",
        id="modal",
        marks=[
            pytest.mark.modal,
            pytest.mark.skipif(
                not modal_credentials_present(),
                reason="no Modal credentials (MODAL_TOKEN_ID/MODAL_TOKEN_SECRET or ~/.modal.toml)",
            ),
        ],
    ),
]

QUICK = Limits(cpu_seconds=2, wall_seconds=20)


@pytest.fixture(scope="module", params=BACKENDS)
def sandbox(request: pytest.FixtureRequest) -> Iterator[Sandbox]:
    backend: Sandbox = LocalSandbox() if request.param == "local" else ModalSandbox()
    with backend:
        yield backend


def run(sandbox: Sandbox, program: str, limits: Limits = QUICK, **kwargs: object) -> ExecutionResult:
    return sandbox.run(program, limits=limits, **kwargs)  # type: ignore[arg-type]


def test_passing_program_reports_output(sandbox: Sandbox) -> None:
    result = run(sandbox, "import sys\nprint('hello')\nprint('warn', file=sys.stderr)")
    assert result.status is Status.PASSED and result.passed
    assert result.exit_code == 0
    assert result.stdout == "hello\n"
    assert "warn" in result.stderr
    assert result.wall_seconds > 0
    assert result.sandbox == sandbox.version


def test_failing_assertion_is_failed(sandbox: Sandbox) -> None:
    result = run(sandbox, "assert 1 + 1 == 3, 'wrong sum'")
    assert result.status is Status.FAILED
    assert result.exit_code == 1
    assert "AssertionError: wrong sum" in result.stderr


def test_syntax_error_and_exit_code(sandbox: Sandbox) -> None:
    assert run(sandbox, "def broken(:\n    pass").status is Status.FAILED
    result = run(sandbox, "import sys; sys.exit(3)")
    assert (result.status, result.exit_code) == (Status.FAILED, 3)


def test_cpu_loop_times_out_on_cpu_time(sandbox: Sandbox) -> None:
    result = run(sandbox, "while True:\n    pass", Limits(cpu_seconds=1, wall_seconds=30))
    assert result.status is Status.TIMEOUT, result
    assert result.cpu_seconds >= 0.8
    assert result.wall_seconds < 30


def test_sleeping_program_hits_wall_clock_backstop(sandbox: Sandbox) -> None:
    result = run(sandbox, "import time\ntime.sleep(60)", Limits(cpu_seconds=5, wall_seconds=1.5))
    assert result.status is Status.TIMEOUT
    assert "wall-clock" in result.detail
    assert result.wall_seconds < 15


def test_large_allocation_is_memory(sandbox: Sandbox) -> None:
    result = run(sandbox, "block = bytearray(2 * 1024**3)\nprint(len(block))")
    assert result.status is Status.MEMORY, result
    assert result.stdout == ""


def test_output_is_truncated_head_and_tail(sandbox: Sandbox) -> None:
    limits = Limits(cpu_seconds=5, max_output_bytes=4096)
    result = run(sandbox, "print('START')\nprint('x' * 1_000_000)\nprint('END')", limits)
    assert result.status is Status.PASSED
    assert result.stdout_truncated and not result.stderr_truncated
    assert result.stdout.startswith("START") and result.stdout.rstrip().endswith("END")
    assert len(result.stdout) < 4096 + 200


def test_files_stdin_and_work_dir(sandbox: Sandbox) -> None:
    program = (
        "import os, sys\n"
        "print(open('data/input.txt').read(), sys.stdin.read())\n"
        "open('out.txt', 'w').write('written')\n"
        "print(open('out.txt').read(), os.getcwd())\n"
    )
    result = run(sandbox, program, files={"data/input.txt": "from-file"}, stdin=b"from-stdin")
    assert result.status is Status.PASSED, result
    assert result.stdout.splitlines() == ["from-file from-stdin", "written /sandbox"]


def test_files_are_importable(sandbox: Sandbox) -> None:
    result = run(sandbox, "import helper\nprint(helper.VALUE)", files={"helper.py": b"VALUE = 41 + 1\n"})
    assert result.stdout.strip() == "42"


@pytest.mark.parametrize("name", ["/etc/passwd", "../escape.py", "a/../../b", "", "main.py", "x\0y"])
def test_unsafe_file_names_are_refused(sandbox: Sandbox, name: str) -> None:
    with pytest.raises(ValueError):
        sandbox.run("pass", files={name: "x"})


def test_environment_is_cleared(sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EVALGATE_HOST_SECRET", "host-secret-4af1c2")
    result = run(sandbox, "import os\nprint(sorted(os.environ))\nprint(open('/proc/self/environ').read())")
    assert result.status is Status.PASSED
    assert "host-secret-4af1c2" not in result.stdout
    assert "EVALGATE_HOST_SECRET" not in result.stdout
    assert "PYTHONHASHSEED" in result.stdout


def test_hash_seed_is_fixed_for_reproducibility(sandbox: Sandbox) -> None:
    program = "print(hash('evalgate'), list({'a', 'b', 'c', 'd', 'e'}))"
    first, second = run(sandbox, program), run(sandbox, program)
    assert first.stdout == second.stdout


def test_runs_do_not_share_state(sandbox: Sandbox) -> None:
    run(sandbox, "open('/tmp/left-behind', 'w').write('x')\nopen('left-behind', 'w').write('x')")
    result = run(
        sandbox, "import os\nprint(os.path.exists('/tmp/left-behind'), os.path.exists('left-behind'))"
    )
    assert result.stdout.strip() == "False False"


COMPATIBILITY = {
    "threads": (
        "import threading\nout = []\n"
        "threads = [threading.Thread(target=lambda i=i: out.append(i * i)) for i in range(8)]\n"
        "[t.start() for t in threads]\n[t.join() for t in threads]\n"
        "assert sorted(out) == [i * i for i in range(8)]\nprint('ok')\n"
    ),
    "multiprocessing_pool": (
        "import multiprocessing\n"
        "def square(x):\n    return x * x\n"
        "if __name__ == '__main__':\n"
        "    with multiprocessing.Pool(4) as pool:\n"
        "        assert pool.map(square, range(20)) == [x * x for x in range(20)]\n"
        "    print('ok')\n"
    ),
    "multiprocessing_spawn": (
        "import multiprocessing\n"
        "def square(x):\n    return x * x\n"
        "if __name__ == '__main__':\n"
        "    with multiprocessing.get_context('spawn').Pool(2) as pool:\n"
        "        assert pool.map(square, range(5)) == [0, 1, 4, 9, 16]\n"
        "    print('ok')\n"
    ),
    "shared_memory": (
        "from multiprocessing import Queue, shared_memory\n"
        "block = shared_memory.SharedMemory(create=True, size=1 << 20)\n"
        "block.buf[0] = 7\nassert block.buf[0] == 7\nblock.close()\nblock.unlink()\n"
        "queue = Queue()\nqueue.put('x')\nassert queue.get(timeout=5) == 'x'\n"
        "print('ok')\n"
    ),
    "tempfile": (
        "import os, tempfile\n"
        "with tempfile.TemporaryDirectory() as d:\n"
        "    open(os.path.join(d, 'f'), 'w').write('x')\n"
        "with tempfile.NamedTemporaryFile() as f:\n    f.write(b'x')\n"
        "print('ok')\n"
    ),
    "subprocess": (
        "import subprocess, sys\n"
        "out = subprocess.run([sys.executable, '-c', 'print(6 * 7)'], capture_output=True, text=True).stdout\n"
        "assert out.strip() == '42', out\n"
        "assert subprocess.run('echo hi | tr a-z A-Z', shell=True, capture_output=True, text=True).stdout == 'HI\\n'\n"
        "print('ok')\n"
    ),
}


@pytest.mark.parametrize("name", sorted(COMPATIBILITY))
def test_compatibility(sandbox: Sandbox, name: str) -> None:
    result = run(sandbox, COMPATIBILITY[name], Limits(cpu_seconds=5, wall_seconds=30))
    assert result.status is Status.PASSED, (result.stderr, result.detail)
    assert result.stdout.strip().endswith("ok")


def test_result_round_trips_through_dict(sandbox: Sandbox) -> None:
    result = run(sandbox, "print(1)")
    assert ExecutionResult.from_dict(result.to_dict()) == result


def test_run_request_matches_run(sandbox: Sandbox) -> None:
    result = sandbox.run_request(RunRequest("print('via request')", limits=QUICK))
    assert result.stdout == "via request\n"


def test_limits_validation() -> None:
    with pytest.raises(ValueError):
        Limits(cpu_seconds=0)
    with pytest.raises(ValueError):
        Limits(memory_mb=8)
    assert Limits(cpu_seconds=10).wall_backstop == 35.0
    assert Limits(cpu_seconds=1.2).cpu_rlimit == 2
    assert Limits.from_dict(Limits().cache_key()) == Limits(wall_seconds=35.0)


def test_modal_without_credentials_refuses_clearly(
    monkeypatch: pytest.MonkeyPatch, tmp_path: os.PathLike[str]
) -> None:
    from sandboxes import IsolationUnavailableError

    monkeypatch.delenv("MODAL_TOKEN_ID", raising=False)
    monkeypatch.delenv("MODAL_TOKEN_SECRET", raising=False)
    monkeypatch.setenv("MODAL_CONFIG_PATH", os.path.join(tmp_path, "missing.toml"))
    with pytest.raises(IsolationUnavailableError, match="Modal credentials"):
        ModalSandbox().open()
