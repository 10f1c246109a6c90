"""The Modal backend's use of the Modal API, against a stand-in ``modal`` module (no network, no credentials).

The real service is exercised by the contract tests when credentials are present. Here we check what we ask
Modal for (no network, hard cpu/memory limits, timeouts), that ``terminate()`` always runs, and how exit codes
and the launcher's report become statuses. Nothing is executed: the stand-in returns canned reports.
"""

from __future__ import annotations

import json
import types
from collections.abc import Callable
from typing import Any, ClassVar

import pytest

from sandboxes import IsolationUnavailableError, Limits, ModalSandbox, Status


class _Stream:
    def __init__(self, text: str) -> None:
        self._text = text

    def read(self) -> str:
        return self._text


class _Process:
    def __init__(self, code: int, stdout: str, stderr: str = "") -> None:
        self.stdout, self.stderr, self._code = _Stream(stdout), _Stream(stderr), code

    def wait(self) -> int:
        return self._code


class _Filesystem:
    def __init__(self, owner: _FakeSandbox) -> None:
        self.owner = owner

    def make_directory(self, path: str, *, create_parents: bool = True) -> None:
        self.owner.dirs.append(path)

    def write_text(self, data: str, path: str) -> None:
        self.owner.files[path] = data.encode()

    def write_bytes(self, data: bytes, path: str) -> None:
        self.owner.files[path] = bytes(data)


class _FakeSandbox:
    created: ClassVar[list[_FakeSandbox]] = []
    behaviour: Callable[[_FakeSandbox, tuple[str, ...], dict[str, Any]], _Process] = staticmethod(
        lambda sb, args, kw: _Process(0, "")
    )

    def __init__(self, kwargs: dict[str, Any]) -> None:
        self.kwargs = kwargs
        self.files: dict[str, bytes] = {}
        self.dirs: list[str] = []
        self.exec_calls: list[tuple[tuple[str, ...], dict[str, Any]]] = []
        self.terminated = 0
        self.filesystem = _Filesystem(self)
        self.object_id = "sb-fake"

    @classmethod
    def create(cls, *args: str, **kwargs: Any) -> _FakeSandbox:
        sandbox = cls(kwargs)
        cls.created.append(sandbox)
        return sandbox

    def exec(self, *args: str, **kwargs: Any) -> _Process:
        self.exec_calls.append((args, kwargs))
        return type(self).behaviour(self, args, kwargs)

    def terminate(self) -> None:
        self.terminated += 1


@pytest.fixture
def fake_modal(monkeypatch: pytest.MonkeyPatch) -> type[_FakeSandbox]:
    _FakeSandbox.created = []
    module = types.ModuleType("modal")
    module.Sandbox = _FakeSandbox  # type: ignore[attr-defined]
    module.App = types.SimpleNamespace(lookup=lambda name, create_if_missing=False: f"app:{name}")  # type: ignore[attr-defined]
    module.Image = types.SimpleNamespace(debian_slim=lambda python_version=None: f"image:{python_version}")  # type: ignore[attr-defined]
    monkeypatch.setitem(__import__("sys").modules, "modal", module)
    monkeypatch.setenv("MODAL_TOKEN_ID", "fake-id")
    monkeypatch.setenv("MODAL_TOKEN_SECRET", "fake-secret")
    return _FakeSandbox


def _report(**overrides: Any) -> str:
    report = {
        "exit_code": 0,
        "timed_out": False,
        "cpu_seconds": 0.05,
        "stdout": "hi\n",
        "stderr": "",
        "stdout_truncated": False,
        "stderr_truncated": False,
    }
    report.update(overrides)
    return "launcher noise\n" + json.dumps(report) + "\n"


def test_requests_isolation_and_limits_and_always_terminates(fake_modal: type[_FakeSandbox]) -> None:
    fake_modal.behaviour = staticmethod(lambda sb, args, kw: _Process(0, _report()))
    limits = Limits(cpu_seconds=4, memory_mb=256)
    with ModalSandbox(cpu=1.0) as box:
        result = box.run("print('hi')", files={"pkg/data.txt": "x"}, limits=limits)
    assert result.status is Status.PASSED and result.stdout == "hi\n"
    assert result.sandbox == box.version == "modal/1+python3.11"
    (sandbox,) = fake_modal.created
    kwargs = sandbox.kwargs
    assert kwargs["block_network"] is True
    assert kwargs["cpu"] == (1.0, 1.0)
    assert kwargs["memory"][0] == kwargs["memory"][1] >= 256
    assert kwargs["timeout"] > limits.wall_backstop
    assert sandbox.files["/sandbox/main.py"] == b"print('hi')"
    assert sandbox.files["/sandbox/pkg/data.txt"] == b"x"
    ((args, exec_kwargs),) = sandbox.exec_calls
    assert exec_kwargs["timeout"] >= limits.wall_backstop
    spec = json.loads(args[-1])
    assert spec["limits"]["cpu_seconds"] == 4 and spec["limits"]["memory_mb"] == 256
    assert sandbox.terminated == 1


@pytest.mark.parametrize(
    ("code", "stdout", "status"),
    [
        (0, _report(exit_code=1, stderr="AssertionError\n"), Status.FAILED),
        (0, _report(exit_code=152, cpu_seconds=2.0), Status.TIMEOUT),
        (0, _report(timed_out=True, exit_code=137), Status.TIMEOUT),
        (0, _report(exit_code=1, stderr="Traceback...\nMemoryError\n"), Status.MEMORY),
        (0, _report(exit_code=139), Status.KILLED),
        (-1, "", Status.TIMEOUT),
        (137, "", Status.MEMORY),
        (1, "not json", Status.ERROR),
    ],
)
def test_exit_codes_and_reports_become_statuses(
    fake_modal: type[_FakeSandbox], code: int, stdout: str, status: Status
) -> None:
    fake_modal.behaviour = staticmethod(lambda sb, args, kw: _Process(code, stdout))
    with ModalSandbox() as box:
        result = box.run("pass", limits=Limits(cpu_seconds=2))
    assert result.status is status, result
    assert fake_modal.created[0].terminated == 1


def test_client_errors_are_error_results_and_still_terminate(fake_modal: type[_FakeSandbox]) -> None:
    def broken(sb: _FakeSandbox, args: tuple[str, ...], kw: dict[str, Any]) -> _Process:
        raise ConnectionError("stream reset")

    fake_modal.behaviour = staticmethod(broken)
    with ModalSandbox() as box:
        result = box.run("pass")
    assert result.status is Status.ERROR and "stream reset" in result.detail
    assert fake_modal.created[0].terminated == 1


def test_missing_modal_package_refuses_with_install_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(__import__("sys").modules, "modal", None)
    with pytest.raises(IsolationUnavailableError, match=r"pip install 'evalgate\[modal\]'"):
        ModalSandbox().open()
