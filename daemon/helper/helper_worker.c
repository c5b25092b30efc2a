/* SPDX-License-Identifier: MIT */
/*
 * helper_worker - the helper's side of the worker's life: start one, hand
 * it every VM the helper holds, and start another when it dies.
 *
 * The helper keeps a copy of every stats fd it accepted, so a new worker
 * gets every live VM again; the counters continue because they are the
 * kernel's. Only series of VMs already gone (in their exit grace) are lost
 * with a worker. A worker that keeps dying (five starts within a minute)
 * is a bug to look at, not to hide: the helper then stops with status 1.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bpf_layout.h"
#include "clock.h"
#include "fdpass.h"
#include "helper_state.h"
#include "journal.h"
#include "log.h"
#include "privdrop.h"
#include "workerexec.h"

#define RESTART_DELAY_MS 300
#define CRASH_WINDOW_NS (60ull * 1000000000ull)

/*
 * The child: no capabilities, no_new_privs, the parent-death signal, then
 * the worker program (workerexec.h), which enters its sandbox itself. Nothing
 * of the helper's memory or fds but the channel crosses the exec.
 */
static void __attribute__((noreturn)) become_worker(struct helper *h, pid_t parent, int ipc_fd)
{
	int rc;

	prctl(PR_SET_NAME, "kvmstatd-worker", 0, 0, 0);
	rc = privdrop_to(h->uid, h->gid);
	if (rc < 0) {
		log_err("worker: cannot drop privileges to %s: %s", h->cfg->user, strerror(-rc));
		_exit(1);
	}
	/* after the drop: changing credentials clears the death signal; an
	 * exec of a file without set-id bits or capabilities keeps it */
	prctl(PR_SET_PDEATHSIG, SIGTERM, 0, 0, 0);
	if (getppid() != parent)
		_exit(1);
	rc = workerexec_run(h->prog, ipc_fd, NULL);
	log_err("worker: cannot run %s: %s", h->prog->path, strerror(-rc));
	_exit(1);
}

/* Reap the worker within timeout_ms; true once it is gone. */
static bool reap_worker(struct helper *h, int timeout_ms)
{
	struct timespec delay = { 0, 20 * 1000000L };

	for (int waited = 0; h->worker > 0; waited += 20) {
		if (waitpid(h->worker, NULL, WNOHANG) == h->worker || errno == ECHILD)
			h->worker = 0;
		else if (waited >= timeout_ms)
			return false;
		else
			nanosleep(&delay, NULL);
	}
	return true;
}

/*
 * Closing the channel stops the worker by itself (it exits on EOF) and
 * needs no privilege: the worker runs under another uid, and a unit
 * without CAP_KILL could not signal it. The signals only back that up.
 */
void helper_stop_worker(struct helper *h)
{
	if (h->ipc_fd >= 0) {
		close(h->ipc_fd);
		h->ipc_fd = -1;
	}
	if (h->worker <= 0)
		return;
	kill(h->worker, SIGTERM);
	if (reap_worker(h, 5000))
		return;
	log_warn("the worker did not stop in 5 s; killing it");
	kill(h->worker, SIGKILL);
	if (!reap_worker(h, 2000))
		log_err("the worker (pid %d) could not be stopped", (int)h->worker);
}

int helper_send_totals(struct helper *h)
{
	struct ipc_hello m = { .hdr = { IPC_HELLO, sizeof(m) } };

	if (h->ipc_fd < 0)
		return 0;

	m.worker_starts = h->worker_starts;
	m.heartbeat_ms = h->heartbeat_ms;
	memcpy(m.rejected, h->rejected, sizeof(m.rejected));
	m.discovered = h->discovered;
	m.helper_start_ns = h->start_unix_ns;
	return fdpass_send(h->ipc_fd, &m, sizeof(m), NULL, 0);
}

static int send_bpf(struct helper *h)
{
	struct ipc_bpf_maps m = { .hdr = { IPC_BPF_MAPS, sizeof(m) } };
	int fds[2];

	if (h->ipc_fd < 0 || !h->bpf || !h->bpf->enabled)
		return 0;
	m.n_slots = h->bpf->n_slots;
	m.slot_size = sizeof(struct kx_slot);
	fds[0] = h->bpf->slots_fd;
	fds[1] = h->bpf->meta_fd;
	return fdpass_send(h->ipc_fd, &m, sizeof(m), fds, 2);
}

