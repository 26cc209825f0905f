"""The connector layer's pure parts and the local connector, against real processes.

Quoting is checked by its real consumer (a POSIX shell runs the very string an SSH
server would hand to the login shell); waits are on conditions (a line read, an exit),
the timeouts only bound a hang.
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from ctdrill.connect import connector_for, namespace_connector
from ctdrill.connect.base import (
    CommandTimedOut,
    Completed,
    Tail,
    check_argv,
    checked,
    env_argv,
    shown,
    split_lines,
)
from ctdrill.connect.local import LocalConnector
from ctdrill.connect.netns import PUT_SCRIPT, NetnsConnector, check_netns, netns_argv
from ctdrill.connect.ssh import (
    SshConnector,
    missing_binary,
    parse_pid,
    run_command,
    signal_argv,
    spawn_command,
)
from ctdrill.errors import EnvironmentProblem, ExitCode, InvalidInput
from ctdrill.system.run import CommandFailed
from ctdrill.targets.target import Target

HANG_S = 30.0
NASTY = ["a b", "it's", '"q"', "$(echo injected)", "x;y", "back\\slash", "*", "",
         "-n", "line\nbreak", "ünï"]
PRINT_ARGV = "import json, sys; print(json.dumps(sys.argv[1:]))"


# ---- pure parts -----------------------------------------------------------------------

def test_lines_are_split_across_chunks_with_crlf_and_a_last_partial_line() -> None:
    chunks = [b"one\ntw", b"o\r\n", b"", b"\n", b"thr", b"ee"]
    assert list(split_lines(chunks)) == ["one", "two", "", "three"]


def test_bad_utf8_is_replaced_not_raised() -> None:
    assert list(split_lines([b"ok \xff\n"])) == ["ok \ufffd"]


def test_a_chunk_split_inside_a_multibyte_character_still_decodes() -> None:
    data = "größe\n".encode()
    assert list(split_lines([data[:3], data[3:]])) == ["größe"]


def test_tail_keeps_the_last_non_empty_line() -> None:
    tail = Tail(keep=3)
    tail.feed(["first", "boom: it failed", "   ", ""])
    assert tail.last() == "boom: it failed"
    assert Tail().last() == ""


def test_env_prefix_keeps_values_as_one_argument_and_refuses_bad_names() -> None:
    assert env_argv(None, ["a"]) == ["a"]
    assert env_argv({"CTDRILL_RUN_ID": "r 1;x"}, ["p", "q"]) == [
        "env", "CTDRILL_RUN_ID=r 1;x", "p", "q"]
    with pytest.raises(ValueError, match="not an environment variable name"):
        env_argv({"A=B": "1"}, ["p"])


def test_argv_only_never_a_shell_string() -> None:
    with pytest.raises(TypeError):
        check_argv("rm -rf /tmp/x")
    with pytest.raises(TypeError):
        check_argv([])
    assert check_argv(("a", "b")) == ["a", "b"]


def test_messages_elide_shipped_scripts() -> None:
    assert shown(["python3", "-c", "import os\nprint(1)", "--hz", "5"]) == \
        "python3 -c import os... --hz 5"
    assert shown(["x" * 60]) == "x" * 40 + "..."


def test_a_failed_command_is_one_line_with_its_last_stderr_line() -> None:
    done = Completed(("nft", "-f", "-"), 1, "", "Error: syntax\nline 3: bad token\n")
    with pytest.raises(CommandFailed) as err:
        checked(done, "netns ctd-x-gw")
    assert err.value.one_line() == "'nft -f -' failed (1) on netns ctd-x-gw: line 3: bad token"
    assert err.value.exit_code == ExitCode.ENVIRONMENT
    ok = Completed(("true",), 0, "", "")
    assert checked(ok, "here") is ok


def test_netns_names_cannot_pass_for_options_or_paths() -> None:
    assert netns_argv("ctd-it1-gw", ["conntrack", "-L"]) == [
        "ip", "netns", "exec", "ctd-it1-gw", "conntrack", "-L"]
    for bad in ("-all", "a/b", "", "..", "a b"):
        with pytest.raises(InvalidInput):
            check_netns(bad)


# ---- ssh command strings, run by a real shell -----------------------------------------

def test_the_ssh_command_string_reaches_the_program_unchanged() -> None:
    argv = [sys.executable, "-c", PRINT_ARGV, *NASTY]
    assert shlex.split(run_command(argv)) == argv
    out = subprocess.run(["sh", "-c", run_command(argv)], capture_output=True, text=True,
                         timeout=HANG_S, check=True).stdout
    assert json.loads(out) == NASTY


def test_the_spawn_wrapper_prints_the_pid_of_the_program_it_becomes() -> None:
    code = "import json, os, sys; print(json.dumps([os.getpid(), os.environ['CTD_T'], sys.argv[1:]]))"
    cmd = spawn_command([sys.executable, "-c", code, *NASTY], {"CTD_T": "v w"})
    assert cmd.startswith("echo ctdrill-pid=$$; exec ")
    proc = subprocess.run(["sh", "-c", cmd], capture_output=True, text=True, timeout=HANG_S,
                          check=True)
    first, second = proc.stdout.splitlines()
    pid, env_value, args = json.loads(second)
    assert parse_pid(first) == pid
    assert (env_value, args) == ("v w", NASTY)


def test_pid_lines_and_signal_commands() -> None:
    assert parse_pid("ctdrill-pid=4242\r") == 4242
    assert parse_pid("Welcome!") is None
    assert parse_pid("ctdrill-pid=12x") is None
    assert signal_argv(signal.SIGTERM, 7) == ["kill", "-TERM", "7"]
    assert signal_argv(signal.SIGKILL, 7) == ["kill", "-KILL", "7"]
    assert missing_binary(127, "sh: 1: exec: python3: not found")
    assert not missing_binary(127, "")
    assert not missing_binary(1, "not found")


def test_the_signal_command_is_one_a_shell_obeys() -> None:
    sleeper = LocalConnector().spawn([sys.executable, "-u", "-c",
                                      "import signal\nprint('up')\nwhile True: signal.pause()"])
    try:
        assert next(iter(sleeper)) == "up"
        assert sleeper.pid is not None
        subprocess.run(["sh", "-c", run_command(signal_argv(signal.SIGTERM, sleeper.pid))],
                       timeout=HANG_S, check=True)
        assert sleeper.wait(HANG_S) == -signal.SIGTERM
    finally:
        sleeper.stop()


# ---- factory ----------------------------------------------------------------------------

def test_the_target_transport_picks_the_connector_without_connecting() -> None:
    assert isinstance(connector_for(Target("k", "local")), LocalConnector)
    ns = connector_for(Target("gw", "netns", netns="ctd-x-gw"))
    assert isinstance(ns, NetnsConnector) and ns.where == "netns ctd-x-gw"
    ssh = connector_for(Target("gw", "ssh", host="10.230.0.2", python="/usr/bin/python3.9"))
    assert isinstance(ssh, SshConnector)
    assert ssh.python == "/usr/bin/python3.9"
    assert ssh.where == "gw (root@10.230.0.2:22)"
    ssh.close()  # never connected: nothing to close, and no error
    assert isinstance(namespace_connector(None), LocalConnector)
    assert isinstance(namespace_connector("ctd-x-venue"), NetnsConnector)


# ---- the local connector, real processes -------------------------------------------------

def test_run_collects_output_and_feeds_input() -> None:
    done = LocalConnector().run([sys.executable, "-c",
                                 "import sys; d = sys.stdin.read(); print(d.upper()); "
                                 "print('warn', file=sys.stderr)"], input="abc")
    assert (done.rc, done.stdout, done.stderr) == (0, "ABC\n", "warn\n")


def test_a_failure_raises_only_when_checked() -> None:
    conn = LocalConnector()
    argv = [sys.executable, "-c", "import sys; print('nope', file=sys.stderr); sys.exit(3)"]
    assert conn.run(argv, check=False).rc == 3
    with pytest.raises(CommandFailed, match=r"failed \(3\) on this host"):
        conn.run(argv)


def test_a_missing_binary_is_one_environment_error_even_unchecked() -> None:
    with pytest.raises(EnvironmentProblem, match="'ctd-no-such-tool' is not installed"):
        LocalConnector().run(["ctd-no-such-tool", "-x"], check=False)
    with pytest.raises(EnvironmentProblem, match="is not installed"):
        LocalConnector().spawn(["/nonexistent/ctd-tool"])


def test_a_command_past_its_timeout_is_killed_and_reported() -> None:
    with pytest.raises(CommandTimedOut, match=r"did not finish within 0\.2 s"):
        LocalConnector().run([sys.executable, "-c", "import signal; signal.pause()"],
                             timeout=0.2)


def test_spawn_streams_lines_takes_stdin_and_env() -> None:
    proc = LocalConnector().spawn(
        [sys.executable, "-u", "-c",
         "import os, sys\nprint(os.environ['CTD_T'])\nfor l in sys.stdin: print(l.strip()[::-1])"],
        env={"CTD_T": "from env"})
    lines = iter(proc)
    assert next(lines) == "from env"
    proc.write("abc\n")
    assert next(lines) == "cba"
    proc.close_stdin()
    assert list(lines) == []
    assert proc.wait(HANG_S) == 0
    assert proc.stop() == 0


def test_stop_kills_a_process_that_ignores_sigterm_and_reaps_it() -> None:
    proc = LocalConnector().spawn(
        [sys.executable, "-u", "-c",
         "import signal, sys\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
         "print('ignoring', flush=True)\nprint('on stderr', file=sys.stderr, flush=True)\n"
         "while True: signal.pause()"])
    assert next(iter(proc)) == "ignoring"
    assert proc.stop(grace=0.2) == -signal.SIGKILL
    assert proc.pid is not None
    with pytest.raises(ChildProcessError):
        os.waitpid(proc.pid, os.WNOHANG)  # reaped: no zombie left behind
    assert proc.stderr_tail() == "on stderr"
    assert proc.stop() == -signal.SIGKILL  # idempotent


def test_put_writes_the_bytes_with_the_mode(tmp_path: Path) -> None:
    path = tmp_path / "f.bin"
    LocalConnector().put(b"\x00data\n", str(path), 0o640)
    assert path.read_bytes() == b"\x00data\n"
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    with pytest.raises(EnvironmentProblem, match="cannot write"):
        LocalConnector().put(b"x", str(tmp_path / "missing" / "f"), 0o600)


def test_the_namespace_put_script_writes_stdin_with_the_mode(tmp_path: Path) -> None:
    """What NetnsConnector.put runs inside the namespace, run here by the same python."""
    path = tmp_path / "f.yaml"
    path.write_text("old, longer content\n")
    LocalConnector().run([sys.executable, "-c", PUT_SCRIPT, str(path), format(0o600, "o")],
                         input=b"new\n")
    assert path.read_bytes() == b"new\n"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
