"""``evalgate ui``'s process handling on small process trees: what ignores the polite signal, and what has been
orphaned (re-parented to init) before the stop, is still killed; nothing on ``PATH`` is needed."""

import os
import signal
import sys
import textwrap
import time
from pathlib import Path

import psutil

from eval_assets.ui_process import ProcessTree, child_environment, dagster_dev_argv

#: A leader that ignores SIGINT, with a child that ignores SIGINT too and a grandchild that is orphaned at once
#: (its parent exits): the grandchild's pid goes to a file so the test can check it without the tree.
TREE = textwrap.dedent(
    """
    import os, signal, subprocess, sys, time
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    subprocess.Popen([sys.executable, "-c", "import signal, time; signal.signal(signal.SIGINT, signal.SIG_IGN); time.sleep(600)"])
    orphaner = subprocess.Popen([sys.executable, "-c", "import subprocess, sys; p = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(600)']); open(sys.argv[1], 'w').write(str(p.pid))", sys.argv[1]])
    orphaner.wait()
    time.sleep(600)
    """
)


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def test_stop_kills_what_ignores_sigint_and_what_was_orphaned(tmp_path: Path) -> None:
    marker = tmp_path / "orphan.pid"
    tree = ProcessTree([sys.executable, "-c", TREE, str(marker)], env=dict(os.environ))
    deadline = time.monotonic() + 30
    while not (marker.is_file() and marker.read_text()) and time.monotonic() < deadline:
        time.sleep(0.1)
    orphan = int(marker.read_text())
    assert psutil.Process(orphan).ppid() != tree.process.pid, "the grandchild is orphaned, outside the tree"
    tree.track()
    pids = [p.pid for p in tree.alive()]
    assert len(pids) >= 2 and tree.process.pid in pids
    started = time.monotonic()
    tree.stop(grace_s=1.0)
    assert time.monotonic() - started < 10
    assert not any(_alive(pid) for pid in pids)
    # the group's SIGKILL is delivered asynchronously: on a loaded machine the orphan can take a moment to go
    gone_by = time.monotonic() + 5
    while _alive(orphan) and time.monotonic() < gone_by:
        time.sleep(0.05)
    assert not _alive(orphan), "a process of the same session, re-parented to init, is killed with the group"


def test_a_clean_exit_within_the_grace_needs_no_kill() -> None:
    tree = ProcessTree([sys.executable, "-c", "import time; time.sleep(600)"], env=dict(os.environ))
    started = time.monotonic()
    tree.stop(grace_s=10.0)
    assert time.monotonic() - started < 5, "SIGINT ends a process that does not ignore it"
    assert tree.process.returncode == 1 or tree.process.returncode == -signal.SIGINT


def test_the_dagster_processes_come_from_this_interpreter() -> None:
    argv = dagster_dev_argv(Path("/w/workspace.yaml"), 3001, "127.0.0.1")
    assert argv[:4] == [sys.executable, "-m", "dagster", "dev"]
    env = child_environment({"PATH": "/usr/bin:/bin"}, {"EVALGATE_HOME": "/h"})
    assert env["PATH"].split(os.pathsep) == [str(Path(sys.executable).parent), "/usr/bin", "/bin"]
    assert env["EVALGATE_HOME"] == "/h"