static int send_vcpus(struct helper *h, const struct hvm *vm, unsigned first, uint64_t created_ns)
{
	struct ipc_add_vcpus m = { .hdr = { IPC_ADD_VCPUS, sizeof(m) } };
	int rc = 0;

	for (unsigned i = first; h->ipc_fd >= 0 && rc == 0 && i < vm->n_vcpus;
	     i += IPC_MAX_VCPU_FDS) {
		unsigned n =
		    vm->n_vcpus - i < IPC_MAX_VCPU_FDS ? vm->n_vcpus - i : IPC_MAX_VCPU_FDS;

		m.vm_id = vm->id;
		m.n_vcpus = n;
		m.created_ns = created_ns;
		rc = fdpass_send(h->ipc_fd, &m, sizeof(m), vm->vcpu_fds + i, n);
	}
	if (rc < 0)
		log_err("VM \"%s\": vCPUs not handed to the worker: %s", vm->name, strerror(-rc));
	else
		helper_send_schedstat(h, vm, first, vm->n_vcpus);
	return rc;
}

static int send_vm(struct helper *h, const struct hvm *vm)
{
	struct ipc_add_vm m = { .hdr = { IPC_ADD_VM, sizeof(m) } };
	int fds[2 + IPC_MAX_VCPU_FDS];
	unsigned n = vm->n_vcpus < IPC_MAX_VCPU_FDS ? vm->n_vcpus : IPC_MAX_VCPU_FDS;
	int rc;

	if (h->ipc_fd < 0)
		return 0; /* the next worker gets it */
	m.vm_id = vm->id;
	m.pid = vm->proc->pid;
	m.uid = vm->proc->uid;
	m.n_vcpus = n;
	m.origin = vm->origin;
	m.created_ns = vm->created_ns;
	snprintf(m.name, sizeof(m.name), "%s", vm->name);
	snprintf(m.comm, sizeof(m.comm), "%s", vm->proc->comm);
	fds[0] = vm->proc->pidfd;
	fds[1] = vm->stats_fd;
	if (n) /* (a VM without vCPUs has no array) */
		memcpy(fds + 2, vm->vcpu_fds, n * sizeof(int));
	rc = fdpass_send(h->ipc_fd, &m, sizeof(m), fds, 2 + n);
	if (rc < 0) {
		log_err("VM \"%s\" not handed to the worker: %s", vm->name, strerror(-rc));
		return rc;
	}
	helper_send_schedstat(h, vm, 0, n);
	return send_vcpus(h, vm, n, vm->created_ns);
}

static void send_removal(struct helper *h, uint32_t vm_id)
{
	struct ipc_remove_vm m = { .hdr = { IPC_REMOVE_VM, sizeof(m) }, .vm_id = vm_id };

	fdpass_send(h->ipc_fd, &m, sizeof(m), NULL, 0);
}

/*
 * What the VM table marked: removals first (the worker's limits count
 * what it holds), then new VMs and new vCPUs. Each is tried once: a
 * worker that fails to take it dies, and its successor gets every VM.
 */
void helper_worker_update(struct helper *h)
{
	struct vmtable *t = &h->vt;

	for (size_t i = 0; h->ipc_fd >= 0 && i < t->n_retiring; i++)
		if (t->retiring[i].tell_id) {
			send_removal(h, t->retiring[i].tell_id);
			t->retiring[i].tell_id = 0;
		}
	for (size_t i = 0; h->ipc_fd >= 0 && i < t->n_vms; i++) {
		struct hvm *vm = t->vms[i];

		if (!vm->told)
			send_vm(h, vm);
		else if (vm->n_told < vm->n_vcpus)
			send_vcpus(h, vm, vm->n_told, vm->news_created_ns);
		vm->told = true;
		vm->n_told = vm->n_vcpus;
	}
}

void helper_send_rejected(struct helper *h, enum reject_reason reason)
{
	struct ipc_rejected m = { .hdr = { IPC_REJECTED, sizeof(m) }, .reason = reason };

	h->rejected[reason]++;
	if (h->ipc_fd >= 0)
		fdpass_send(h->ipc_fd, &m, sizeof(m), NULL, 0);
}

void helper_sync(struct helper *h)
{
	struct ipc_sync m = { .hdr = { IPC_SYNC, sizeof(m) } };

	if (h->ipc_fd < 0)
		return;					     /* the next worker gets one */
	m.seq = ++h->sync_seq ? h->sync_seq : ++h->sync_seq; /* 0 means "none yet" */
	fdpass_send(h->ipc_fd, &m, sizeof(m), NULL, 0);
}

