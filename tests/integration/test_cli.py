"""The command line: --version, --help, --check-config on good and broken
configuration files (exit 2 naming the file, the line and the key)."""

import re
import subprocess

import pytest

import harness

GOOD = """\
[daemon]
user = nobody
[registration]
socket = /run/kvmstatd-it/register.sock
[poll]
interval_ms = 200
[http]
listen = 127.0.0.1:9735
"""


def run(kvmstatd_bin, *args, timeout=10):
    return subprocess.run([kvmstatd_bin, *args], stdin=subprocess.DEVNULL,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout)


def test_version_prints_name_and_version(kvmstatd_bin):
    p = run(kvmstatd_bin, "--version")
    assert p.returncode == 0, p.stderr
    out = p.stdout.decode()
    assert re.search(r"kvmstatd\S*\s+v?\d+\.\d+", out), out


def test_help_lists_the_options(kvmstatd_bin):
    p = run(kvmstatd_bin, "--help")
    assert p.returncode == 0, p.stderr
    out = p.stdout.decode()
    for opt in ("--config", "--listen", "--check-config", "--version", "--help"):
        assert opt in out, "--help does not mention %s:\n%s" % (opt, out)


def test_unknown_option_is_a_usage_error(kvmstatd_bin):
    p = run(kvmstatd_bin, "--no-such-option")
    assert p.returncode != 0
    assert p.stderr.strip(), "no message on stderr"


def test_shipped_config_checks_ok(kvmstatd_bin):
    p = run(kvmstatd_bin, "--check-config", "--config", harness.SHIPPED_CONFIG)
    assert p.returncode == 0, "rc %d: %s" % (p.returncode, p.stderr.decode())


def test_minimal_config_checks_ok(kvmstatd_bin, tmp_path):
    cfg = tmp_path / "good.ini"
    cfg.write_text(GOOD)
    p = run(kvmstatd_bin, "--check-config", "--config", str(cfg))
    assert p.returncode == 0, "rc %d: %s" % (p.returncode, p.stderr.decode())


def _replace_line(text, lineno, new):
    lines = text.split("\n")
    lines[lineno - 1] = new
    return "\n".join(lines)


BROKEN = [
    # (id, line number, replacement line, key the message must name or None)
    ("unknown-key", 6, "interval_msec = 200", "interval_msec"),
    ("bad-number", 6, "interval_ms = fast", "interval_ms"),
    ("out-of-range", 6, "interval_ms = 5", "interval_ms"),
    ("bad-listen", 8, "listen = 127.0.0.1:99999", "listen"),
    ("unknown-section-key", 5, "[polling]", None),
    ("bad-syntax", 6, "this line is not ini", None),
]


@pytest.mark.parametrize("lineno,line,key", [b[1:] for b in BROKEN], ids=[b[0] for b in BROKEN])
def test_broken_config_exits_2_naming_file_line_and_key(kvmstatd_bin, tmp_path, lineno, line, key):
    cfg = tmp_path / "broken.ini"
    cfg.write_text(_replace_line(GOOD, lineno, line))
    p = run(kvmstatd_bin, "--check-config", "--config", str(cfg))
    err = p.stderr.decode()
    assert p.returncode == 2, "rc %d, want 2; stderr: %s" % (p.returncode, err)
    assert str(cfg) in err, "stderr does not name the file: %r" % err
    # the section line is the first line the unknown section breaks (its key
    # on the next line, when the daemon reports that one instead)
    lines = (lineno, lineno + 1) if line.startswith("[") else (lineno,)
    assert any(re.search(r"%s:%d\b|\bline\s+%d\b" % (re.escape(str(cfg)), n, n), err)
               for n in lines), (
        "stderr does not name line %d: %r" % (lineno, err))
    if key:
        assert key in err, "stderr does not name the key %s: %r" % (key, err)


def test_missing_config_file_is_an_error(kvmstatd_bin, tmp_path):
    missing = str(tmp_path / "nope.ini")
    p = run(kvmstatd_bin, "--check-config", "--config", missing)
    assert p.returncode == 2
    assert missing in p.stderr.decode()


def test_check_config_starts_nothing(kvmstatd_bin, tmp_path):
    sock_dir = tmp_path / "run"
    cfg = tmp_path / "good.ini"
    cfg.write_text(GOOD.replace("/run/kvmstatd-it/register.sock", str(sock_dir / "r.sock")))
    p = run(kvmstatd_bin, "--check-config", "--config", str(cfg))
    assert p.returncode == 0, p.stderr
    assert not sock_dir.exists(), "--check-config created the socket directory"


def test_socket_in_a_directory_others_may_write_is_refused(kvmstatd_bin, root, tmp_path):
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o1777)  # like /tmp: root must not chmod/chown paths in here
    cfg = tmp_path / "k.ini"
    harness.write_config(str(cfg), str(shared / "reg.sock"), harness.free_port(),
                         harness.worker_user().pw_name)
    p = run(kvmstatd_bin, "--config", str(cfg))
    err = p.stderr.decode()
    assert p.returncode == 1, err
    assert "reg.sock" in err and "writable by nobody else" in err, err
    assert not (shared / "reg.sock").exists()
