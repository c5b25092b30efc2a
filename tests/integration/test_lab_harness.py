"""tests/lab/lab run, the host's side, against a stand-in for QEMU.

The stand-in (a script named qemu-system-x86_64 first on PATH) does what
the guest does with the control share and the two virtio-serial pipes:
writes `booted`, runs the command file with the environment file in the
working directory, its stdout and stderr into the pipes, then `status`.
So these check, in seconds and without an image or TCG: CMD's exit status
and both streams come back, --env and the working directory reach CMD,
arguments keep their quoting, and a guest that never boots or never says
how CMD ended is an error that says so.
"""

import os
import subprocess
import tempfile

import pytest

import harness

LAB = os.path.join(harness.REPO, "tests", "lab", "lab")

FAKE_QEMU = r"""#!/bin/bash
set -u
for a in "$@"; do
	case "$a" in
	local,id=labctl,path=*) ctl=${a#local,id=labctl,path=}; ctl=${ctl%%,*} ;;
	pipe,id=out,path=*) out=${a#pipe,id=out,path=} ;;
	pipe,id=err,path=*) err=${a#pipe,id=err,path=} ;;
	esac
done
exec 3>"$out.out" 4>"$err.out"
case "${FAKE_GUEST:-}" in
noboot) exit 1 ;;
nostatus) date >"$ctl/booted"; exit 0 ;;
esac
date >"$ctl/booted"
rc=0
# a clean environment, as the guest's service has
(cd "$(cat "$ctl/cwd")" && exec env -i bash -c 'source "$1/env" && exec bash "$1/cmd"' - "$ctl") \
	>&3 2>&4 </dev/null || rc=$?
echo "$rc" >"$ctl/status"
"""


@pytest.fixture
def lab(root):
    """lab(args, env) -> CompletedProcess of tests/lab/lab with the
    stand-in QEMU and a cache holding an empty image of the current key."""
    tmp = tempfile.mkdtemp(prefix="kvmstatd-labtest-")
    bindir = os.path.join(tmp, "bin")
    os.mkdir(bindir)
    fake = os.path.join(bindir, "qemu-system-x86_64")
    with open(fake, "w") as f:
        f.write(FAKE_QEMU)
    os.chmod(fake, 0o755)
    env = dict(os.environ, LAB_CACHE=os.path.join(tmp, "cache"), TMPDIR=tmp,
               PATH=bindir + ":" + os.environ["PATH"])
    image = subprocess.run([LAB, "path"], env=env, capture_output=True, text=True,
                           check=True, timeout=30).stdout.strip()
    os.makedirs(image)
    for name in ("manifest", "vmlinuz", "initrd.img", "rootfs.ext4"):
        open(os.path.join(image, name), "w").close()

    def run(args, extra_env=None, timeout=60):
        return subprocess.run([LAB] + args, env=dict(env, **(extra_env or {})),
                              cwd=os.path.join(harness.REPO, "tests"), capture_output=True,
                              text=True, timeout=timeout)
    yield run
    subprocess.run(["rm", "-rf", tmp], check=True)


def test_status_streams_env_cwd_and_quoting_come_through(lab):
    r = lab(["run", "--env", "LABTEST_VALUE", "--", "bash", "-c",
             'echo "out:$1"; echo "err:$LABTEST_VALUE" >&2; pwd; exit 7', "-", "a b  'c'"],
            extra_env={"LABTEST_VALUE": "x y$z"})
    assert r.returncode == 7, r.stderr
    assert r.stdout.splitlines() == ["out:a b  'c'", os.path.join(harness.REPO, "tests")]
    assert "err:x y$z" in r.stderr.splitlines()
    assert "lab: command ended with status 7" in r.stderr


def test_a_variable_not_named_does_not_reach_the_guest(lab):
    r = lab(["run", "--", "bash", "-c", 'echo "[${LABTEST_VALUE-unset}] $LAB_GUEST"'],
            extra_env={"LABTEST_VALUE": "secret"})
    assert r.returncode == 0, r.stderr
    assert r.stdout == "[unset] 1\n"


def test_a_guest_that_does_not_boot_is_an_error_with_its_console(lab):
    r = lab(["run", "--", "true"], extra_env={"FAKE_GUEST": "noboot"})
    assert r.returncode == 1
    assert "the guest stopped before it ran the command" in r.stderr
    assert "the guest's console" in r.stderr


def test_a_guest_that_ends_without_a_status_is_an_error(lab):
    r = lab(["run", "--", "true"], extra_env={"FAKE_GUEST": "nostatus"})
    assert r.returncode == 1
    assert "without the command's exit status" in r.stderr


def test_bad_options_are_refused(lab):
    for args in (["run", "--forward", "80", "--", "true"], ["run", "--share", "/nonexistent",
                 "--", "true"], ["run", "--env", "1X", "--", "true"], ["run"]):
        r = lab(args)
        assert r.returncode != 0 and "lab: error:" in r.stderr, (args, r.stderr)