int helper_worker_recv(struct helper *h, struct ipc_status *m)
{
	char why[96];
	size_t n_fds;
	int n = h->ipc_fd >= 0 ? fdpass_recv(h->ipc_fd, m, sizeof(*m), NULL, 0, &n_fds) : -EAGAIN;

	if (n == -EAGAIN)
		return -EAGAIN;
	if (n == 0 || n == -ECONNRESET || n == -EPIPE)
		return 0;
	if (n < 0 || ipc_check_status(m, (size_t)n, n_fds, why, sizeof(why)) < 0) {
		if (n < 0)
			snprintf(why, sizeof(why), "%s", strerror(-n));
		log_err("malformed message from the worker (%s): replacing it", why);
		helper_worker_gone(h, "sent a malformed message");
		return -EAGAIN;
	}
	return 1;
}

int helper_start_worker(struct helper *h, bool planned)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = &h->tag_ipc };
	int sp[2];
	pid_t pid, parent = getpid();

	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp) < 0)
		return -errno;
	pid = fork();
	if (pid < 0) {
		close(sp[0]);
		close(sp[1]);
		return -errno;
	}
	if (pid == 0)
		become_worker(h, parent, sp[1]);
	close(sp[1]);
	h->ipc_fd = sp[0];
	h->worker = pid;
	if (!planned) { /* a reload's worker is no sign of a crash loop */
		memmove(h->start_ns + 1, h->start_ns, sizeof(h->start_ns) - sizeof(h->start_ns[0]));
		h->start_ns[0] = clock_mono_ns();
		h->worker_starts++;
	}
	if (epoll_ctl(h->epoll_fd, EPOLL_CTL_ADD, h->ipc_fd, &ev) < 0)
		return -errno;
	if (boot_send(h->ipc_fd, h->cfg, &h->prog->pem, h->http_fd, journal_fd(),
		      h->prog->selftest ? BOOT_SELFTEST : 0, (uint32_t)log_get_level()) < 0 ||
	    helper_send_totals(h) < 0 || send_bpf(h) < 0)
		return 0;	    /* it died at once: SIGCHLD (or EOF) comes, and a restart */
	vmtable_untell_all(&h->vt); /* a new worker knows nothing */
	helper_worker_update(h);
	helper_sync(h); /* its answer means: serving, with every VM */
	log_info("worker pid %d started (%u VMs handed over)%s", (int)pid, (unsigned)h->vt.n_vms,
		 planned		? ", replacing the old one for the new configuration"
		 : h->worker_starts > 1 ? ", replacing one that died"
					: "");
	return 0;
}

static void describe_exit(int status, char *out, size_t size)
{
	if (WIFSIGNALED(status))
		snprintf(out, size, "was killed by signal %d (%s)", WTERMSIG(status),
			 strsignal(WTERMSIG(status)));
	else
		snprintf(out, size, "exited with status %d", WEXITSTATUS(status));
}

void helper_worker_reaped(struct helper *h, int status)
{
	char why[96];

	h->worker = 0;
	describe_exit(status, why, sizeof(why));
	helper_worker_gone(h, why);
}

/* The worker died or closed its channel: reap it, then start another. */
void helper_worker_gone(struct helper *h, const char *how)
{
	struct itimerspec its = { .it_value = { 0, RESTART_DELAY_MS * 1000000L } };
	char why[96];
	int status = 0;

	if (h->ipc_fd >= 0) {
		epoll_ctl(h->epoll_fd, EPOLL_CTL_DEL, h->ipc_fd, NULL);
		close(h->ipc_fd);
		h->ipc_fd = -1;
	}
	snprintf(why, sizeof(why), "%s", how);
	if (h->worker > 0) {
		kill(h->worker, SIGKILL); /* closed its channel but lives on: no half workers */
		if (waitpid(h->worker, &status, 0) == h->worker)
			describe_exit(status, why, sizeof(why));
		h->worker = 0;
	}
	if (h->start_ns[4] && clock_mono_ns() - h->start_ns[4] < CRASH_WINDOW_NS) {
		log_err("the worker %s, the fifth time within a minute; stopping", why);
		h->worker_died = true;
		return;
	}
	log_err("the worker %s; starting another in %d ms", why, RESTART_DELAY_MS);
	timerfd_settime(h->restart_fd, 0, &its, NULL);
}

void helper_on_restart_timer(struct helper *h)
{
	uint64_t n;
	int rc;

	if (read(h->restart_fd, &n, sizeof(n)) != sizeof(n) || h->worker > 0)
		return;
	rc = helper_start_worker(h, false);
	if (rc < 0 && h->worker <= 0) {
		struct itimerspec its = { .it_value = { 1, 0 } };

		log_err("cannot start a worker: %s; trying again in 1 s", strerror(-rc));
		timerfd_settime(h->restart_fd, 0, &its, NULL);
	}
}
