"""The Modal backend without the Modal service: the install hint, and how the launcher's report becomes a
status. Its behaviour against real Modal Sandboxes is covered by the shared contract tests, which run when
Modal credentials are present and skip with the reason otherwise. (No stand-in for the `modal` library: it
is installed here, so faking it would only test the fake.)"""

import json

import pytest

from sandboxes import IsolationUnavailableError, Limits, ModalSandbox, Status


def test_missing_modal_package_refuses_with_install_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(__import__("sys").modules, "modal", None)
    with pytest.raises(IsolationUnavailableError, match=r"pip install 'evalgate\[modal\]'"):
        ModalSandbox().open()


def _report(**kw: object) -> str:
    base = {"stdout": "ok", "stderr": "", "stdout_truncated": False, "stderr_truncated": False,
            "cpu_seconds": 0.05, "timed_out": False, "exit_code": 0}  # fmt: skip
    return json.dumps(base | kw)


@pytest.mark.parametrize(
    ("code", "report", "status"),
    [
        (0, _report(), Status.PASSED),
        (0, _report(exit_code=1, stderr="AssertionError"), Status.FAILED),
        (0, _report(timed_out=True), Status.TIMEOUT),
        (-1, "", Status.TIMEOUT),
        (137, "", Status.MEMORY),
        (1, "not json", Status.ERROR),
    ],
)
def test_launcher_reports_become_statuses(code: int, report: str, status: Status) -> None:
    result = ModalSandbox()._to_result(code, report, "launcher stderr", Limits(), 0.5)
    assert result.status == status
    if status is Status.PASSED:
        assert result.stdout == "ok" and result.exit_code == 0
